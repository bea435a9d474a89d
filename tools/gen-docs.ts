/**
 * Generates docs/COMPATIBILITY.md (the api × version table, from the handler registry) and
 * docs/CONFIGURATION.md (broker and topic configs, from config.ts), so both stay true to the
 * code. `node dist/tools/gen-docs.js --check` fails if the committed files differ.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALL_APIS, STRAND_APIS } from '../src/protocol/messages/index.js';
import { HANDLERS } from '../src/broker/handlers/index.js';
import { BROKER_CONFIGS, TOPIC_CONFIGS } from '../src/broker/config.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** What Strand deliberately does not do yet, and why: the ledger of gaps. */
const NOT_YET: string[] = [
  'Consumer groups (classic protocol) work with KafkaJS, librdkafka (including cooperative-sticky and static membership) and kafka-python; offsets live in the compacted `__consumer_offsets` (Kafka\'s record format, 50 partitions). The KIP-848 consumer protocol (ConsumerGroupHeartbeat) is not offered.',
  'Transactions: InitProducerId, AddPartitionsToTxn and EndTxn up to v3 (transactions v2, KIP-890 part 2, is not implemented), AddOffsetsToTxn and TxnOffsetCommit up to v3; DescribeTransactions, ListTransactions and DescribeProducers (KIP-664) and WriteTxnMarkers (an operator\'s abort of a hanging transaction; Strand\'s coordinator writes its own markers in-process), with `strand transactions list|describe|describe-producers|find-hanging|abort`.',
  'Several record batches for one partition in one Produce are accepted and appended in order (Kafka v3+ requires exactly one).',
  'Security (docs/SECURITY.md): TLS with PEM key stores only (no JKS/PKCS12); SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (no GSSAPI/Kerberos, OAUTHBEARER or delegation tokens); PLAIN is checked against SCRAM credentials (no JAAS user lists); Strand\'s own client does not re-authenticate (KIP-368) — its connection is closed at the session end and reopened; ACLs on Topic, Group, Cluster and TransactionalId (not DelegationToken or User resources); IP quotas and controller_mutation_rate are not supported.',
  'Replication (ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments): the cluster issue. A single broker is its own controller; `replication.factor` above 1 is refused with INVALID_REPLICATION_FACTOR. The Raft metadata quorum runs on controller-only nodes (`process.roles=controller`), which answer Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch v13, FetchSnapshot, DescribeQuorum, BrokerRegistration and CreateTopics on their controller listener only (docs/CLUSTER.md); brokers do not join it yet.',
  'Incremental fetch sessions (KIP-227) are declined: every Fetch answer carries session id 0 and is a full response, which every client handles.',
  'Message formats v0 and v1 (magic 0/1): Produce answers UNSUPPORTED_FOR_MESSAGE_FORMAT for them, and Strand does not down-convert: a Fetch v0–3 that would return records gets UNSUPPORTED_VERSION for that partition, as Kafka does with `message.downconversion.enable=false`. Produce v0–2 and Fetch v0–3 are advertised because librdkafka turns gzip and snappy on only when they are; it then produces and fetches with v3+/v4+ and magic 2.',
  'Fetch v4–9 may return zstd batches (Kafka refuses them with UNSUPPORTED_COMPRESSION_TYPE below v10); Produce below v7 with zstd is refused with UNSUPPORTED_COMPRESSION_TYPE.',
  'Produce v10–11 and Fetch v14+ (leader hints in tags, replica state) are not advertised yet.',
  'Dynamic broker configs (AlterConfigs on a BROKER resource) are refused; broker configs come from server.properties and --override.',
  'Log compaction: the cleaner compacts `cleanup.policy=compact` topics and the internal topics (tombstones and empty transactions\' markers kept for `delete.retention.ms` via KIP-534 delete horizons, aborted records removed, crash-safe swap). The client\'s table view (`kafka.table()`) reads compacted topics as maps; the CLI shows dirty ratios and the cleaner\'s last run through the DescribeLogCleaner extension. Not yet: keeping the last batch of each producer for its state (Strand relies on its producer-state snapshots); the console\'s view of the cleaner.',
  'Quotas: producer_byte_rate, consumer_byte_rate and request_percentage per user / client id throttle with `throttle_time_ms` and a muted channel; request_percentage measures a request from decode to response ready (Kafka measures I/O thread time), and Fetch is charged to consumer_byte_rate only.',
];

/** What each Strand extension api is for (the table's last column). */
const EXTENSION_PURPOSE: Record<string, string> = {
  DescribeLogCleaner:
    'The log cleaner per partition — dirty ratio, clean/dirty bytes, first dirty offset, cleaner checkpoint, delete horizon, the last pass (times, bytes, records removed) — and cleaner-wide stats; what Kafka exposes only as JMX metrics. `admin.describeLogCleaner()`, `strand topics cleaner`, `strand topics describe`.',
};

function compatibility(): string {
  const byKey = new Map(HANDLERS.map((h) => [h.api.key, h]));
  const isKafka = (key: number): boolean => ALL_APIS.some((a) => a.key === key);
  const rows = HANDLERS.filter((h) => isKafka(h.api.key)).map((h) => {
    const kafka = ALL_APIS.find((a) => a.key === h.api.key)!;
    return `| ${h.api.key} | ${h.api.name} | ${h.minVersion}–${h.maxVersion} | ${kafka.minVersion}–${kafka.maxVersion} |`;
  });
  const missing = ALL_APIS.filter((a) => !byKey.has(a.key)).map((a) => `${a.name} (${a.key})`);
  return [
    '# Compatibility',
    '',
    'Generated by `tools/gen-docs.ts` from the handler registry (`src/broker/handlers/index.ts`): the versions',
    'listed are exactly what ApiVersions advertises, and every one of them is answered. Do not edit by hand.',
    '',
    '| key | api | Strand | Kafka (specs) |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    '## Strand extensions',
    '',
    'Apis Kafka does not have, declared in `src/protocol/strand-specs/` (same JSON format as Kafka\'s specs, codecs',
    'generated the same way) on keys far above Kafka\'s (10000+). They are advertised by ApiVersions like any other;',
    'KafkaJS, librdkafka and kafka-python ignore api keys they do not know (their interop tests run against a broker',
    'that advertises them). Only Strand\'s client and CLI send them.',
    '',
    '| key | api | Strand | what for |',
    '| --- | --- | --- | --- |',
    ...HANDLERS.filter((h) => !isKafka(h.api.key)).map((h) => {
      const ext = STRAND_APIS.find((a) => a.key === h.api.key);
      if (ext === undefined) throw new Error(`handler ${h.api.name} (${h.api.key}) is neither a Kafka api nor a Strand extension`);
      return `| ${h.api.key} | ${h.api.name} | ${h.minVersion}–${h.maxVersion} | ${EXTENSION_PURPOSE[h.api.name] ?? ''} |`;
    }),
    '',
    '## Not supported yet',
    '',
    ...NOT_YET.map((n) => `- ${n}`),
    '',
    `Kafka apis not answered (a request for one closes the connection with a log line, as Kafka does for an unknown api): ${missing.join(', ')}.`,
    '',
  ].join('\n');
}

function configuration(): string {
  const esc = (s: string | null): string => (s === null ? '(none)' : s === '' ? '""' : `\`${s}\``);
  return [
    '# Configuration',
    '',
    'Generated by `tools/gen-docs.ts` from `src/broker/config.ts`. Do not edit by hand.',
    '',
    'Kafka\'s names and defaults. Broker configs come from `--config server.properties` and `--override key=value`',
    '(`--host`, `--port` and `--data-dir` set `listeners` and `log.dirs`). Topic configs are set with CreateTopics,',
    'AlterConfigs or IncrementalAlterConfigs; an unknown name or invalid value is refused with INVALID_CONFIG. A topic',
    'config without an override takes its broker synonym, then Kafka\'s default.',
    '',
    '## Broker',
    '',
    '| name | type | default | |',
    '| --- | --- | --- | --- |',
    ...BROKER_CONFIGS.map((d) => `| \`${d.name}\` | ${d.type} | ${esc(d.default)} | ${d.doc}${d.readOnly ? ' (read-only)' : ''} |`),
    '',
    '## Topic',
    '',
    '| name | type | default | broker synonyms | |',
    '| --- | --- | --- | --- | --- |',
    ...TOPIC_CONFIGS.map((d) => `| \`${d.name}\` | ${d.type} | ${esc(d.default)} | ${d.brokerSynonyms.map((s) => `\`${s}\``).join(', ')} | ${d.doc} |`),
    '',
  ].join('\n');
}

const check = process.argv.includes('--check');
const docs: Array<[string, string]> = [
  ['docs/COMPATIBILITY.md', compatibility()],
  ['docs/CONFIGURATION.md', configuration()],
];
let stale = false;
for (const [rel, text] of docs) {
  const path = join(ROOT, rel);
  if (check) {
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) {
      console.error(`gen-docs: ${rel} is out of date; run \`npm run generate\``);
      stale = true;
    }
  } else {
    writeFileSync(path, text);
  }
}
if (stale) process.exit(1);
if (check) console.log('gen-docs: docs match the code');
