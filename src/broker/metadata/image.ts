/**
 * The metadata image: what the cluster is, as applied from the metadata log.
 *
 * Every change to topics, partitions and configs is a MetadataRecord in the metadata log; the
 * image is the result of replaying those records in order (KRaft's MetadataImage). Images are
 * immutable: `apply` returns a new image sharing what did not change, so a handler that took an
 * image before an `await` keeps a consistent view. On one broker the log is local; in a cluster
 * the same records arrive through the Raft quorum.
 */

export type MetadataRecord =
  | { type: 'Topic'; name: string; topicId: string }
  | {
      type: 'Partition';
      topicId: string;
      partition: number;
      replicas: number[];
      isr: number[];
      leader: number;
      leaderEpoch: number;
      partitionEpoch: number;
      /** A reassignment in progress (Kafka's PartitionRecord addingReplicas / removingReplicas); absent when none. */
      addingReplicas?: number[];
      removingReplicas?: number[];
    }
  | { type: 'RemoveTopic'; topicId: string }
  /** `value` null removes the override. resourceName '' is the cluster-wide broker default. */
  | { type: 'Config'; resourceType: 'topic' | 'broker'; resourceName: string; name: string; value: string | null }
  /**
   * A broker's registration (Kafka's RegisterBrokerRecord): host/port is its inter-broker
   * endpoint, `listeners` every listener it advertises (absent in single-node logs: then the one
   * endpoint). `fenced` (absent: false) — in a cluster a broker registers fenced and is unfenced
   * by a heartbeat once it has caught up with the metadata log. The record's offset is the
   * broker epoch.
   */
  | {
      type: 'RegisterBroker';
      brokerId: number;
      host: string;
      port: number;
      rack: string | null;
      incarnationId: string;
      listeners?: BrokerEndpoint[];
      fenced?: boolean;
      /** The broker epoch, when it is not this record's offset (a snapshot carries it). */
      epoch?: number;
    }
  /** The broker missed its session or asked to stop (Kafka's FenceBrokerRecord): it is no leader and in no ISR. */
  | { type: 'FenceBroker'; brokerId: number; epoch: number }
  /** The broker heartbeats and has caught up (Kafka's UnfenceBrokerRecord). */
  | { type: 'UnfenceBroker'; brokerId: number; epoch: number }
  /** A block of producer ids handed to a broker: the next block starts at `nextProducerId` (Kafka's ProducerIdsRecord). */
  | { type: 'ProducerIds'; brokerId: number; nextProducerId: number }
  /** SCRAM credentials and ACLs (security-image.ts). */
  | SecurityRecord;
import { SecurityImage, type SecurityRecord } from './security-image.js';

export interface PartitionImage {
  readonly topicId: string;
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  /** Replicas being added / removed by a reassignment in progress (empty when none). */
  readonly addingReplicas: readonly number[];
  readonly removingReplicas: readonly number[];
}

export interface TopicImage {
  readonly name: string;
  readonly topicId: string;
  readonly partitions: readonly PartitionImage[];
  readonly configs: ReadonlyMap<string, string>;
}

export interface BrokerEndpoint {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly securityProtocol: string;
}

export interface BrokerRegistration {
  readonly brokerId: number;
  /** The inter-broker endpoint (`inter.broker.listener.name`, default the first listener). */
  readonly host: string;
  readonly port: number;
  readonly rack: string | null;
  /** Every advertised listener (Metadata answers the one of the client's listener name). */
  readonly listeners: readonly BrokerEndpoint[];
  /** A fenced broker is not in Metadata answers, leads nothing and is in no ISR. */
  readonly fenced: boolean;
  /** The offset of its registration record. */
  readonly epoch: number;
  readonly incarnationId: string;
}

const EMPTY_CONFIGS: ReadonlyMap<string, string> = new Map();

export class MetadataImage {
  static readonly EMPTY = new MetadataImage(new Map(), new Map(), new Map(), new Map(), -1, 0, SecurityImage.EMPTY);

  private constructor(
    readonly topicsByName: ReadonlyMap<string, TopicImage>,
    readonly topicsById: ReadonlyMap<string, TopicImage>,
    readonly brokers: ReadonlyMap<number, BrokerRegistration>,
    readonly brokerConfigs: ReadonlyMap<string, string>,
    /** Offset of the last metadata record applied. */
    readonly offset: number,
    /** The first producer id not yet handed out (ids below it are never reused). */
    readonly nextProducerId: number,
    /** SCRAM credentials and ACLs. */
    readonly security: SecurityImage,
  ) {}

  topic(name: string): TopicImage | undefined {
    return this.topicsByName.get(name);
  }

  /** The registered brokers that are not fenced, by id. */
  unfencedBrokerIds(): number[] {
    return [...this.brokers.values()].filter((b) => !b.fenced).map((b) => b.brokerId).sort((a, b) => a - b);
  }

  /** Whether `brokerId` is registered and not fenced. */
  isUnfenced(brokerId: number): boolean {
    const b = this.brokers.get(brokerId);
    return b !== undefined && !b.fenced;
  }

  apply(record: MetadataRecord, offset: number): MetadataImage {
    switch (record.type) {
      case 'Topic': {
        const t: TopicImage = { name: record.name, topicId: record.topicId, partitions: [], configs: EMPTY_CONFIGS };
        return this.withTopic(t, offset);
      }
      case 'Partition': {
        const t = this.topicsById.get(record.topicId);
        if (t === undefined) return this.at(offset);
        const p: PartitionImage = {
          topicId: record.topicId,
          partition: record.partition,
          replicas: [...record.replicas],
          isr: [...record.isr],
          leader: record.leader,
          leaderEpoch: record.leaderEpoch,
          partitionEpoch: record.partitionEpoch,
          addingReplicas: record.addingReplicas === undefined ? [] : [...record.addingReplicas],
          removingReplicas: record.removingReplicas === undefined ? [] : [...record.removingReplicas],
        };
        const partitions = [...t.partitions];
        partitions[record.partition] = p;
        return this.withTopic({ ...t, partitions }, offset);
      }
      case 'RemoveTopic': {
        const t = this.topicsById.get(record.topicId);
        if (t === undefined) return this.at(offset);
        const byName = new Map(this.topicsByName);
        const byId = new Map(this.topicsById);
        byName.delete(t.name);
        byId.delete(t.topicId);
        return new MetadataImage(byName, byId, this.brokers, this.brokerConfigs, offset, this.nextProducerId, this.security);
      }
      case 'Config': {
        if (record.resourceType === 'broker') {
          const configs = new Map(this.brokerConfigs);
          if (record.value === null) configs.delete(record.name);
          else configs.set(record.name, record.value);
          return new MetadataImage(this.topicsByName, this.topicsById, this.brokers, configs, offset, this.nextProducerId, this.security);
        }
        const t = this.topicsByName.get(record.resourceName);
        if (t === undefined) return this.at(offset);
        const configs = new Map(t.configs);
        if (record.value === null) configs.delete(record.name);
        else configs.set(record.name, record.value);
        return this.withTopic({ ...t, configs }, offset);
      }
      case 'ProducerIds':
        return new MetadataImage(this.topicsByName, this.topicsById, this.brokers, this.brokerConfigs, offset, Math.max(this.nextProducerId, record.nextProducerId), this.security);
      case 'UserScramCredential':
      case 'RemoveUserScramCredential':
      case 'Acl':
      case 'RemoveAcl':
      case 'ClientQuota':
        return new MetadataImage(this.topicsByName, this.topicsById, this.brokers, this.brokerConfigs, offset, this.nextProducerId, this.security.apply(record));
      case 'RegisterBroker': {
        const brokers = new Map(this.brokers);
        brokers.set(record.brokerId, {
          brokerId: record.brokerId,
          host: record.host,
          port: record.port,
          rack: record.rack,
          listeners: record.listeners ?? [],
          fenced: record.fenced ?? false,
          epoch: record.epoch ?? offset,
          incarnationId: record.incarnationId,
        });
        return new MetadataImage(this.topicsByName, this.topicsById, brokers, this.brokerConfigs, offset, this.nextProducerId, this.security);
      }
      case 'FenceBroker':
      case 'UnfenceBroker': {
        const b = this.brokers.get(record.brokerId);
        if (b === undefined || b.epoch !== record.epoch) return this.at(offset);
        const brokers = new Map(this.brokers);
        brokers.set(record.brokerId, { ...b, fenced: record.type === 'FenceBroker' });
        return new MetadataImage(this.topicsByName, this.topicsById, brokers, this.brokerConfigs, offset, this.nextProducerId, this.security);
      }
    }
  }

  private at(offset: number): MetadataImage {
    return new MetadataImage(this.topicsByName, this.topicsById, this.brokers, this.brokerConfigs, offset, this.nextProducerId, this.security);
  }

  private withTopic(t: TopicImage, offset: number): MetadataImage {
    const byName = new Map(this.topicsByName);
    const byId = new Map(this.topicsById);
    byName.set(t.name, t);
    byId.set(t.topicId, t);
    return new MetadataImage(byName, byId, this.brokers, this.brokerConfigs, offset, this.nextProducerId, this.security);
  }
}
