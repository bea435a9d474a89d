/**
 * What the web console can ask of a cluster, as plain JSON-ready data. Everything goes through
 * Strand's client (Kafka, Admin, Consumer): the console never reads a broker's files or objects,
 * so it works the same against Strand (embedded or not) and against any Kafka-compatible cluster.
 *
 * Input is validated here, before any request is sent: a bad value is an `ApiError` with Kafka's
 * error name (INVALID_REQUEST, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, ...) and an HTTP status.
 * Kafka errors from the cluster pass through as the client's `KafkaError`s, named the same way.
 */
import type { Admin, ConfigEntry, OffsetSpec } from '../client/admin.js';
import type { Kafka } from '../client/kafka.js';
import type { ConsumerMessage } from '../client/consumer.js';
import type { PartitionCleanerState } from '../client/log-cleaner.js';
import { StrandError } from '../client/errors.js';

/** A request the console refuses before it reaches the cluster. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The most records one browse request returns. */
export const MAX_BROWSE_RECORDS = 500;
/** Values longer than this are cut in the browser view (the full length is reported). */
export const MAX_SHOWN_VALUE_BYTES = 64 * 1024;
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

export function invalid(message: string): ApiError {
  return new ApiError('INVALID_REQUEST', message, 400);
}

export function topicName(name: unknown): string {
  if (typeof name !== 'string' || !TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw new ApiError('INVALID_TOPIC_EXCEPTION', `not a valid topic name: ${JSON.stringify(name)} (letters, digits, ".", "_", "-", at most 249 characters)`, 400);
  }
  return name;
}

export function groupId(id: unknown): string {
  if (typeof id !== 'string' || id === '' || id.length > 1000) throw invalid(`not a valid group id: ${JSON.stringify(id)}`);
  return id;
}

/** An integer within bounds, from JSON or a query string. */
export function intOf(v: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) throw invalid(`${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

/** A timestamp: epoch milliseconds or an ISO-8601 date-time. */
export function timestampOf(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return Number(v);
    const t = Date.parse(v);
    if (!Number.isNaN(t) && t >= 0) return t;
  }
  throw invalid(`${what} must be epoch milliseconds or an ISO-8601 date-time, got ${JSON.stringify(v)}`);
}

function stringRecord(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`${what} must be an object of name → value strings`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') throw invalid(`${what}.${k} must be a string`);
    if (k === '' || k.length > 255) throw invalid(`${what} has an invalid config name`);
    out[k] = String(x);
  }
  return out;
}

function object(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** Bytes as the browser shows them: UTF-8 text when they are valid UTF-8, else base64; JSON flagged. */
export interface ShownBytes {
  /** null for a null key or value. */
  text: string | null;
  encoding: 'utf8' | 'base64';
  /** The length of the original bytes. */
  size: number;
  /** True when the text is a JSON object or array (the browser pretty-prints it). */
  json: boolean;
  /** True when the bytes were cut at MAX_SHOWN_VALUE_BYTES. */
  truncated: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function showBytes(b: Buffer | null): ShownBytes {
  if (b === null) return { text: null, encoding: 'utf8', size: 0, json: false, truncated: false };
  const cut = b.length > MAX_SHOWN_VALUE_BYTES;
  const part = cut ? b.subarray(0, MAX_SHOWN_VALUE_BYTES) : b;
  let text: string;
  try {
    text = utf8.decode(part);
    // Control characters other than whitespace mean binary data that happens to decode.
    if (/[\u0000-\u0008\u000e-\u001f]/.test(text)) throw new Error('binary');
  } catch {
    return { text: part.toString('base64'), encoding: 'base64', size: b.length, json: false, truncated: cut };
  }
  let json = false;
  if (!cut && /^\s*[[{]/.test(text)) {
    try {
      JSON.parse(text);
      json = true;
    } catch {
      json = false;
    }
  }
  return { text, encoding: 'utf8', size: b.length, json, truncated: cut };
}

export interface BrowsedRecord {
  partition: number;
  offset: number;
  timestamp: number;
  key: ShownBytes;
  value: ShownBytes;
  headers: Array<{ key: string; value: ShownBytes }>;
}

function kafkaConfigs(entries: ConfigEntry[]): Array<{ name: string; value: string | null; source: string; readOnly: boolean; isDefault: boolean; sensitive: boolean }> {
  const SOURCES: Record<number, string> = { 0: 'unknown', 1: 'topic', 2: 'dynamic broker', 3: 'dynamic default', 4: 'broker', 5: 'default', 6: 'static', 7: 'dynamic logger' };
  return entries
    .map((c) => ({ name: c.name, value: c.isSensitive ? null : c.value, source: SOURCES[c.source] ?? String(c.source), readOnly: c.readOnly, isDefault: c.isDefault, sensitive: c.isSensitive }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** True when a KafkaError/StrandError has this code. */
function hasCode(e: unknown, code: string): boolean {
  return e instanceof StrandError && e.code === code;
}

export class ConsoleApi {
  constructor(
    private readonly kafka: Kafka,
    readonly admin: Admin,
    /** The bootstrap addresses, shown in the header. */
    readonly bootstrap: string[],
  ) {}

  // ----------------------------------------------------------------------------------- cluster

  async cluster(): Promise<unknown> {
    const [c, versions] = await Promise.all([this.admin.describeCluster(), this.admin.apiVersions()]);
    let logDirs: Awaited<ReturnType<Admin['describeLogDirs']>> = [];
    try {
      logDirs = await this.admin.describeLogDirs({ topics: [] });
    } catch (e) {
      if (!hasCode(e, 'UNSUPPORTED_VERSION')) throw e;
    }
    return {
      clusterId: c.clusterId,
      controllerId: c.controllerId,
      bootstrap: this.bootstrap,
      brokers: c.brokers
        .sort((a, b) => a.nodeId - b.nodeId)
        .map((b) => {
          const dirs = logDirs.filter((d) => d.broker === b.nodeId);
          return {
            ...b,
            isController: b.nodeId === c.controllerId,
            logDirs: dirs.map((d) => ({ path: d.logDir, totalBytes: d.totalBytes, usableBytes: d.usableBytes })),
            apis: versions.find((v) => v.broker === b.nodeId)?.apis ?? [],
          };
        }),
    };
  }

  // ------------------------------------------------------------------------------------ topics

  /** Sizes on disk per topic-partition, or null when the cluster does not answer DescribeLogDirs. */
  private async sizes(topics?: string[]): Promise<Map<string, number> | null> {
    try {
      const dirs = await this.admin.describeLogDirs(topics === undefined ? {} : { topics });
      const out = new Map<string, number>();
      for (const d of dirs) for (const p of d.partitions) if (!p.isFuture) out.set(`${p.topic}\u0000${p.partition}`, (out.get(`${p.topic}\u0000${p.partition}`) ?? 0) + p.sizeBytes);
      return out;
    } catch (e) {
      if (hasCode(e, 'UNSUPPORTED_VERSION')) return null;
      throw e;
    }
  }

  async topics(includeInternal: boolean): Promise<unknown> {
    const names = await this.admin.listTopics({ includeInternal });
    if (names.length === 0) return { topics: [] };
    const described = await this.admin.describeTopics(names);
    const sizes = await this.sizes();
    const configs = await this.admin.describeConfigs(names.map((name) => ({ type: 'topic' as const, name, keys: ['cleanup.policy', 'retention.ms'] })));
    const configOf = (topic: string, key: string): string | null => configs.find((c) => c.name === topic)?.configs.find((c) => c.name === key)?.value ?? null;
    const topics = [];
    for (const t of described) {
      const [starts, ends] = await Promise.all([this.admin.listOffsets(t.name, 'earliest'), this.admin.listOffsets(t.name, 'latest')]);
      const records = ends.reduce((n, e) => n + Math.max(0, e.offset - (starts.find((s) => s.partition === e.partition)?.offset ?? 0)), 0);
      topics.push({
        name: t.name,
        internal: t.isInternal,
        partitions: t.partitions.length,
        replicationFactor: t.partitions[0]?.replicas.length ?? 0,
        underReplicated: t.partitions.filter((p) => p.isr.length < p.replicas.length).length,
        records,
        sizeBytes: sizes === null ? null : t.partitions.reduce((n, p) => n + (sizes.get(`${t.name}\u0000${p.partition}`) ?? 0), 0),
        cleanupPolicy: configOf(t.name, 'cleanup.policy'),
        retentionMs: configOf(t.name, 'retention.ms'),
      });
    }
    return { topics };
  }

  async topic(name: string): Promise<unknown> {
    topicName(name);
    const [t] = await this.admin.describeTopics([name]);
    const [starts, ends, configs, sizes] = await Promise.all([
      this.admin.listOffsets(name, 'earliest'),
      this.admin.listOffsets(name, 'latest'),
      this.admin.describeConfigs([{ type: 'topic', name }]),
      this.sizes([name]),
    ]);
    const cleaner = await this.cleaner(name, configs[0]?.configs ?? []);
    const partitions = t!.partitions.map((p) => {
      const start = starts.find((s) => s.partition === p.partition)?.offset ?? 0;
      const end = ends.find((e) => e.partition === p.partition)?.offset ?? 0;
      const c = cleaner?.get(p.partition) ?? null;
      return {
        partition: p.partition,
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        replicas: p.replicas,
        isr: p.isr,
        startOffset: start,
        endOffset: end,
        records: Math.max(0, end - start),
        sizeBytes: sizes === null ? null : (sizes.get(`${name}\u0000${p.partition}`) ?? 0),
        cleaner: c === null ? null : { dirtyRatio: c.dirtyRatio, lastRunEndMs: c.lastRun?.endMs ?? null, recordsRemoved: c.lastRun?.recordsRemoved ?? null, lastError: c.lastError },
      };
    });
    return { name, topicId: t!.topicId, internal: t!.isInternal, compacted: cleaner !== null, partitions, configs: kafkaConfigs(configs[0]?.configs ?? []) };
  }

  /**
   * The log cleaner's view of a compacted topic's partitions (Strand's DescribeLogCleaner
   * extension); null for a topic that is not compacted, or a cluster that does not offer it.
   */
  private async cleaner(name: string, configs: ConfigEntry[]): Promise<Map<number, PartitionCleanerState> | null> {
    const policy = configs.find((c) => c.name === 'cleanup.policy')?.value ?? '';
    if (!policy.split(',').includes('compact')) return null;
    try {
      const d = await this.admin.describeLogCleaner([name]);
      return new Map((d.topics.find((x) => x.name === name)?.partitions ?? []).map((p) => [p.partition, p]));
    } catch (e) {
      if (hasCode(e, 'UNSUPPORTED_VERSION')) return null;
      throw e;
    }
  }

  async createTopic(body: unknown): Promise<unknown> {
    const b = object(body);
    const name = topicName(b['name']);
    const partitions = b['partitions'] === undefined ? -1 : intOf(b['partitions'], 'partitions', 1, 100000);
    const replicationFactor = b['replicationFactor'] === undefined ? -1 : intOf(b['replicationFactor'], 'replicationFactor', 1, 32767);
    const configs = stringRecord(b['configs'], 'configs');
    await this.admin.createTopics([{ name, partitions, replicationFactor, configs }]);
    return { created: name };
  }

  async addPartitions(name: string, body: unknown): Promise<unknown> {
    topicName(name);
    const count = intOf(object(body)['count'], 'count', 1, 100000);
    await this.admin.createPartitions([{ topic: name, count }]);
    return { topic: name, partitions: count };
  }

  async alterConfigs(name: string, body: unknown): Promise<unknown> {
    topicName(name);
    const b = object(body);
    const set = stringRecord(b['set'], 'set');
    const del = b['delete'] ?? [];
    if (!Array.isArray(del) || del.some((d) => typeof d !== 'string' || d === '')) throw invalid('delete must be a list of config names');
    if (Object.keys(set).length === 0 && del.length === 0) throw invalid('nothing to change: give set and/or delete');
    await this.admin.alterConfigs([{ type: 'topic', name, set, delete: del as string[] }]);
    return { topic: name, set, delete: del };
  }

  /** Deleting needs the topic's name typed again (`confirm`), as the browser's confirmation step asks. */
  async deleteTopic(name: string, confirm: unknown): Promise<unknown> {
    topicName(name);
    if (confirm !== name) throw new ApiError('INVALID_REQUEST', `deleting a topic needs confirm=${name} (its name, typed again)`, 400);
    await this.admin.deleteTopics([name]);
    return { deleted: name };
  }

  // ---------------------------------------------------------------------------------- messages

  /**
   * Reads up to `limit` records of one partition from an offset (clamped to the log), from the
   * first record at or after a timestamp, or the last `limit` records (`from=end`). Returns at
   * once with no records when the partition has none past the offset (the live tail polls).
   */
  async browse(name: string, q: URLSearchParams): Promise<unknown> {
    topicName(name);
    const partition = intOf(q.get('partition') ?? '0', 'partition', 0, 1000000);
    const limit = intOf(q.get('limit') ?? '50', 'limit', 1, MAX_BROWSE_RECORDS);
    const [t] = await this.admin.describeTopics([name]);
    if (partition >= t!.partitions.length) throw new ApiError('UNKNOWN_TOPIC_OR_PARTITION', `${name} has no partition ${partition} (it has ${t!.partitions.length})`, 404);
    const [[start], [end]] = await Promise.all([this.admin.listOffsets(name, 'earliest', [partition]), this.admin.listOffsets(name, 'latest', [partition])]);
    const startOffset = start!.offset;
    const endOffset = end!.offset;
    let from: number;
    if (q.has('timestamp')) {
      const ts = timestampOf(q.get('timestamp'), 'timestamp');
      const [at] = await this.admin.listOffsets(name, { timestamp: ts } as OffsetSpec, [partition]);
      from = at!.offset < 0 ? endOffset : at!.offset;
    } else if (q.get('from') === 'end') from = Math.max(startOffset, endOffset - limit);
    else if (q.has('offset')) from = intOf(q.get('offset'), 'offset', 0);
    else from = startOffset;
    from = Math.min(Math.max(from, startOffset), endOffset);
    const records = from >= endOffset ? [] : await this.read(name, partition, from, Math.min(endOffset, from + limit), limit);
    const next = records.length > 0 ? records[records.length - 1]!.offset + 1 : from;
    return { topic: name, partition, startOffset, endOffset, from, next, records };
  }

  /** Reads [from, until) of a partition with a group-less consumer; stops early on `limit` or after 5 s. */
  private async read(topic: string, partition: number, from: number, until: number, limit: number): Promise<BrowsedRecord[]> {
    const consumer = this.kafka.consumer({ isolationLevel: 'read_uncommitted', maxWaitMs: 100, maxPartitionBytes: 4 << 20 });
    const out: BrowsedRecord[] = [];
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => (done = resolve));
    let next = from;
    const timer = setTimeout(done, 5000);
    try {
      consumer.assign([{ topic, partition, offset: from }]);
      await consumer.run({
        eachBatch: ({ batch }) => {
          for (const m of batch.messages as ConsumerMessage[]) {
            if (m.offset < from || out.length >= limit) continue;
            out.push({
              partition: m.partition,
              offset: m.offset,
              timestamp: m.timestamp,
              key: showBytes(m.rawKey),
              value: showBytes(m.rawValue),
              headers: m.headers.map((h) => ({ key: h.key, value: showBytes(h.value) })),
            });
            next = m.offset + 1;
          }
          // Control records (transaction markers) take offsets no message shows: the batch's end counts too.
          const last = batch.messages[batch.messages.length - 1];
          if (last !== undefined) next = Math.max(next, last.offset + 1);
          if (out.length >= limit || next >= until) done();
        },
      });
      consumer.done().then(done, done);
      await finished;
    } finally {
      clearTimeout(timer);
      await consumer.close().catch(() => {});
    }
    return out;
  }

  // ------------------------------------------------------------------------------------ groups

  async groups(): Promise<unknown> {
    const listed = await this.admin.listGroups();
    const groups = [];
    for (const g of listed) {
      let lag: number | null = null;
      let topics: string[] = [];
      let members = 0;
      try {
        const [d] = await this.admin.describeGroups([g.groupId]);
        members = d?.members.length ?? 0;
        const l = await this.admin.groupLag(g.groupId);
        lag = l.reduce((n, p) => n + p.lag, 0);
        topics = [...new Set(l.map((p) => p.topic))].sort();
      } catch (e) {
        // A group whose topic was deleted still lists; its lag is unknown.
        if (!(e instanceof StrandError)) throw e;
      }
      groups.push({ groupId: g.groupId, state: g.state || 'Unknown', protocolType: g.protocolType, members, topics, lag });
    }
    return { groups };
  }

  async group(id: string): Promise<unknown> {
    groupId(id);
    const [d] = await this.admin.describeGroups([id]);
    if (d === undefined || (d.state === 'Dead' && d.members.length === 0 && (await this.admin.fetchOffsets(id)).length === 0)) {
      throw new ApiError('GROUP_ID_NOT_FOUND', `no group ${id}`, 404);
    }
    const lag = await this.admin.groupLag(id);
    const owner = new Map<string, string>();
    for (const m of d.members) for (const a of m.assignment) for (const p of a.partitions) owner.set(`${a.topic}\u0000${p}`, m.memberId);
    return {
      groupId: id,
      state: d.state,
      protocolType: d.protocolType,
      protocol: d.protocol,
      members: d.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost, assignment: m.assignment })),
      offsets: lag.map((p) => ({ topic: p.topic, partition: p.partition, committed: p.offset, end: p.end, lag: p.lag, member: owner.get(`${p.topic}\u0000${p.partition}`) ?? null })),
      totalLag: lag.reduce((n, p) => n + p.lag, 0),
    };
  }

  /**
   * Moves a group's committed offsets for one topic: to earliest, latest, an offset (every
   * partition, clamped to its log) or a timestamp. Only for a group without members (Kafka
   * answers NON_EMPTY_GROUP otherwise; the check here gives the same name before any write).
   */
  async resetOffsets(id: string, body: unknown): Promise<unknown> {
    groupId(id);
    const b = object(body);
    const topic = topicName(b['topic']);
    if (b['confirm'] !== id) throw invalid(`resetting offsets needs confirm=${id} (the group id, typed again)`);
    const to = b['to'];
    const [d] = await this.admin.describeGroups([id]);
    if (d !== undefined && d.members.length > 0) throw new ApiError('NON_EMPTY_GROUP', `group ${id} has ${d.members.length} active member(s): stop its consumers before resetting offsets`, 409);
    let spec: OffsetSpec | { offsets: Array<{ partition: number; offset: number }> };
    if (to === 'earliest' || to === 'latest') spec = to;
    else if (to === 'offset') {
      const offset = intOf(b['offset'], 'offset', 0);
      const [starts, ends] = await Promise.all([this.admin.listOffsets(topic, 'earliest'), this.admin.listOffsets(topic, 'latest')]);
      spec = { offsets: ends.map((e) => ({ partition: e.partition, offset: Math.min(e.offset, Math.max(offset, starts.find((s) => s.partition === e.partition)?.offset ?? 0)) })) };
    } else if (to === 'timestamp') {
      const ts = timestampOf(b['timestamp'], 'timestamp');
      const [at, ends] = await Promise.all([this.admin.listOffsets(topic, { timestamp: ts }), this.admin.listOffsets(topic, 'latest')]);
      spec = { offsets: at.map((a) => ({ partition: a.partition, offset: a.offset >= 0 ? a.offset : (ends.find((e) => e.partition === a.partition)?.offset ?? 0) })) };
    } else throw invalid(`to must be earliest, latest, offset or timestamp, got ${JSON.stringify(to)}`);
    const offsets = await this.admin.resetOffsets(id, topic, spec);
    return { groupId: id, topic, offsets: offsets.map((o) => ({ partition: o.partition, offset: o.offset })) };
  }
}
