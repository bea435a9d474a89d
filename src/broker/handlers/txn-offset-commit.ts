/**
 * TxnOffsetCommit (key 28), versions 0–3 (v3 flexible, KIP-447 generation/member/instance).
 *
 * Behaviour:
 * - The producer's transaction must be Ongoing and include the group's `__consumer_offsets`
 *   partition (AddOffsetsToTxn first): else INVALID_TXN_STATE, or the fencing errors
 *   (INVALID_PRODUCER_EPOCH for a stale epoch).
 * - The offsets are written in a transactional batch of the producer to the group's partition
 *   and held pending: OffsetFetch does not show them until the COMMIT marker (an ABORT drops
 *   them); OffsetFetch v7 with require_stable answers UNSTABLE_OFFSET_COMMIT meanwhile.
 * - v3: a generation ≥ 0 is checked against the group (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
 *   FENCED_INSTANCE_ID); -1 skips the check. Per partition: UNKNOWN_TOPIC_OR_PARTITION,
 *   OFFSET_METADATA_TOO_LARGE.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { TxnOffsetCommitApi, type TxnOffsetCommitResponse } from '../../protocol/messages/index.js';
import type { OffsetToCommit } from '../../coordinator/group-coordinator.js';
import { OFFSETS_TOPIC } from '../../coordinator/group-records.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';
import { txnCoordinatorUnavailable } from './txn-util.js';

export const txnOffsetCommitHandler = defineHandler({
  api: TxnOffsetCommitApi,
  minVersion: 0,
  maxVersion: 3,
  async handle(req, ctx): Promise<TxnOffsetCommitResponse> {
    const v = ctx.version;
    const answer = (errors: (i: number) => number): TxnOffsetCommitResponse => {
      let i = 0;
      return { throttleTimeMs: 0, topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: errors(i++) })) })) };
    };
    if (!authorize(ctx, 'Write', 'TransactionalId', req.transactionalId)) return answer(() => ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    if (!authorize(ctx, 'Read', 'Group', req.groupId)) return answer(() => ErrorCode.GROUP_AUTHORIZATION_FAILED);
    const deniedTopics = req.topics.filter((t) => !authorize(ctx, 'Read', 'Topic', t.name)).map((t) => t.name);
    if (deniedTopics.length > 0) {
      // Nothing of a commit is applied when part of it may not be (the client retries without those topics).
      const codes = req.topics.flatMap((t) => t.partitions.map(() => (deniedTopics.includes(t.name) ? ErrorCode.TOPIC_AUTHORIZATION_FAILED : ErrorCode.OPERATION_NOT_ATTEMPTED)));
      return answer((i) => codes[i]!);
    }
    const unavailable = txnCoordinatorUnavailable(ctx);
    if (unavailable !== ErrorCode.NONE) return answer(() => unavailable);
    const gc = ctx.broker.groupCoordinator;
    if (!gc.attached) return answer(() => ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    // Sent to the group's coordinator: NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS before anything else.
    const served = gc.unavailableFor(req.groupId);
    if (served !== ErrorCode.NONE) return answer(() => served);
    const verdict = ctx.broker.exactlyOnce.coordinator.verifyWrite(req.producerId, req.producerEpoch, OFFSETS_TOPIC, gc.partitionFor(req.groupId));
    if (verdict !== ErrorCode.NONE) return answer(() => verdict);
    const offsets: OffsetToCommit[] = req.topics.flatMap((t) =>
      t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset, leaderEpoch: v >= 2 ? p.committedLeaderEpoch : -1, metadata: p.committedMetadata, commitTimestamp: -1 })),
    );
    const errors = await gc.commitTransactionalOffsets({
      groupId: req.groupId,
      generationId: v >= 3 ? req.generationId : -1,
      memberId: v >= 3 ? req.memberId : '',
      groupInstanceId: v >= 3 ? req.groupInstanceId : null,
      offsets,
      producerId: req.producerId,
      producerEpoch: req.producerEpoch,
    });
    return answer((i) => errors[i]!);
  },
});
