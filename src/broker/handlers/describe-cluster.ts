/**
 * DescribeCluster (key 60), versions 0–1.
 *
 * Behaviour:
 * - The registered, unfenced brokers of the metadata image, the active controller as
 *   `controller_id` (this node on a single node), and the cluster id from meta.properties.
 * - v1 `endpoint_type`: 1 (brokers) is answered; 2 (controllers) answers MISMATCHED_ENDPOINT_TYPE
 *   — this listener is a broker endpoint — and any other value UNSUPPORTED_ENDPOINT_TYPE, each
 *   with Kafka's message (on v0 both are INVALID_REQUEST, as Kafka's AuthHelper does).
 * - `cluster_authorized_operations` is Kafka's "omitted" value unless requested; then every
 *   cluster operation (there is no authorizer yet).
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DescribeClusterApi, defaultDescribeClusterResponse, type DescribeClusterResponse } from '../../protocol/messages/index.js';
import { defineHandler, endpointFor } from './handler.js';
import { authorizeCluster, authorizedOperations, CLUSTER_NAME } from '../security/authorizer.js';

/** Kafka AclOperation codes as bits: CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12 (as metadata.ts). */
const CLUSTER_OPERATIONS = [5, 7, 8, 9, 10, 11, 12].reduce((m, b) => m | (1 << b), 0);
const OMITTED = -2147483648;
export const EndpointType = { BROKER: 1, CONTROLLER: 2 } as const;

export const describeClusterHandler = defineHandler({
  api: DescribeClusterApi,
  minVersion: 0,
  maxVersion: 1,
  handle(req, ctx): DescribeClusterResponse {
    const broker = ctx.broker;
    const refuse = (code: number, errorMessage: string): DescribeClusterResponse => ({
      ...defaultDescribeClusterResponse(),
      errorCode: ctx.version === 0 ? ErrorCode.INVALID_REQUEST : code,
      errorMessage,
    });
    if (req.endpointType === EndpointType.CONTROLLER) {
      return refuse(ErrorCode.MISMATCHED_ENDPOINT_TYPE, 'The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER');
    }
    if (req.endpointType !== EndpointType.BROKER) return refuse(ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, `Unsupported endpoint type ${req.endpointType}`);
    const image = broker.image;
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      endpointType: EndpointType.BROKER,
      clusterId: broker.clusterId,
      controllerId: broker.controllerId,
      brokers: [...image.brokers.values()].filter((b) => !b.fenced).map((b) => ({ brokerId: b.brokerId, ...endpointFor(ctx, b), rack: b.rack })),
      // As Kafka: anyone may describe the cluster; the operations are those it may do (none without Describe).
      clusterAuthorizedOperations: req.includeClusterAuthorizedOperations ? (broker.authorizer.enabled ? (authorizeCluster(ctx, 'Describe') ? authorizedOperations(ctx, 'Cluster', CLUSTER_NAME) : 0) : CLUSTER_OPERATIONS) : OMITTED,
    };
  },
});
