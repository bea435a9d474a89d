/**
 * DescribeLogDirs (key 35), versions 0–4.
 *
 * Behaviour:
 * - One result: the broker's data directory (`log.dirs`, as an absolute path), with every hosted
 *   partition asked for (`topics` null: all of them, internal topics included, the metadata log
 *   excluded as Kafka keeps it in its own directory). A topic or partition this broker does not
 *   host is left out of the answer, as Kafka does; nothing is an error.
 * - `partition_size` is the bytes of the partition's segments on disk; `offset_lag` is log end
 *   offset − high watermark (0 on a single broker once writes land); `is_future_key` is false
 *   (AlterReplicaLogDirs is not served, so there are no future logs).
 * - v3+ top-level `error_code` is NONE; v4+ `total_bytes` / `usable_bytes` of the volume come
 *   from statfs (-1 when it fails).
 */
import { statfs } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ErrorCode } from '../../protocol/errors.js';
import { DescribeLogDirsApi, type DescribeLogDirsResponse, type DescribeLogDirsResponseDescribeLogDirsTopic } from '../../protocol/messages/index.js';
import { METADATA_TOPIC } from '../metadata/metadata-log.js';
import type { Partition } from '../replica-manager.js';
import { defineHandler } from './handler.js';
import { authorizeCluster } from '../security/authorizer.js';

export const describeLogDirsHandler = defineHandler({
  api: DescribeLogDirsApi,
  minVersion: 0,
  maxVersion: 4,
  async handle(req, ctx): Promise<DescribeLogDirsResponse> {
    const broker = ctx.broker;
    // As Kafka: Describe on the cluster (v3+ says so; older versions just get no directories).
    if (!authorizeCluster(ctx, 'Describe')) return { throttleTimeMs: 0, errorCode: ctx.version >= 3 ? ErrorCode.CLUSTER_AUTHORIZATION_FAILED : ErrorCode.NONE, results: [] };
    const hosted = [...broker.replicaManager.allPartitions()].filter((p) => p.topic !== METADATA_TOPIC);
    let chosen: Partition[];
    if (req.topics === null) chosen = hosted;
    else {
      const wanted = new Map<string, Set<number>>();
      for (const t of req.topics) {
        let s = wanted.get(t.topic);
        if (s === undefined) wanted.set(t.topic, (s = new Set()));
        for (const p of t.partitions) s.add(p);
      }
      chosen = hosted.filter((p) => wanted.get(p.topic)?.has(p.index) === true);
    }
    const byTopic = new Map<string, DescribeLogDirsResponseDescribeLogDirsTopic>();
    for (const p of chosen.sort((a, b) => a.topic.localeCompare(b.topic) || a.index - b.index)) {
      let t = byTopic.get(p.topic);
      if (t === undefined) byTopic.set(p.topic, (t = { name: p.topic, partitions: [] }));
      t.partitions.push({ partitionIndex: p.index, partitionSize: p.log.sizeInBytes, offsetLag: Math.max(0, p.log.logEndOffset - p.log.highWatermark), isFutureKey: false });
    }
    const logDir = resolve(broker.config.dataDir);
    let totalBytes = -1;
    let usableBytes = -1;
    if (ctx.version >= 4) {
      try {
        const s = await statfs(logDir);
        totalBytes = s.blocks * s.bsize;
        usableBytes = s.bavail * s.bsize;
      } catch {
        // The volume's size is informational: answer -1 (Kafka's "unknown") rather than fail.
      }
    }
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      results: [{ errorCode: ErrorCode.NONE, logDir, topics: [...byTopic.values()], totalBytes, usableBytes }],
    };
  },
});
