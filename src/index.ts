/**
 * The `strand` package entry: Strand's Kafka client.
 *
 *   import { Kafka } from 'strand';
 *
 * The in-process broker for tests is a separate entry, `strand/testing`.
 */
export * from './client/index.js';
