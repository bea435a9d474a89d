/**
 * FileRecords: a byte range of a log segment, handed to the network layer instead of a copy
 * (Kafka's FileRecords). The connection sends it with sendfile when Strand's native addon is
 * built (fileRegion), else streams it in pieces, reading the next while the previous is on the socket.
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

  fileRegion(): { fd: number; position: number } {
    if (this.released) throw new Error('FileRecords used after release');
    return { fd: this.segment.descriptor(), position: this.position };
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.segment.release();
  }
}
