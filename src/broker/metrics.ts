/**
 * Broker metrics in Prometheus' text exposition format (version 0.0.4), served over HTTP by
 * `strand broker --metrics-port P` at /metrics, with /health (the process answers) and /ready
 * (started, group coordinator loaded, not shutting down).
 *
 * Counted as traffic flows (hooks in connection.ts and replica-manager.ts):
 *   strand_requests_total{api}                       requests answered, per api
 *   strand_request_duration_seconds{api}             histogram: handling time per api (long-polling Fetch waits included)
 *   strand_bytes_in_total{topic} / strand_records_in_total{topic}     appended by Produce
 *   strand_bytes_out_total{topic} / strand_records_out_total{topic}   returned by Fetch (records counted in
 *                                                    in-memory reads; reads streamed from the file count bytes only)
 * Read when scraped:
 *   strand_connections                               open client connections
 *   strand_log_size_bytes{topic,partition}           bytes on disk, and strand_log_start_offset / strand_log_end_offset
 *   strand_consumer_group_lag{group,topic,partition} high watermark − committed offset
 *   strand_consumer_groups{state}                    groups per state
 *   strand_under_replicated_partitions               partitions led here whose ISR is smaller than their replica set
 *                                                    (Kafka's UnderReplicatedPartitions; 0 while every topic has one replica)
 *   strand_offline_partitions                        partitions with no leader (Kafka's OfflinePartitionsCount)
 *   strand_isr_shrinks_total / strand_isr_expands_total  ISR changes this broker committed as leader
 *   strand_log_cleaner_max_dirty_ratio               largest dirty ratio of any compacted partition (Kafka's max-dirty-percent / 100)
 *   strand_log_cleaner_dirty_ratio{topic,partition}  dirty bytes / cleanable bytes, per compacted partition
 *   strand_log_cleaner_partition_last_run_timestamp_seconds{topic,partition}  end of the partition's last pass (absent: none since start)
 *   strand_log_cleaner_passes_total, strand_log_cleaner_bytes_read_total, strand_log_cleaner_bytes_written_total
 *   strand_log_cleaner_last_run_timestamp_seconds    end of the last pass over any log (0: none since start)
 *   strand_log_cleaner_last_run_duration_seconds     its duration (Kafka's max-clean-time-secs is the longest of the last runs)
 *   strand_log_cleaner_last_run_throughput_bytes_per_second   bytes it read per second
 */
import { createServer, type Server } from 'node:http';
import type { Partition } from './replica-manager.js';
import type { LogCleaner } from '../storage/log-cleaner.js';
import type { Broker } from './broker.js';

/** Prometheus-style default buckets, in seconds, from 0.5 ms to 10 s. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

/** What the renderer reads from the broker at scrape time (kept narrow to avoid an import cycle). */
export interface MetricsSource {
  readonly connectionCount: number;
  partitions(): Iterable<Partition>;
  groups(): Iterable<{ groupId: string; state: string; offsets: Iterable<{ topic: string; partition: number; offset: number }> }>;
  readonly ready: boolean;
  /** Replication health from the metadata image (absent in tests that render without a broker). */
  readonly replication?: () => { underReplicated: number; offline: number; isrShrinks?: number; isrExpands?: number };
  /** The log cleaner (absent in tests that render without a broker). */
  readonly cleaner?: Pick<LogCleaner, 'passes' | 'totalBytesRead' | 'totalBytesWritten' | 'lastPass' | 'dirtyRatio' | 'lastRun'>;
}

const escape = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export class BrokerMetrics {
  private readonly requests = new Map<string, Histogram>();
  private readonly bytesIn = new Map<string, number>();
  private readonly recordsIn = new Map<string, number>();
  private readonly bytesOut = new Map<string, number>();
  private readonly recordsOut = new Map<string, number>();
  /** Failed SASL authentications and TLS client certificates refused (security/session.ts). */
  authenticationFailures = 0;

  /** One request handled (connection.ts, after the handler). */
  observeRequest(api: string, seconds: number): void {
    let h = this.requests.get(api);
    if (h === undefined) this.requests.set(api, (h = { counts: new Array<number>(BUCKETS.length).fill(0), sum: 0, count: 0 }));
    h.count++;
    h.sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) h.counts[i]!++;
  }

  /** A produce appended `records` records of `bytes` bytes to `topic`. */
  produced(topic: string, bytes: number, records: number): void {
    this.bytesIn.set(topic, (this.bytesIn.get(topic) ?? 0) + bytes);
    this.recordsIn.set(topic, (this.recordsIn.get(topic) ?? 0) + records);
  }

  /** A fetch returned these results (records: in-memory batches are walked for their counts). */
  fetched(topic: string, records: Buffer | { length: number } | null): void {
    if (records === null || records.length === 0) return;
    this.bytesOut.set(topic, (this.bytesOut.get(topic) ?? 0) + records.length);
    if (Buffer.isBuffer(records)) this.recordsOut.set(topic, (this.recordsOut.get(topic) ?? 0) + countRecords(records));
  }

  render(src: MetricsSource): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    family('strand_requests_total', 'counter', 'Requests handled, per api.');
    for (const [api, h] of [...this.requests].sort()) out.push(`strand_requests_total{api="${escape(api)}"} ${h.count}`);
    family('strand_request_duration_seconds', 'histogram', 'Time from a request being decoded to its response being ready, per api.');
    for (const [api, h] of [...this.requests].sort()) {
      const a = escape(api);
      BUCKETS.forEach((b, i) => out.push(`strand_request_duration_seconds_bucket{api="${a}",le="${b}"} ${h.counts[i]}`));
      out.push(`strand_request_duration_seconds_bucket{api="${a}",le="+Inf"} ${h.count}`);
      out.push(`strand_request_duration_seconds_sum{api="${a}"} ${h.sum}`);
      out.push(`strand_request_duration_seconds_count{api="${a}"} ${h.count}`);
    }
    const perTopic = (name: string, help: string, m: Map<string, number>): void => {
      family(name, 'counter', help);
      for (const [t, n] of [...m].sort()) out.push(`${name}{topic="${escape(t)}"} ${n}`);
    };
    perTopic('strand_bytes_in_total', 'Record batch bytes appended by Produce, per topic.', this.bytesIn);
    perTopic('strand_records_in_total', 'Records appended by Produce, per topic.', this.recordsIn);
    perTopic('strand_bytes_out_total', 'Record batch bytes returned by Fetch, per topic.', this.bytesOut);
    perTopic('strand_records_out_total', 'Records returned by Fetch from in-memory reads, per topic.', this.recordsOut);
    family('strand_connections', 'gauge', 'Open client connections.');
    out.push(`strand_connections ${src.connectionCount}`);
    family('strand_authentication_failures_total', 'counter', 'Failed SASL authentications.');
    out.push(`strand_authentication_failures_total ${this.authenticationFailures}`);
    if (src.replication !== undefined) {
      const r = src.replication();
      family('strand_under_replicated_partitions', 'gauge', 'Partitions led by this broker whose ISR is smaller than their replica set.');
      out.push(`strand_under_replicated_partitions ${r.underReplicated}`);
      family('strand_offline_partitions', 'gauge', 'Partitions without a leader.');
      out.push(`strand_offline_partitions ${r.offline}`);
      if (r.isrShrinks !== undefined && r.isrExpands !== undefined) {
        family('strand_isr_shrinks_total', 'counter', 'ISR shrinks this broker had committed as a leader (Kafka\'s IsrShrinksPerSec).');
        out.push(`strand_isr_shrinks_total ${r.isrShrinks}`);
        family('strand_isr_expands_total', 'counter', 'ISR expansions this broker had committed as a leader (Kafka\'s IsrExpandsPerSec).');
        out.push(`strand_isr_expands_total ${r.isrExpands}`);
      }
    }
    const parts = [...src.partitions()].sort((a, b) => a.topic.localeCompare(b.topic) || a.index - b.index);
    const hw = new Map<string, number>();
    const gauge = (name: string, help: string, f: (p: Partition) => number): void => {
      family(name, 'gauge', help);
      for (const p of parts) out.push(`${name}{topic="${escape(p.topic)}",partition="${p.index}"} ${f(p)}`);
    };
    gauge('strand_log_size_bytes', 'Bytes of a partition log on disk.', (p) => p.log.sizeInBytes);
    gauge('strand_log_start_offset', 'First offset of a partition log.', (p) => p.log.logStartOffset);
    gauge('strand_log_end_offset', 'High watermark of a partition log.', (p) => {
      hw.set(`${p.topic}\u0000${p.index}`, p.log.highWatermark);
      return p.log.highWatermark;
    });
    family('strand_consumer_group_lag', 'gauge', 'High watermark minus the committed offset, per group and partition.');
    const states = new Map<string, number>();
    for (const g of src.groups()) {
      states.set(g.state, (states.get(g.state) ?? 0) + 1);
      for (const o of g.offsets) {
        const end = hw.get(`${o.topic}\u0000${o.partition}`);
        if (end === undefined || o.offset < 0) continue;
        out.push(`strand_consumer_group_lag{group="${escape(g.groupId)}",topic="${escape(o.topic)}",partition="${o.partition}"} ${Math.max(0, end - o.offset)}`);
      }
    }
    family('strand_consumer_groups', 'gauge', 'Consumer groups, per state.');
    for (const [s, n] of [...states].sort()) out.push(`strand_consumer_groups{state="${escape(s)}"} ${n}`);
    if (src.cleaner !== undefined) renderCleanerMetrics(src.cleaner, parts, family, out);
    family('strand_ready', 'gauge', '1 when the broker is started and serving.');
    out.push(`strand_ready ${src.ready ? 1 : 0}`);
    return out.join('\n') + '\n';
  }
}

/** Cleaner metrics, read at scrape time (Kafka has them as JMX metrics of kafka.log:type=LogCleaner). */
function renderCleanerMetrics(
  cleaner: NonNullable<MetricsSource['cleaner']>,
  parts: Partition[],
  family: (name: string, type: string, help: string) => void,
  out: string[],
): void {
  const compacted = parts.filter((p) => p.log.config.cleanupCompact);
  const ratios = compacted.map((p) => cleaner.dirtyRatio(p.log));
  family('strand_log_cleaner_max_dirty_ratio', 'gauge', 'Largest dirty ratio (dirty bytes / cleanable bytes) of any compacted partition.');
  out.push(`strand_log_cleaner_max_dirty_ratio ${ratios.reduce((a, b) => Math.max(a, b), 0)}`);
  family('strand_log_cleaner_dirty_ratio', 'gauge', 'Dirty bytes / cleanable bytes of a compacted partition.');
  compacted.forEach((p, i) => out.push(`strand_log_cleaner_dirty_ratio{topic="${escape(p.topic)}",partition="${p.index}"} ${ratios[i]}`));
  family('strand_log_cleaner_partition_last_run_timestamp_seconds', 'gauge', 'End of the last cleaner pass over a partition since the broker started.');
  for (const p of compacted) {
    const last = cleaner.lastRun(p.log);
    if (last !== null) out.push(`strand_log_cleaner_partition_last_run_timestamp_seconds{topic="${escape(p.topic)}",partition="${p.index}"} ${last.endMs / 1000}`);
  }
  family('strand_log_cleaner_passes_total', 'counter', 'Cleaner passes completed since the broker started.');
  out.push(`strand_log_cleaner_passes_total ${cleaner.passes}`);
  family('strand_log_cleaner_bytes_read_total', 'counter', 'Bytes read by the cleaner.');
  out.push(`strand_log_cleaner_bytes_read_total ${cleaner.totalBytesRead}`);
  family('strand_log_cleaner_bytes_written_total', 'counter', 'Bytes written by the cleaner.');
  out.push(`strand_log_cleaner_bytes_written_total ${cleaner.totalBytesWritten}`);
  const last = cleaner.lastPass;
  const seconds = last === null ? 0 : Math.max(0.001, (last.endMs - last.startMs) / 1000);
  family('strand_log_cleaner_last_run_timestamp_seconds', 'gauge', 'End of the last cleaner pass over any log (0: none since start).');
  out.push(`strand_log_cleaner_last_run_timestamp_seconds ${last === null ? 0 : last.endMs / 1000}`);
  family('strand_log_cleaner_last_run_duration_seconds', 'gauge', 'Duration of the last cleaner pass.');
  out.push(`strand_log_cleaner_last_run_duration_seconds ${last === null ? 0 : (last.endMs - last.startMs) / 1000}`);
  family('strand_log_cleaner_last_run_throughput_bytes_per_second', 'gauge', 'Bytes read per second by the last cleaner pass.');
  out.push(`strand_log_cleaner_last_run_throughput_bytes_per_second ${last === null ? 0 : last.bytesRead / seconds}`);
}

/** The broker as the renderer sees it. */
export function metricsSourceOf(broker: Broker, isReady: () => boolean): MetricsSource {
  const gc = broker.groupCoordinator;
  return {
    get connectionCount() {
      return broker.connectionCount;
    },
    partitions: () => broker.replicaManager.allPartitions(),
    groups: function* () {
      if (!gc.attached) return;
      for (const groupId of gc.groupIds()) {
        const offsets = gc.fetchOffsets(groupId, null).topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition, offset: p.offset })));
        yield { groupId, state: gc.describeGroup(groupId).state, offsets };
      }
    },
    get ready() {
      // Not while a partition of __consumer_offsets led here is loading (a cluster node creates the topic on first use).
      return isReady() && !gc.loading && (gc.attached || broker.config.quorumVoters !== null);
    },
    replication: () => {
      let underReplicated = 0;
      let offline = 0;
      for (const t of broker.image.topicsByName.values()) {
        for (const p of t.partitions) {
          if (p.leader < 0) offline++;
          else if (p.leader === broker.nodeId && p.isr.length < p.replicas.length) underReplicated++;
        }
      }
      return { underReplicated, offline, isrShrinks: broker.replicaManager.isrShrinks, isrExpands: broker.replicaManager.isrExpands };
    },
    cleaner: broker.logManager.cleaner,
  };
}

/** Records in whole record batches (v2 header: batchLength at 8, recordsCount at 57). */
export function countRecords(b: Buffer): number {
  let n = 0;
  for (let pos = 0; pos + 61 <= b.length; ) {
    const len = b.readInt32BE(pos + 8);
    if (len < 49 || pos + 12 + len > b.length) break;
    n += b.readInt32BE(pos + 57);
    pos += 12 + len;
  }
  return n;
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves /metrics, /health and /ready on host:port. */
export async function startMetricsServer(metrics: BrokerMetrics, src: MetricsSource, port: number, host: string): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metrics.render(src));
    } else if (path === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/ready') {
      const ready = src.ready;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /health or /ready\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr !== null ? addr.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
