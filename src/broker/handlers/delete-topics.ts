/**
 * DeleteTopics (key 20), versions 0–6.
 *
 * Behaviour:
 * - v0–5 name topics in `topic_names`; v6 in `topics[]`, each by name or by topic id (both, or
 *   neither: INVALID_REQUEST). The answer carries the name and (v6) the topic id of each.
 * - The controller commits one RemoveTopic record per topic, all in one metadata batch, before
 *   the answer; the replica manager then deletes the topic's logs. Re-creating the name later
 *   gives a new topic id and an empty log.
 * - Errors per topic: UNKNOWN_TOPIC_OR_PARTITION (no such name), UNKNOWN_TOPIC_ID (no such id,
 *   v6), INVALID_REQUEST for a topic named twice in one request (answered once); v5+ carry
 *   `error_message`.
 * - `delete.topic.enable=false`: every topic answers TOPIC_DELETION_DISABLED (v3+; before v3,
 *   which predates that code, INVALID_REQUEST), and nothing is deleted.
 */
import { ErrorCode } from '../../protocol/errors.js';
import { DeleteTopicsApi, type DeleteTopicsResponse, type DeleteTopicsResponseDeletableTopicResult } from '../../protocol/messages/index.js';
import { ZERO_UUID } from '../../protocol/reader.js';
import type { DeleteTopicTarget } from '../metadata/controller.js';
import { defineHandler } from './handler.js';
import { authorize } from '../security/authorizer.js';

export const deleteTopicsHandler = defineHandler({
  api: DeleteTopicsApi,
  minVersion: 0,
  maxVersion: 6,
  async handle(req, ctx): Promise<DeleteTopicsResponse> {
    const broker = ctx.broker;
    const requested: DeleteTopicTarget[] =
      ctx.version >= 6
        ? req.topics.map((t) => ({ name: t.name, topicId: t.topicId === ZERO_UUID ? null : t.topicId }))
        : req.topicNames.map((name) => ({ name, topicId: null }));
    const result = (name: string | null, topicId: string | null, errorCode: number, errorMessage: string | null): DeleteTopicsResponseDeletableTopicResult => ({
      name,
      topicId: topicId ?? ZERO_UUID,
      errorCode,
      errorMessage,
    });
    const responses: DeleteTopicsResponseDeletableTopicResult[] = [];
    if (!broker.config.bool('delete.topic.enable')) {
      const code = ctx.version >= 3 ? ErrorCode.TOPIC_DELETION_DISABLED : ErrorCode.INVALID_REQUEST;
      for (const t of requested) responses.push(result(t.name, t.topicId, code, 'Topic deletion is disabled.'));
      return { throttleTimeMs: 0, responses };
    }
    const keyOf = (t: DeleteTopicTarget): string => (t.name !== null ? `n:${t.name}` : `i:${t.topicId}`);
    const counts = new Map<string, number>();
    for (const t of requested) counts.set(keyOf(t), (counts.get(keyOf(t)) ?? 0) + 1);
    // Answers stay in request order: slots filled by the request checks now, the rest by the controller.
    const slots: Array<DeleteTopicsResponseDeletableTopicResult | null> = [];
    const targets: DeleteTopicTarget[] = [];
    const reported = new Set<string>();
    for (const t of requested) {
      if (t.name === null && t.topicId === null) {
        slots.push(result(null, null, ErrorCode.INVALID_REQUEST, 'Neither topic name nor id were specified.'));
      } else if (t.name !== null && t.topicId !== null) {
        slots.push(result(t.name, t.topicId, ErrorCode.INVALID_REQUEST, 'You may not specify both topic name and topic id.'));
      } else if (counts.get(keyOf(t))! > 1) {
        if (reported.has(keyOf(t))) continue;
        reported.add(keyOf(t));
        slots.push(result(t.name, t.topicId, ErrorCode.INVALID_REQUEST, t.name !== null ? 'Duplicate topic name.' : 'Duplicate topic id.'));
      } else if (!authorize(ctx, 'Delete', 'Topic', t.name ?? broker.image.topicsById.get(t.topicId!)?.name ?? '')) {
        // Kafka answers an unauthorized topic id as unknown, so ids do not reveal names.
        slots.push(t.name !== null ? result(t.name, null, ErrorCode.TOPIC_AUTHORIZATION_FAILED, 'Authorization failed.') : result(null, t.topicId, ErrorCode.UNKNOWN_TOPIC_ID, 'This server does not host this topic ID.'));
      } else {
        slots.push(null);
        targets.push(t);
      }
    }
    const deleted = targets.length > 0 ? await broker.controller.deleteTopics(targets) : [];
    let next = 0;
    for (const slot of slots) {
      if (slot !== null) responses.push(slot);
      else {
        const d = deleted[next++]!;
        responses.push(result(d.name, d.topicId, d.errorCode, d.errorMessage));
      }
    }
    return { throttleTimeMs: 0, responses };
  },
});
