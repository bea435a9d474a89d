/**
 * The entry point: `new Kafka({ brokers })` holds the shared settings; `producer()`,
 * `consumer()`, `admin()` and `table()` create clients, each with its own connections.
 */
import { Cluster, type ClusterOptions, type RetryOptions } from './cluster.js';
import type { ClientLogger } from './logger.js';
import { Producer, type ProducerOptions } from './producer.js';
import { Admin } from './admin.js';
import { Consumer, type ConsumerOptions } from './consumer.js';
import { Table, type TableOptions } from './table.js';

export interface KafkaOptions {
  /** Bootstrap addresses, `host:port`. */
  brokers: string[];
  /** Sent in every request header (default 'strand'). */
  clientId?: string;
  connectTimeoutMs?: number;
  /** How long a request may wait for its response (default 30000). */
  requestTimeoutMs?: number;
  metadataMaxAgeMs?: number;
  /** Retries of metadata, coordinator and admin requests (producer and consumer have their own). */
  retry?: RetryOptions;
  logger?: ClientLogger;
  /** TLS (SSL / SASL_SSL listeners): true, or node:tls options such as { ca: [pem] }. */
  ssl?: ClusterOptions['ssl'];
  /** SASL: { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512', username, password }. */
  sasl?: ClusterOptions['sasl'];
}

export class Kafka {
  constructor(readonly options: KafkaOptions) {}

  private cluster(allowAutoTopicCreation: boolean): Cluster {
    return new Cluster({ ...this.options, allowAutoTopicCreation });
  }

  producer<K = Buffer | string | null, V = Buffer | string | null>(opts: ProducerOptions<K, V> & { allowAutoTopicCreation?: boolean } = {}): Producer<K, V> {
    return new Producer<K, V>(this.cluster(opts.allowAutoTopicCreation ?? true), opts, true);
  }

  consumer<K = Buffer | null, V = Buffer | null>(opts: ConsumerOptions<K, V>): Consumer<K, V> {
    return new Consumer<K, V>(this.cluster(false), opts, this);
  }

  admin(): Admin {
    return new Admin(this.cluster(false), true);
  }

  /** A compacted topic as a key → value map kept current (see table.ts); call `ready()` to load it. */
  table<K = string, V = Buffer>(topic: string, opts: TableOptions<K, V> = {}): Table<K, V> {
    return new Table<K, V>(this.cluster(false), topic, opts);
  }
}
