/**
 * The local metadata log: `<data dir>/__cluster_metadata-0/`, an ordinary partition log.
 *
 * Each controller operation is one record batch (so a crash keeps all of its records or none —
 * recovery truncates a torn batch); each record's value is one MetadataRecord as JSON. On start
 * the whole log is replayed into a MetadataImage. In a cluster the same records will be
 * replicated by the Raft quorum before they are applied; here they are applied once fsynced.
 */
import { join } from 'node:path';
import { DEFAULT_LOG_CONFIG, PartitionLog, type LogConfig } from '../../storage/log.js';
import { decodeRecordBatches, encodeRecordBatch } from '../../protocol/records.js';
import { MetadataImage, type MetadataRecord } from './image.js';
import type { Logger } from '../logger.js';

export const METADATA_TOPIC = '__cluster_metadata';

/** Never deleted by retention, never rolled by time; fsynced by every append (see append()). */
const METADATA_LOG_CONFIG: LogConfig = { ...DEFAULT_LOG_CONFIG, segmentBytes: 64 * 1024 * 1024, segmentMs: Number.MAX_SAFE_INTEGER, retentionMs: -1 };

export class MetadataLog {
  private constructor(
    private readonly log: PartitionLog,
    private readonly logger: Logger,
  ) {}

  static async open(dataDir: string, cleanShutdown: boolean, logger: Logger): Promise<MetadataLog> {
    const log = await PartitionLog.open(join(dataDir, `${METADATA_TOPIC}-0`), METADATA_TOPIC, 0, METADATA_LOG_CONFIG, {
      cleanShutdown,
      logger,
    });
    return new MetadataLog(log, logger);
  }

  /** Replays every record into an image. */
  async replay(): Promise<MetadataImage> {
    let image = MetadataImage.EMPTY;
    let offset = this.log.logStartOffset;
    let records = 0;
    while (offset < this.log.logEndOffset) {
      const bytes = await this.log.read(offset, 1024 * 1024, this.log.logEndOffset, true);
      if (bytes.length === 0) break;
      for (const batch of decodeRecordBatches(bytes)) {
        for (const r of batch.records) {
          const recordOffset = batch.header.baseOffset + r.offsetDelta;
          if (recordOffset < offset) continue;
          if (r.value === null) continue;
          image = image.apply(JSON.parse(r.value.toString('utf8')) as MetadataRecord, recordOffset);
          records++;
        }
        offset = batch.header.baseOffset + batch.header.lastOffsetDelta + 1;
      }
    }
    this.logger.info('metadata log replayed', { records, topics: image.topicsByName.size, endOffset: this.log.logEndOffset });
    return image;
  }

  /** Appends one operation's records as one batch and fsyncs; returns the offset of the first record. */
  async append(records: readonly MetadataRecord[]): Promise<number> {
    if (records.length === 0) throw new Error('empty metadata append');
    const now = Date.now();
    const batch = encodeRecordBatch({
      records: records.map((r) => ({ key: null, value: Buffer.from(JSON.stringify(r)), timestamp: now })),
    });
    const { firstOffset } = await this.log.append(batch, 0);
    await this.log.flush();
    return firstOffset;
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
