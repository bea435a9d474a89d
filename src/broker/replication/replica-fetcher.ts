/**
 * Replica fetchers (Kafka's ReplicaFetcherManager / ReplicaFetcherThread): how a follower copies
 * its leaders' logs.
 *
 * - One fetcher per source broker, for every partition this broker follows from it; each keeps
 *   one Kafka connection (Strand's client connection: framing, ApiVersions, timeouts) to the
 *   leader's inter-broker endpoint from the metadata image.
 * - A round is one Fetch v12 with `replica_id` = this node, and per partition `fetch_offset` = the
 *   local log end offset, `last_fetched_epoch` = the epoch of the local log's last batch and
 *   `current_leader_epoch` = the epoch this broker knows. It long-polls (replica.fetch.wait.max.ms,
 *   replica.fetch.min.bytes), so an idle follower sends about two requests a second.
 * - Each partition's answer goes through partition-state.ts (planFollowerFetch /
 *   applyFollowerFetch): append the batches as the leader wrote them (appendAsFollower) and take
 *   min(leader high watermark, own log end) as high watermark; truncate to a diverging epoch's end;
 *   restart the log at the leader's log start when behind it; on FENCED_LEADER_EPOCH (this broker
 *   is behind) the partition pauses replica.fetch.backoff.ms until the metadata moves it — the
 *   replica manager re-adds or removes it; on NOT_LEADER_OR_FOLLOWER or UNKNOWN_LEADER_EPOCH (the
 *   leader has not applied its election yet) it asks again after 100 ms.
 * - With strand.acks.all.fsync (the default) a partition's appends are fsynced before the next
 *   fetch reports them to the leader (the replication simulation's durability rule).
 * - A connection error closes the connection and backs off replica.fetch.backoff.ms before the
 *   next attempt. A fetcher left with no partition closes its connection; a partition added while
 *   a fetch hangs well past its long poll (a leader that was unreachable) restarts the connection. A partition removed (or re-added at another epoch) while a fetch is in flight
 *   ignores that fetch's answer.
 * - Inter-broker connections are PLAINTEXT (the inter-broker listener must be a PLAINTEXT one).
 */
import { Connection } from '../../client/connection.js';
import { FetchApi, type FetchRequest } from '../../protocol/messages/index.js';
import { recordsInMemory } from '../../protocol/writer.js';
import { LogClosedError } from '../../storage/errors.js';
import type { Logger } from '../logger.js';
import type { Partition } from '../replica-manager.js';
import { FollowerErrors, applyFollowerFetch, lastFetchedEpoch, planFollowerFetch } from './partition-state.js';

/** What the fetchers need from the broker. */
export interface FetcherHost {
  readonly nodeId: number;
  /** The inter-broker endpoint of a broker, from the metadata image. */
  endpointOf(brokerId: number): { host: string; port: number } | null;
  /** Called after a follower append or truncation (wakes local waiters of the partition). */
  afterFollowerAppend(partition: Partition): void;
}

export interface FetcherSettings {
  maxWaitMs: number;
  minBytes: number;
  /** Per partition (replica.fetch.max.bytes). */
  maxBytes: number;
  /** Per response (replica.fetch.response.max.bytes). */
  responseMaxBytes: number;
  backoffMs: number;
  socketTimeoutMs: number;
  /**
   * strand.acks.all.fsync: fsync what was appended before fetching past it, so the fetch offset
   * the leader counts towards the high watermark (and acks=all) is on disk here — a power loss of
   * a follower that then leads cannot take back an acknowledged record.
   */
  flushBeforeFetch: boolean;
}

/** How soon a partition is fetched again when the leader has not caught up with the metadata yet. */
const LEADER_BEHIND_RETRY_MS = 100;

/** Fetch v12: topics by name, last_fetched_epoch and diverging_epoch. */
const FETCH_VERSION = 12;

interface FetchState {
  readonly partition: Partition;
  readonly leaderEpoch: number;
  /** Not fetched before this time (after an error). */
  delayedUntilMs: number;
}

const key = (p: Partition): string => `${p.topic}\u0000${p.index}`;

export class ReplicaFetcherManager {
  private readonly fetchers = new Map<number, ReplicaFetcher>();
  private stopped = false;

  constructor(
    private readonly host: FetcherHost,
    private readonly settings: FetcherSettings,
    private readonly logger: Logger,
  ) {}

  /** Follows `partition` from `leaderId` at `leaderEpoch` (moving it from another leader's fetcher if needed). */
  addPartition(partition: Partition, leaderId: number, leaderEpoch: number): void {
    if (this.stopped) return;
    for (const [id, f] of this.fetchers) if (id !== leaderId) f.remove(partition);
    let f = this.fetchers.get(leaderId);
    if (f === undefined) {
      f = new ReplicaFetcher(leaderId, this.host, this.settings, this.logger);
      this.fetchers.set(leaderId, f);
      f.start();
    }
    f.add({ partition, leaderEpoch, delayedUntilMs: 0 });
  }

  removePartition(partition: Partition): void {
    for (const f of this.fetchers.values()) f.remove(partition);
  }

  /** The partitions each fetcher follows (by leader id), for tests and diagnostics. */
  followed(): Map<number, string[]> {
    return new Map([...this.fetchers].map(([id, f]) => [id, f.partitionNames()]));
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.fetchers.values()].map((f) => f.stop()));
    this.fetchers.clear();
  }
}

export class ReplicaFetcher {
  private readonly partitions = new Map<string, FetchState>();
  private conn: Connection | null = null;
  private stopped = false;
  /** Aborts a connect in progress on stop: a leader that accepts but does not answer yet (still catching up) must not hold the shutdown for replica.socket.timeout.ms. */
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  /** When the fetch in flight was sent (0: none). */
  private inFlightSinceMs = 0;

  constructor(
    readonly leaderId: number,
    private readonly host: FetcherHost,
    private readonly settings: FetcherSettings,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  add(state: FetchState): void {
    const k = key(state.partition);
    const cur = this.partitions.get(k);
    if (cur !== undefined && cur.partition === state.partition && cur.leaderEpoch === state.leaderEpoch) return;
    this.partitions.set(k, state);
    // A fetch hanging well past its long poll (an unreachable leader that came back) would hold
    // the new partition until replica.socket.timeout.ms: start over on a fresh connection.
    if (this.inFlightSinceMs > 0 && Date.now() - this.inFlightSinceMs > this.settings.maxWaitMs + 1000) this.dropConnection();
    this.wake();
  }

  remove(partition: Partition): void {
    const k = key(partition);
    if (this.partitions.get(k)?.partition === partition) this.partitions.delete(k);
    // Nothing left to fetch from this leader: no connection left hanging on it either.
    if (this.partitions.size === 0) this.dropConnection();
  }

  private dropConnection(): void {
    this.conn?.close();
    this.conn = null;
  }

  partitionNames(): string[] {
    return [...this.partitions.values()].map((s) => `${s.partition.topic}-${s.partition.index}`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.conn?.close();
    this.wake();
    await this.loop;
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** Waits up to `ms` or until woken (a partition added, stop). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), Math.max(0, ms));
      const done = (): void => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = null;
        resolve();
      };
      this.wakeUp = done;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const now = Date.now();
      const ready = [...this.partitions.values()].filter((s) => s.delayedUntilMs <= now);
      if (ready.length === 0) {
        const next = Math.min(...[...this.partitions.values()].map((s) => s.delayedUntilMs));
        await this.sleep(Number.isFinite(next) ? next - now : 60_000);
        continue;
      }
      try {
        const conn = await this.connection();
        if (conn === null) {
          await this.sleep(this.settings.backoffMs);
          continue;
        }
        await this.fetchOnce(conn, ready);
      } catch (e) {
        if (this.stopped) break;
        this.logger.info('fetch from the leader failed; backing off', { leader: this.leaderId, error: e instanceof Error ? e.message : String(e), backoffMs: this.settings.backoffMs });
        this.conn?.close();
        this.conn = null;
        await this.sleep(this.settings.backoffMs);
      }
    }
    this.conn?.close();
    this.conn = null;
  }

  private async connection(): Promise<Connection | null> {
    const ep = this.host.endpointOf(this.leaderId);
    if (ep === null) return null;
    if (this.conn !== null && !this.conn.closed && this.conn.host === ep.host && this.conn.port === ep.port) return this.conn;
    this.conn?.close();
    this.conn = null;
    this.conn = await Connection.connect({
      host: ep.host,
      port: ep.port,
      nodeId: this.leaderId,
      clientId: `broker-${this.host.nodeId}-fetcher-${this.leaderId}`,
      connectTimeoutMs: this.settings.socketTimeoutMs,
      requestTimeoutMs: this.settings.socketTimeoutMs,
      maxInFlight: 1,
      signal: this.abort.signal,
    });
    if (this.stopped) this.conn.close();
    return this.conn;
  }

  private async fetchOnce(conn: Connection, ready: FetchState[]): Promise<void> {
    if (this.settings.flushBeforeFetch) {
      // One group-committed fsync per partition that took data since its last one.
      await Promise.all(ready.filter((s) => s.partition.log.recoveryPoint < s.partition.log.logEndOffset).map((s) => s.partition.log.flush()));
    }
    const sent = ready.map((s) => ({ state: s, fetchOffset: s.partition.log.logEndOffset }));
    const byTopic = new Map<string, typeof sent>();
    for (const x of sent) {
      const list = byTopic.get(x.state.partition.topic) ?? [];
      list.push(x);
      byTopic.set(x.state.partition.topic, list);
    }
    const req: FetchRequest = {
      clusterId: null,
      replicaId: this.host.nodeId,
      replicaState: { replicaId: -1, replicaEpoch: -1 },
      maxWaitMs: this.settings.maxWaitMs,
      minBytes: this.settings.minBytes,
      maxBytes: this.settings.responseMaxBytes,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [...byTopic].map(([topic, list]) => ({
        topic,
        topicId: list[0]!.state.partition.topicId,
        partitions: list.map((x) => ({
          partition: x.state.partition.index,
          currentLeaderEpoch: x.state.leaderEpoch,
          fetchOffset: x.fetchOffset,
          lastFetchedEpoch: lastFetchedEpoch(x.state.partition.log),
          logStartOffset: x.state.partition.log.logStartOffset,
          partitionMaxBytes: this.settings.maxBytes,
          replicaDirectoryId: 'AAAAAAAAAAAAAAAAAAAAAA',
        })),
      })),
      forgottenTopicsData: [],
      rackId: '',
    };
    this.inFlightSinceMs = Date.now();
    let res;
    try {
      res = await conn.request(FetchApi, req, { version: FETCH_VERSION, extraTimeoutMs: this.settings.maxWaitMs });
    } finally {
      this.inFlightSinceMs = 0;
    }
    if (res.errorCode !== 0) throw new Error(`Fetch answered error ${res.errorCode}`);
    const sentByKey = new Map(sent.map((x) => [key(x.state.partition), x]));
    for (const t of res.responses) {
      for (const r of t.partitions) {
        const x = sentByKey.get(`${t.topic}\u0000${r.partitionIndex}`);
        if (x === undefined) continue;
        const { state, fetchOffset } = x;
        const part = state.partition;
        // Removed or re-added (a new leader epoch) while the fetch was in flight: its answer is stale.
        if (this.stopped || this.partitions.get(key(part)) !== state || part.log.logEndOffset !== fetchOffset) continue;
        const action = planFollowerFetch(part.log, fetchOffset, {
          errorCode: r.errorCode,
          highWatermark: r.highWatermark,
          logStartOffset: r.logStartOffset,
          divergingEpoch: r.divergingEpoch,
          records: recordsInMemory(r.records),
        });
        if (action.kind === 'await-metadata' || action.kind === 'backoff') {
          this.logger.debug('leader refused the fetch; waiting', { topic: part.topic, partition: part.index, leader: this.leaderId, errorCode: action.errorCode });
          // The leader has not applied the image that makes it leader at this epoch yet (it will
          // within moments, right after an election): ask again soon, not after a full backoff.
          const leaderBehind = action.errorCode === FollowerErrors.UNKNOWN_LEADER_EPOCH || action.errorCode === FollowerErrors.NOT_LEADER_OR_FOLLOWER;
          state.delayedUntilMs = Date.now() + (leaderBehind ? Math.min(this.settings.backoffMs, LEADER_BEHIND_RETRY_MS) : this.settings.backoffMs);
          continue;
        }
        if (action.kind === 'truncate' || action.kind === 'restart') {
          const below = action.kind === 'truncate' && action.offset < part.log.highWatermark;
          (below ? this.logger.warn.bind(this.logger) : this.logger.info.bind(this.logger))(action.kind === 'restart' ? 'restarting the log at the leader\'s log start' : 'truncating to the leader\'s log', {
            topic: part.topic,
            partition: part.index,
            leader: this.leaderId,
            offset: action.offset,
            logEndOffset: part.log.logEndOffset,
            highWatermark: part.log.highWatermark,
          });
        }
        try {
          const changed = await applyFollowerFetch(part.log, action);
          if (changed) this.host.afterFollowerAppend(part);
        } catch (e) {
          if (e instanceof LogClosedError) continue;
          this.logger.warn('could not apply the leader\'s answer; backing off', { topic: part.topic, partition: part.index, leader: this.leaderId, error: e instanceof Error ? e.message : String(e) });
          state.delayedUntilMs = Date.now() + this.settings.backoffMs;
        }
      }
    }
  }
}
