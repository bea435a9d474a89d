/**
 * Broker and topic configuration, with Kafka's names, types and defaults.
 *
 * Every topic config has a broker-level synonym that supplies its default (Kafka's
 * `ServerTopicConfigSynonyms`): `retention.ms` ← `log.retention.ms` ← `log.retention.minutes` ←
 * `log.retention.hours`. A topic's effective config is its own overrides, else the broker's
 * value, else Kafka's default. Values are validated on the way in: an unknown name or a bad value
 * is a ConfigError, which the admin apis answer with INVALID_CONFIG.
 */

export type ConfigType = 'boolean' | 'string' | 'int' | 'short' | 'long' | 'double' | 'list' | 'class' | 'password';

/** DescribeConfigs `config_type` values (KIP-569). */
export const CONFIG_TYPE_CODE: Record<ConfigType, number> = {
  boolean: 1,
  string: 2,
  int: 3,
  short: 4,
  long: 5,
  double: 6,
  list: 7,
  class: 8,
  password: 9,
};

/** DescribeConfigs `config_source` values. */
export const ConfigSource = {
  UNKNOWN: 0,
  DYNAMIC_TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
} as const;

export interface ConfigDef {
  name: string;
  type: ConfigType;
  /** Kafka's default as its string form; null means "no value" (a nullable config). */
  default: string | null;
  doc: string;
  /** Valid values for enumerated strings (list items for lists). */
  oneOf?: readonly string[];
  /** Inclusive numeric bounds. */
  min?: number;
  max?: number;
  readOnly?: boolean;
}

export class ConfigError extends Error {
  readonly code = 'INVALID_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const LONG_MAX = '9223372036854775807';
const INT_MAX = 2147483647;
const DAY_MS = 86400000;

/** Topic-level configs and the broker config each one takes its default from. */
export const TOPIC_CONFIGS: readonly (ConfigDef & { brokerSynonyms: readonly string[] })[] = [
  { name: 'cleanup.policy', type: 'list', default: 'delete', oneOf: ['delete', 'compact'], doc: 'delete and/or compact old segments', brokerSynonyms: ['log.cleanup.policy'] },
  { name: 'compression.type', type: 'string', default: 'producer', oneOf: ['uncompressed', 'zstd', 'lz4', 'snappy', 'gzip', 'producer'], doc: 'stored batches keep the producer codec; other values are accepted and recorded (Strand never recompresses)', brokerSynonyms: ['compression.type'] },
  { name: 'delete.retention.ms', type: 'long', default: String(DAY_MS), min: 0, doc: 'how long tombstones are kept in compacted topics', brokerSynonyms: ['log.cleaner.delete.retention.ms'] },
  { name: 'file.delete.delay.ms', type: 'long', default: '60000', min: 0, doc: 'delay before a deleted segment is removed from disk', brokerSynonyms: ['log.segment.delete.delay.ms'] },
  { name: 'flush.messages', type: 'long', default: LONG_MAX, min: 1, doc: 'fsync after this many messages (acks=0/1)', brokerSynonyms: ['log.flush.interval.messages'] },
  { name: 'flush.ms', type: 'long', default: LONG_MAX, min: 0, doc: 'fsync after this long (acks=0/1)', brokerSynonyms: ['log.flush.interval.ms'] },
  { name: 'index.interval.bytes', type: 'int', default: '4096', min: 0, doc: 'bytes between offset index entries', brokerSynonyms: ['log.index.interval.bytes'] },
  { name: 'max.compaction.lag.ms', type: 'long', default: LONG_MAX, min: 1, doc: 'longest a message stays ineligible for compaction', brokerSynonyms: ['log.cleaner.max.compaction.lag.ms'] },
  { name: 'max.message.bytes', type: 'int', default: '1048588', min: 0, doc: 'largest record batch accepted', brokerSynonyms: ['message.max.bytes'] },
  { name: 'message.timestamp.type', type: 'string', default: 'CreateTime', oneOf: ['CreateTime', 'LogAppendTime'], doc: 'CreateTime keeps the producer timestamp; LogAppendTime stamps the broker time', brokerSynonyms: ['log.message.timestamp.type'] },
  { name: 'message.timestamp.difference.max.ms', type: 'long', default: LONG_MAX, min: 0, doc: 'largest allowed difference between a CreateTime timestamp and the broker time', brokerSynonyms: ['log.message.timestamp.difference.max.ms'] },
  { name: 'message.timestamp.before.max.ms', type: 'long', default: LONG_MAX, min: 0, doc: 'how far in the past a CreateTime timestamp may be', brokerSynonyms: ['log.message.timestamp.before.max.ms'] },
  { name: 'message.timestamp.after.max.ms', type: 'long', default: LONG_MAX, min: 0, doc: 'how far in the future a CreateTime timestamp may be', brokerSynonyms: ['log.message.timestamp.after.max.ms'] },
  { name: 'min.cleanable.dirty.ratio', type: 'double', default: '0.5', min: 0, max: 1, doc: 'dirty ratio that makes a log eligible for compaction', brokerSynonyms: ['log.cleaner.min.cleanable.ratio'] },
  { name: 'min.compaction.lag.ms', type: 'long', default: '0', min: 0, doc: 'shortest time a message stays uncompacted', brokerSynonyms: ['log.cleaner.min.compaction.lag.ms'] },
  { name: 'min.insync.replicas', type: 'int', default: '1', min: 1, doc: 'replicas that must acknowledge an acks=all produce', brokerSynonyms: ['min.insync.replicas'] },
  { name: 'preallocate', type: 'boolean', default: 'false', doc: 'preallocate segment files (accepted; Strand does not preallocate)', brokerSynonyms: ['log.preallocate'] },
  { name: 'retention.bytes', type: 'long', default: '-1', min: -1, doc: 'largest size of a partition log before old segments are deleted; -1 for no limit', brokerSynonyms: ['log.retention.bytes'] },
  { name: 'retention.ms', type: 'long', default: String(7 * DAY_MS), min: -1, doc: 'how long segments are kept; -1 for no limit', brokerSynonyms: ['log.retention.ms', 'log.retention.minutes', 'log.retention.hours'] },
  { name: 'segment.bytes', type: 'int', default: '1073741824', min: 14, doc: 'segment file size', brokerSynonyms: ['log.segment.bytes'] },
  { name: 'segment.index.bytes', type: 'int', default: '10485760', min: 4, doc: 'offset index size; a full index rolls the segment', brokerSynonyms: ['log.index.size.max.bytes'] },
  { name: 'segment.jitter.ms', type: 'long', default: '0', min: 0, doc: 'random jitter subtracted from segment.ms', brokerSynonyms: ['log.roll.jitter.ms', 'log.roll.jitter.hours'] },
  { name: 'segment.ms', type: 'long', default: String(7 * DAY_MS), min: 1, doc: 'time after which a segment is rolled', brokerSynonyms: ['log.roll.ms', 'log.roll.hours'] },
  { name: 'unclean.leader.election.enable', type: 'boolean', default: 'false', doc: 'allow out-of-sync replicas to become leader', brokerSynonyms: ['unclean.leader.election.enable'] },
  { name: 'message.downconversion.enable', type: 'boolean', default: 'true', doc: 'accepted for compatibility; Strand serves only magic 2', brokerSynonyms: ['log.message.downconversion.enable'] },
];

/** Broker-level unit conversions of synonyms: a value for `log.retention.hours` is hours. */
const SYNONYM_SCALE: Record<string, number> = {
  'log.retention.minutes': 60000,
  'log.retention.hours': 3600000,
  'log.roll.hours': 3600000,
  'log.roll.jitter.hours': 3600000,
};

/** Broker-level synonyms of the topic configs; the first synonym carries Kafka's default, the scaled ones (hours, minutes) none. */
function brokerSynonymDefs(): ConfigDef[] {
  const seen = new Set<string>();
  const out: ConfigDef[] = [];
  for (const t of TOPIC_CONFIGS) {
    t.brokerSynonyms.forEach((s, i) => {
      if (seen.has(s)) return;
      seen.add(s);
      out.push({
        name: s,
        type: t.type,
        default: i === 0 ? t.default : null,
        doc: `broker default of topic config ${t.name}${SYNONYM_SCALE[s] ? ` (in ${s.endsWith('hours') ? 'hours' : 'minutes'})` : ''}`,
        ...(t.oneOf ? { oneOf: t.oneOf } : {}),
        ...(t.min !== undefined ? { min: t.min } : {}),
        ...(t.max !== undefined ? { max: t.max } : {}),
      });
    });
  }
  return out;
}

/** Broker configs Strand reads (a Kafka user's server.properties works as is; other keys are logged and ignored). */
export const BROKER_CONFIGS: readonly ConfigDef[] = [
  { name: 'node.id', type: 'int', default: '1', min: 0, doc: 'this broker\'s id', readOnly: true },
  { name: 'broker.id', type: 'int', default: '-1', min: -1, doc: 'synonym of node.id', readOnly: true },
  { name: 'process.roles', type: 'list', default: 'broker,controller', oneOf: ['broker', 'controller'], doc: 'roles of this node (a single node is both)', readOnly: true },
  { name: 'controller.quorum.voters', type: 'list', default: null, doc: 'the metadata quorum\'s voters as id@host:port; when set, the node is a voter of a Raft quorum (process.roles=controller, or broker,controller for a combined node) or, with process.roles=broker, an observer of it; the quorum\'s committed log is the cluster\'s metadata (docs/CLUSTER.md)', readOnly: true },
  { name: 'controller.listener.names', type: 'list', default: null, doc: 'the listeners (by name) that speak the Raft protocol on a controller node', readOnly: true },
  { name: 'controller.quorum.election.timeout.ms', type: 'int', default: '1000', min: 1, doc: 'how long a voter without a leader waits (randomly up to twice this) before standing for election', readOnly: true },
  { name: 'controller.quorum.fetch.timeout.ms', type: 'int', default: '2000', min: 1, doc: 'a follower without a successful fetch for this long stands for election; a leader not fetched from by a majority for this long resigns', readOnly: true },
  { name: 'controller.quorum.request.timeout.ms', type: 'int', default: '2000', min: 1, doc: 'how long a quorum request waits for its answer before it is sent again', readOnly: true },
  { name: 'controller.quorum.retry.backoff.ms', type: 'int', default: '20', min: 0, doc: 'wait before retrying a failed quorum request', readOnly: true },
  { name: 'controller.quorum.append.linger.ms', type: 'int', default: '25', min: 0, doc: 'how long the quorum leader gathers metadata records before one flush', readOnly: true },
  { name: 'broker.heartbeat.interval.ms', type: 'int', default: '2000', min: 1, doc: 'in a cluster, how often a broker heartbeats to the active controller', readOnly: true },
  { name: 'broker.session.timeout.ms', type: 'int', default: '9000', min: 1, doc: 'in a cluster, the active controller fences a broker it has not heard from for this long: it leaves every ISR and its leaderships move', readOnly: true },
  { name: 'auto.leader.rebalance.enable', type: 'boolean', default: 'true', doc: 'the active controller periodically moves leadership back to preferred replicas (the first replica) that are in sync, when a broker leads too few of its preferred partitions', readOnly: true },
  { name: 'leader.imbalance.check.interval.seconds', type: 'long', default: '300', min: 1, doc: 'how often the active controller checks the leader imbalance (auto.leader.rebalance.enable)', readOnly: true },
  { name: 'leader.imbalance.per.broker.percentage', type: 'int', default: '10', min: 0, max: 100, doc: 'the share (%) of a broker\'s preferred partitions it may not lead before the controller rebalances them', readOnly: true },
  { name: 'metadata.log.max.record.bytes.between.snapshots', type: 'long', default: '20971520', min: 1, doc: 'a controller snapshots its metadata image after this many bytes of committed records, and deletes the log below the snapshot', readOnly: true },
  { name: 'listeners', type: 'list', default: 'PLAINTEXT://127.0.0.1:9092', doc: 'addresses the broker listens on (loopback by default)', readOnly: true },
  { name: 'advertised.listeners', type: 'list', default: null, doc: 'addresses given to clients in Metadata; defaults to listeners', readOnly: true },
  { name: 'log.dirs', type: 'list', default: null, doc: 'data directory (one is supported)', readOnly: true },
  { name: 'log.dir', type: 'string', default: './data', doc: 'data directory when log.dirs is not set', readOnly: true },
  { name: 'num.partitions', type: 'int', default: '1', min: 1, doc: 'partitions of an auto-created topic or of CreateTopics with -1' },
  { name: 'default.replication.factor', type: 'int', default: '1', min: 1, doc: 'replication factor of auto-created topics and CreateTopics with -1' },
  { name: 'auto.create.topics.enable', type: 'boolean', default: 'true', doc: 'create a topic on Metadata or Produce for an unknown name' },
  { name: 'delete.topic.enable', type: 'boolean', default: 'true', doc: 'allow DeleteTopics' },
  { name: 'log.retention.check.interval.ms', type: 'long', default: '300000', min: 1, doc: 'how often retention runs' },
  { name: 'log.cleaner.enable', type: 'boolean', default: 'true', doc: 'run the log cleaner, which compacts topics with cleanup.policy=compact' },
  { name: 'log.cleaner.backoff.ms', type: 'long', default: '15000', min: 0, doc: 'how long the log cleaner sleeps when no log needs cleaning' },
  { name: 'log.cleaner.dedupe.buffer.size', type: 'long', default: '134217728', min: 1, doc: 'the most memory the log cleaner\'s offset map takes, as a pass needs it (24 bytes a key, one more a slot); a pass covers as many dirty segments as fit' },
  { name: 'log.cleaner.io.max.bytes.per.second', type: 'double', default: '1.7976931348623157E308', min: 0, doc: 'bytes the log cleaner may read plus write per second (default: no limit)' },
  { name: 'log.cleaner.threads', type: 'int', default: '1', min: 0, doc: 'accepted; Strand runs one cleaner task on the event loop' },
  { name: 'replica.lag.time.max.ms', type: 'long', default: '30000', min: 1, doc: 'a follower that has not caught up with the leader\'s log end for this long leaves the ISR (the leader checks every half of it)' },
  { name: 'replica.fetch.wait.max.ms', type: 'int', default: '500', min: 0, doc: 'how long a follower\'s fetch waits at the leader for new data (long poll)' },
  { name: 'replica.fetch.min.bytes', type: 'int', default: '1', min: 0, doc: 'bytes a follower\'s fetch waits for before the leader answers' },
  { name: 'replica.fetch.max.bytes', type: 'int', default: '1048576', min: 0, doc: 'bytes a follower fetches per partition and round (at least one whole batch)' },
  { name: 'replica.fetch.response.max.bytes', type: 'int', default: '10485760', min: 0, doc: 'bytes of one follower fetch response over all its partitions (at least one whole batch)' },
  { name: 'replica.fetch.backoff.ms', type: 'int', default: '1000', min: 0, doc: 'how long a follower waits after a failed fetch (connection error, leader not ready) before fetching that leader again' },
  { name: 'replica.socket.timeout.ms', type: 'int', default: '30000', min: 1, doc: 'connect and request timeout of a follower\'s fetches (beyond the long poll)' },
  { name: 'replica.high.watermark.checkpoint.interval.ms', type: 'long', default: '5000', min: 1, doc: 'how often the high watermarks are written to `replication-offset-checkpoint` in the data dir (when one moved); a restarted replica starts from them' },
  { name: 'socket.request.max.bytes', type: 'int', default: '104857600', min: 1, doc: 'largest request frame accepted' },
  { name: 'fetch.max.bytes', type: 'int', default: '57671680', min: 0, doc: 'upper bound of a Fetch response' },
  { name: 'strand.network.sendfile', type: 'boolean', default: 'true', doc: 'send fetched segment bytes with sendfile(2) (Strand\'s native addon, Linux, plaintext listeners) instead of copying them through user space; without the addon the broker copies either way' },
  { name: 'strand.acks.all.fsync', type: 'boolean', default: 'true', doc: 'answer an acks=-1 produce only after its batch is fsynced (group commit); false leaves durability to flush.messages / flush.ms, losing up to the OS write-back window on a power failure' },
  { name: 'strand.console.port', type: 'int', default: '-1', min: -1, max: 65535, doc: "serve the web console on this port (`strand broker --console-port`); the console reaches the broker through Strand's client on the broker's own listener. -1 (the default) turns it off, 0 picks a free port" },
  { name: 'strand.console.host', type: 'string', default: '127.0.0.1', doc: 'address the web console listens on (`--console-host`); it has no authentication, so keep it on loopback unless the network is trusted' },
  { name: 'group.initial.rebalance.delay.ms', type: 'int', default: '3000', min: 0, doc: 'how long the first rebalance of an empty group waits for more members (extended per new member, up to the rebalance timeout)' },
  { name: 'group.min.session.timeout.ms', type: 'int', default: '6000', min: 0, doc: 'smallest session timeout a group member may ask for' },
  { name: 'group.max.session.timeout.ms', type: 'int', default: '1800000', min: 0, doc: 'largest session timeout a group member may ask for' },
  { name: 'group.max.size', type: 'int', default: String(INT_MAX), min: 1, doc: 'most members a consumer group may have' },
  { name: 'offsets.topic.num.partitions', type: 'int', default: '50', min: 1, doc: 'partitions of __consumer_offsets, fixed when it is first created', readOnly: true },
  { name: 'offsets.topic.replication.factor', type: 'short', default: '3', min: 1, doc: 'replication factor of __consumer_offsets when it is created (capped, with a warning, at the number of live brokers registered then, so a single node uses 1)', readOnly: true },
  { name: 'offsets.topic.segment.bytes', type: 'int', default: '104857600', min: 1, doc: 'segment size of __consumer_offsets', readOnly: true },
  { name: 'offsets.commit.timeout.ms', type: 'int', default: '5000', min: 1, doc: 'how long an offset commit (and any group coordinator write) waits for the replicas of its __consumer_offsets partition before it fails with COORDINATOR_NOT_AVAILABLE', readOnly: true },
  { name: 'offsets.retention.minutes', type: 'int', default: '10080', min: 1, doc: 'how long the committed offsets of a group without members are kept' },
  { name: 'offsets.retention.check.interval.ms', type: 'long', default: '600000', min: 1, doc: 'how often expired committed offsets are removed' },
  { name: 'offset.metadata.max.bytes', type: 'int', default: '4096', min: 0, doc: 'largest metadata string an offset commit may carry' },
  { name: 'request.timeout.ms', type: 'int', default: '30000', min: 1, doc: 'how long a request from this broker to another (transaction markers to partition leaders) waits for its answer before it fails and is retried', readOnly: true },
  { name: 'transaction.max.timeout.ms', type: 'int', default: '900000', min: 1, doc: 'largest transaction.timeout.ms a transactional producer may ask for (else INVALID_TRANSACTION_TIMEOUT)' },
  { name: 'transactional.id.expiration.ms', type: 'int', default: '604800000', min: 1, doc: 'a transactional id with no transaction for this long is removed' },
  { name: 'transaction.abort.timed.out.transaction.cleanup.interval.ms', type: 'int', default: '10000', min: 1, doc: 'how often transactions past their timeout are aborted (and idle transactional ids expired)' },
  { name: 'transaction.remove.expired.transaction.cleanup.interval.ms', type: 'int', default: '3600000', min: 1, doc: 'accepted; Strand expires transactional ids on the abort check above' },
  { name: 'transaction.state.log.num.partitions', type: 'int', default: '50', min: 1, doc: 'partitions of __transaction_state, fixed when it is first created', readOnly: true },
  { name: 'transaction.state.log.replication.factor', type: 'short', default: '3', min: 1, doc: 'replication factor of __transaction_state when it is created (capped, with a warning, at the number of live brokers registered then, so a single node uses 1)', readOnly: true },
  { name: 'transaction.state.log.min.isr', type: 'int', default: '2', min: 1, doc: 'min.insync.replicas of __transaction_state (capped at its replication factor when it is created)', readOnly: true },
  { name: 'transaction.state.log.segment.bytes', type: 'int', default: '104857600', min: 1, doc: 'segment size of __transaction_state', readOnly: true },
  { name: 'producer.id.expiration.ms', type: 'int', default: '86400000', min: 1, doc: 'producer state of an idle idempotent producer is dropped after this long (by batch timestamp)' },
  { name: 'producer.id.expiration.check.interval.ms', type: 'int', default: '600000', min: 1, doc: 'how often expired producer ids are removed' },
  { name: 'cluster.id', type: 'string', default: null, doc: 'cluster id; generated on first start and kept in meta.properties', readOnly: true },
  { name: 'listener.security.protocol.map', type: 'list', default: 'PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL', doc: 'listener name → security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL); left at its default, the controller.listener.names speak PLAINTEXT, as Kafka', readOnly: true },
  { name: 'inter.broker.listener.name', type: 'string', default: null, doc: 'the listener registered in the metadata log for other brokers; default the first listener', readOnly: true },
  { name: 'ssl.keystore.type', type: 'string', default: 'PEM', oneOf: ['PEM'], doc: 'key store format: PEM only', readOnly: true },
  { name: 'ssl.keystore.location', type: 'string', default: null, doc: 'PEM file with the private key and its certificate chain (SSL and SASL_SSL listeners)', readOnly: true },
  { name: 'ssl.keystore.certificate.chain', type: 'password', default: null, doc: 'the certificate chain as inline PEM (instead of ssl.keystore.location)', readOnly: true },
  { name: 'ssl.keystore.key', type: 'password', default: null, doc: 'the private key as inline PEM (instead of ssl.keystore.location)', readOnly: true },
  { name: 'ssl.key.password', type: 'password', default: null, doc: 'passphrase of an encrypted private key', readOnly: true },
  { name: 'ssl.truststore.type', type: 'string', default: 'PEM', oneOf: ['PEM'], doc: 'trust store format: PEM only', readOnly: true },
  { name: 'ssl.truststore.location', type: 'string', default: null, doc: 'PEM file of the CA certificates client certificates are checked against', readOnly: true },
  { name: 'ssl.truststore.certificates', type: 'password', default: null, doc: 'the trusted CA certificates as inline PEM (instead of ssl.truststore.location)', readOnly: true },
  { name: 'ssl.client.auth', type: 'string', default: 'none', oneOf: ['none', 'requested', 'required'], doc: 'client certificates: none, requested (checked when given) or required (mutual TLS)', readOnly: true },
  { name: 'ssl.enabled.protocols', type: 'list', default: 'TLSv1.2,TLSv1.3', oneOf: ['TLSv1.2', 'TLSv1.3'], doc: 'TLS versions accepted', readOnly: true },
  { name: 'ssl.principal.mapping.rules', type: 'string', default: 'DEFAULT', doc: 'rules mapping a client certificate\'s distinguished name to a user name: RULE:pattern/replacement/[LU],... then DEFAULT (the whole DN)', readOnly: true },
  { name: 'sasl.enabled.mechanisms', type: 'list', default: 'SCRAM-SHA-256,SCRAM-SHA-512', oneOf: ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'], doc: 'SASL mechanisms offered on SASL listeners (PLAIN checks the password against the user\'s SCRAM credential)', readOnly: true },
  { name: 'connections.max.reauth.ms', type: 'long', default: '0', min: 0, doc: 'KIP-368: a SASL session lasts this long; the client must re-authenticate before it ends or its connection is closed (0: sessions never end)', readOnly: true },
  { name: 'connection.failed.authentication.delay.ms', type: 'int', default: '100', min: 0, doc: 'delay before a failed authentication is answered (and the connection closed), to slow down password guessing', readOnly: true },
  { name: 'authorizer.class.name', type: 'string', default: '', doc: 'set to org.apache.kafka.metadata.authorizer.StandardAuthorizer (or kafka.security.authorizer.AclAuthorizer) to check ACLs; empty: every principal may do everything', readOnly: true },
  { name: 'super.users', type: 'string', default: null, doc: 'principals allowed everything, separated by semicolons (User:admin;User:CN=broker)', readOnly: true },
  { name: 'allow.everyone.if.no.acl.found', type: 'boolean', default: 'false', doc: 'with the authorizer on, allow access to a resource that has no ACL at all', readOnly: true },
  { name: 'max.connections', type: 'int', default: String(INT_MAX), min: 0, doc: 'most client connections open at once (over all listeners); further connections are closed at once', readOnly: true },
  { name: 'quota.window.num', type: 'int', default: '11', min: 1, doc: 'samples kept to measure client quota rates', readOnly: true },
  { name: 'quota.window.size.seconds', type: 'int', default: '1', min: 1, doc: 'length of each client quota sample', readOnly: true },
  { name: 'max.connections.per.ip', type: 'int', default: String(INT_MAX), min: 0, doc: 'most connections open at once from one IP address', readOnly: true },
  ...brokerSynonymDefs(),
];

const TOPIC_BY_NAME = new Map(TOPIC_CONFIGS.map((d) => [d.name, d]));
const BROKER_BY_NAME = new Map(BROKER_CONFIGS.map((d) => [d.name, d]));

export const topicConfigDef = (name: string): (ConfigDef & { brokerSynonyms: readonly string[] }) | undefined => TOPIC_BY_NAME.get(name);
export const brokerConfigDef = (name: string): ConfigDef | undefined => BROKER_BY_NAME.get(name);

/** Validates `value` for `def`, returning it normalised (trimmed); throws ConfigError. */
export function validateValue(def: ConfigDef, value: string | null): string | null {
  if (value === null) {
    if (def.default === null) return null;
    throw new ConfigError(`${def.name} may not be null`);
  }
  const v = value.trim();
  switch (def.type) {
    case 'boolean':
      if (v !== 'true' && v !== 'false') throw new ConfigError(`${def.name} must be true or false, got '${value}'`);
      return v;
    case 'int':
    case 'short':
    case 'long': {
      if (!/^-?\d+$/.test(v)) throw new ConfigError(`${def.name} must be an integer, got '${value}'`);
      const n = Number(v);
      const hi = def.type === 'int' ? INT_MAX : def.type === 'short' ? 32767 : Number.MAX_SAFE_INTEGER;
      if (def.type !== 'long' && (n > hi || n < -hi - 1)) throw new ConfigError(`${def.name} is out of range for ${def.type}: ${value}`);
      if (def.min !== undefined && n < def.min) throw new ConfigError(`${def.name} must be at least ${def.min}, got ${value}`);
      if (def.max !== undefined && n > def.max) throw new ConfigError(`${def.name} must be at most ${def.max}, got ${value}`);
      return v;
    }
    case 'double': {
      const n = Number(v);
      if (v === '' || !Number.isFinite(n)) throw new ConfigError(`${def.name} must be a number, got '${value}'`);
      if (def.min !== undefined && n < def.min) throw new ConfigError(`${def.name} must be at least ${def.min}, got ${value}`);
      if (def.max !== undefined && n > def.max) throw new ConfigError(`${def.name} must be at most ${def.max}, got ${value}`);
      return v;
    }
    case 'list': {
      const items = v === '' ? [] : v.split(',').map((s) => s.trim());
      if (def.oneOf) for (const item of items) if (!def.oneOf.includes(item)) throw new ConfigError(`${def.name}: '${item}' is not one of ${def.oneOf.join(', ')}`);
      return items.join(',');
    }
    default:
      if (def.oneOf && !def.oneOf.includes(v)) throw new ConfigError(`${def.name} must be one of ${def.oneOf.join(', ')}, got '${value}'`);
      return v;
  }
}

/** Parses Java-style .properties text (comments, `key=value` or `key: value`, trailing-backslash continuations). */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!.trim();
    const m = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
    else out.set(line, '');
  }
  return out;
}

export interface Listener {
  name: string;
  host: string;
  port: number;
}

export const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
export type SecurityProtocol = (typeof SECURITY_PROTOCOLS)[number];

/** Configs that may be set per listener with a `listener.name.<listener>.` prefix (as Kafka allows for ssl.* and sasl.*). */
const LISTENER_SCOPED = /^(ssl\.|sasl\.|connections\.max\.reauth\.ms$)/;

export function parseListeners(value: string): Listener[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const m = /^([A-Za-z0-9_]+):\/\/(\[[^\]]*\]|[^:]*):(\d+)$/.exec(s);
      if (!m) throw new ConfigError(`bad listener '${s}': expected NAME://host:port`);
      return { name: m[1]!, host: m[2]!.replace(/^\[|\]$/g, ''), port: Number(m[3]) };
    });
}

export interface QuorumVoter {
  id: number;
  host: string;
  port: number;
}

/** Parses `controller.quorum.voters`: `id@host:port,...` (an IPv6 host in brackets). */
export function parseQuorumVoters(value: string): QuorumVoter[] {
  const voters = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const m = /^(\d+)@(\[[^\]]*\]|[^:@]+):(\d+)$/.exec(s);
      if (!m || Number(m[3]) > 65535) throw new ConfigError(`bad controller.quorum.voters entry '${s}': expected id@host:port`);
      return { id: Number(m[1]), host: m[2]!.replace(/^\[|\]$/g, ''), port: Number(m[3]) };
    });
  if (voters.length === 0) throw new ConfigError('controller.quorum.voters is empty');
  if (new Set(voters.map((v) => v.id)).size !== voters.length) throw new ConfigError(`controller.quorum.voters names a node twice: ${value}`);
  return voters;
}

/**
 * The broker's static configuration: values from server.properties and --override, validated,
 * over Kafka's defaults. Unknown keys are kept (and reported by `unknownKeys`) so that a Kafka
 * server.properties with settings Strand does not use still starts.
 */
export class BrokerConfig {
  private readonly values = new Map<string, string>();
  readonly unknownKeys: string[] = [];

  /** `listener.name.<listener>.<config>` overrides, keyed by lower-case listener name then config name. */
  private readonly perListener = new Map<string, Map<string, string>>();

  constructor(props: Map<string, string>) {
    for (const [k, v] of props) {
      const prefixed = /^listener\.name\.([A-Za-z0-9_]+)\.(.+)$/.exec(k);
      if (prefixed !== null && LISTENER_SCOPED.test(prefixed[2]!) && BROKER_BY_NAME.has(prefixed[2]!)) {
        const norm = validateValue(BROKER_BY_NAME.get(prefixed[2]!)!, v);
        const listener = prefixed[1]!.toLowerCase();
        if (!this.perListener.has(listener)) this.perListener.set(listener, new Map());
        if (norm !== null) this.perListener.get(listener)!.set(prefixed[2]!, norm);
        continue;
      }
      const def = BROKER_BY_NAME.get(k);
      if (def === undefined) {
        this.unknownKeys.push(k);
        continue;
      }
      const norm = validateValue(def, v);
      if (norm !== null) this.values.set(k, norm);
    }
    const map = this.securityProtocolMap;
    const listeners = parseListeners(this.string('listeners'));
    const names = new Set<string>();
    for (const l of listeners) {
      if (!map.has(l.name)) throw new ConfigError(`listener ${l.name} has no security protocol in listener.security.protocol.map (a controller listener named in controller.listener.names defaults to PLAINTEXT)`);
      if (names.has(l.name)) throw new ConfigError(`listener ${l.name} appears twice in listeners`);
      names.add(l.name);
    }
    if (this.has('advertised.listeners')) {
      for (const l of parseListeners(this.string('advertised.listeners'))) {
        if (!names.has(l.name)) throw new ConfigError(`advertised listener ${l.name} is not in listeners`);
      }
    }
    const inter = this.raw('inter.broker.listener.name');
    if (inter !== null && !names.has(inter)) throw new ConfigError(`inter.broker.listener.name ${inter} is not in listeners`);
    if (this.has('controller.quorum.voters')) parseQuorumVoters(this.string('controller.quorum.voters'));
  }

  /** Listener name → security protocol, from `listener.security.protocol.map`. */
  get securityProtocolMap(): Map<string, SecurityProtocol> {
    const out = new Map<string, SecurityProtocol>();
    for (const entry of this.string('listener.security.protocol.map').split(',')) {
      if (entry === '') continue;
      const [name, protocol] = entry.split(':');
      if (name === undefined || protocol === undefined || !(SECURITY_PROTOCOLS as readonly string[]).includes(protocol)) {
        throw new ConfigError(`listener.security.protocol.map: bad entry '${entry}' (expected NAME:${SECURITY_PROTOCOLS.join('|')})`);
      }
      out.set(name, protocol as SecurityProtocol);
    }
    // As Kafka: with the map left at its default, the controller listeners speak PLAINTEXT.
    if (!this.has('listener.security.protocol.map')) {
      for (const name of (this.raw('controller.listener.names') ?? '').split(',')) if (name !== '' && !out.has(name)) out.set(name, 'PLAINTEXT');
    }
    return out;
  }

  /** A config as it applies to one listener: `listener.name.<listener>.<name>` if set, else the broker-wide value. */
  forListener(listener: string, name: string): string | null {
    return this.perListener.get(listener.toLowerCase())?.get(name) ?? this.raw(name);
  }

  /** `controller.quorum.voters`, or null when not set (a single node with local metadata). */
  get quorumVoters(): QuorumVoter[] | null {
    return this.has('controller.quorum.voters') ? parseQuorumVoters(this.string('controller.quorum.voters')) : null;
  }

  get processRoles(): Array<'broker' | 'controller'> {
    return this.string('process.roles').split(',').filter((r) => r !== '') as Array<'broker' | 'controller'>;
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /** The configured value, or the default; null when neither exists. */
  raw(name: string): string | null {
    const v = this.values.get(name);
    if (v !== undefined) return v;
    const def = BROKER_BY_NAME.get(name);
    if (def === undefined) throw new Error(`unknown broker config ${name}`);
    return def.default;
  }

  string(name: string): string {
    const v = this.raw(name);
    if (v === null) throw new Error(`broker config ${name} has no value`);
    return v;
  }

  number(name: string): number {
    return Number(this.string(name));
  }

  bool(name: string): boolean {
    return this.string(name) === 'true';
  }

  get nodeId(): number {
    return this.has('node.id') ? this.number('node.id') : this.has('broker.id') ? this.number('broker.id') : this.number('node.id');
  }

  get dataDir(): string {
    const dirs = this.raw('log.dirs');
    return dirs !== null ? dirs.split(',')[0]! : this.string('log.dir');
  }

  get listeners(): Listener[] {
    return parseListeners(this.string('listeners'));
  }

  get advertisedListeners(): Listener[] {
    const adv = this.raw('advertised.listeners');
    const ls = parseListeners(adv ?? this.string('listeners'));
    // A wildcard bind address cannot be dialled: advertise loopback instead (Kafka uses the host name).
    return ls.map((l) => (l.host === '' || l.host === '0.0.0.0' || l.host === '::' ? { ...l, host: '127.0.0.1' } : l));
  }

  /** Static values explicitly set (for DescribeConfigs sources). */
  explicitly(name: string): string | undefined {
    return this.values.get(name);
  }

  /** The broker-level value of a topic config: the first synonym set, scaled to the topic's unit; else null. */
  topicDefault(topicConfig: string): { value: string; source: string } | null {
    const def = TOPIC_BY_NAME.get(topicConfig);
    if (def === undefined) return null;
    for (const syn of def.brokerSynonyms) {
      const v = this.values.get(syn);
      if (v !== undefined) {
        const scale = SYNONYM_SCALE[syn];
        return { value: scale === undefined || v === '-1' ? v : String(Number(v) * scale), source: syn };
      }
    }
    return null;
  }
}

/** A topic's config overrides, validated; the effective value falls back to the broker, then Kafka. */
export function validateTopicConfigs(entries: Iterable<[string, string | null]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of entries) {
    const def = TOPIC_BY_NAME.get(k);
    if (def === undefined) throw new ConfigError(`Unknown topic config name: ${k}`);
    const norm = validateValue(def, v);
    if (norm !== null) out.set(k, norm);
  }
  return out;
}

export interface EffectiveConfig {
  value: string | null;
  source: number;
  synonyms: Array<{ name: string; value: string | null; source: number }>;
}

export function effectiveTopicConfig(name: string, overrides: ReadonlyMap<string, string>, broker: BrokerConfig): EffectiveConfig {
  const def = TOPIC_BY_NAME.get(name);
  if (def === undefined) throw new Error(`unknown topic config ${name}`);
  const synonyms: EffectiveConfig['synonyms'] = [];
  const own = overrides.get(name);
  if (own !== undefined) synonyms.push({ name, value: own, source: ConfigSource.DYNAMIC_TOPIC_CONFIG });
  for (const syn of def.brokerSynonyms) {
    const v = broker.explicitly(syn);
    if (v !== undefined) synonyms.push({ name: syn, value: v, source: ConfigSource.STATIC_BROKER_CONFIG });
  }
  synonyms.push({ name: def.brokerSynonyms[0]!, value: def.default, source: ConfigSource.DEFAULT_CONFIG });
  if (own !== undefined) return { value: own, source: ConfigSource.DYNAMIC_TOPIC_CONFIG, synonyms };
  const b = broker.topicDefault(name);
  if (b !== null) return { value: b.value, source: ConfigSource.STATIC_BROKER_CONFIG, synonyms };
  return { value: def.default, source: ConfigSource.DEFAULT_CONFIG, synonyms };
}

/** The effective value of every topic config, as a plain map. */
export function effectiveTopicConfigs(overrides: ReadonlyMap<string, string>, broker: BrokerConfig): Map<string, string | null> {
  return new Map(TOPIC_CONFIGS.map((d) => [d.name, effectiveTopicConfig(d.name, overrides, broker).value]));
}

/** Parses a long config value for use as a JS number (Long.MAX_VALUE becomes MAX_SAFE_INTEGER). */
export function longValue(v: string | null): number {
  if (v === null) return Number.MAX_SAFE_INTEGER;
  const n = Number(v);
  return n > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : n;
}
