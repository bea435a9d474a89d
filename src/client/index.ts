/**
 * Strand's Kafka client: the public API. Everything a user imports comes from here (re-exported
 * by the package entry `strand`); other modules under src/client are internal.
 */
export { Kafka, type KafkaOptions } from './kafka.js';
export { Producer, type ProducerOptions, type ProducerRecord, type RecordMetadata, type Acks, type Headers, type HeaderValue } from './producer.js';
export {
  Consumer,
  DLT_HEADERS,
  type ConsumerOptions,
  type ConsumerMessage,
  type EachMessagePayload,
  type EachBatchPayload,
  type RunOptions,
  type CommitStrategy,
  type ConsumerRetryPolicy,
  type TopicPartitionOffset,
} from './consumer.js';
export {
  Admin,
  type NewTopic,
  type TopicDescription,
  type ResourceType,
  type ConfigEntry,
  type ConfigResourceResult,
  type AlterConfigsSpec,
  type OffsetSpec,
  type PartitionOffset,
  type GroupListing,
  type GroupDescription,
  type GroupMemberDescription,
  type GroupOffset,
  type PartitionLag,
  type TransactionListing,
  type ListTransactionsOptions,
  type TransactionDescription,
  type ProducerStateDescription,
  type PartitionProducers,
  type AbortTransactionSpec,
  type LogDirDescription,
  type BrokerApiVersions,
} from './admin.js';
export { Transaction, type TransactionState, type SendOffsetsOptions, type ConsumerGroupMetadata, type HasGroupMetadata } from './transaction.js';
export { runExactlyOnce, type ExactlyOnceOptions, type ExactlyOncePayload } from './exactly-once.js';
export { Table, type TableOptions, type TableChange } from './table.js';
export type { LogCleanerDescription, TopicCleanerState, PartitionCleanerState, BrokerCleanerState, CleanerRun } from './log-cleaner.js';
export { StrandError, KafkaError, ConnectionError, type StrandErrorOptions } from './errors.js';
export { murmur2, toPositive, partitionForKey, type Partitioner } from './partitioner.js';
export { rangeAssignor, roundRobinAssignor, type Assignor, type AssignorName, type MemberSubscription, type Assignment } from './assignors.js';
export { stringSerde, jsonSerde, bytesSerde, serializers, type Serializer, type Deserializer, type Serde } from './serializers.js';
export { channels as diagnosticsChannels } from './connection.js';
export type { ClientLogger } from './logger.js';
export type { RetryOptions } from './cluster.js';
export type { SaslOptions } from './connection.js';
export { AdminSecurity, type AclBinding, type AclFilter, type AclOperation, type AclPatternType, type AclPermission, type AclResourceType, type QuotaEntity, type ScramUser } from './admin-security.js';
export type { CompressionName } from '../protocol/compression.js';
export type { RecordHeader } from '../protocol/records.js';
