/**
 * The handler registry: every api this broker answers, and so exactly what ApiVersions
 * advertises. Add a handler here and it is served and advertised; nothing else to change.
 */
import type { ApiHandler } from './handler.js';
import { apiVersionsHandler } from './api-versions.js';
import { metadataHandler } from './metadata.js';
import { produceHandler } from './produce.js';
import { fetchHandler } from './fetch.js';
import { listOffsetsHandler } from './list-offsets.js';
import { createTopicsHandler } from './create-topics.js';
import { deleteTopicsHandler } from './delete-topics.js';
import { createPartitionsHandler } from './create-partitions.js';
import { describeConfigsHandler } from './describe-configs.js';
import { alterConfigsHandler } from './alter-configs.js';
import { incrementalAlterConfigsHandler } from './incremental-alter-configs.js';
import { deleteRecordsHandler } from './delete-records.js';
import { describeClusterHandler } from './describe-cluster.js';

export const HANDLERS: readonly ApiHandler<any, any>[] = [
  produceHandler,
  fetchHandler,
  listOffsetsHandler,
  metadataHandler,
  apiVersionsHandler,
  createTopicsHandler,
  deleteTopicsHandler,
  deleteRecordsHandler,
  describeConfigsHandler,
  alterConfigsHandler,
  createPartitionsHandler,
  incrementalAlterConfigsHandler,
  describeClusterHandler,
].sort((a, b) => a.api.key - b.api.key);

export const HANDLER_BY_KEY: ReadonlyMap<number, ApiHandler<any, any>> = new Map(HANDLERS.map((h) => [h.api.key, h]));

/** The advertised table: api key and version range per api. */
export const SUPPORTED_APIS = HANDLERS.map((h) => ({ key: h.api.key, name: h.api.name, minVersion: h.minVersion, maxVersion: h.maxVersion }));
