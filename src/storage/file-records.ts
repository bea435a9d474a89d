/**
 * FileRecords: a byte range of a log segment, handed to the network layer instead of a copy
 * (Kafka's FileRecords, which it sends with sendfile). Node has no sendfile, so the connection
 * streams the range in pieces, reading the next piece while the previous one is on the socket.
 *
 * The slice holds a reference on its segment (LogSegment.acquire), so retention or deletion can
 * unlink the file while a response is being sent without the descriptor closing under it; the
 * reference is dropped by `release()`, exactly once.
 */
import type { LazyRecords } from '../protocol/writer.js';
import type { LogSegment } from './log-segment.js';

export class FileRecords implements LazyRecords {
  private released = false;

  /** Takes over a reference the caller acquired on `segment`. */
  constructor(
    private readonly segment: LogSegment,
    readonly position: number,
    readonly length: number,
  ) {}

  async readInto(buf: Buffer, from: number, len: number): Promise<number> {
    if (this.released) throw new Error('FileRecords read after release');
    if (from < 0 || len < 0 || from + len > this.length) throw new RangeError(`read [${from}, ${from + len}) outside a slice of ${this.length} bytes`);
    return this.segment.readBytes(buf, 0, len, this.position + from);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.segment.release();
  }
}
