/** What the group coordinator's in-process tests share: a consumer subscription and a JoinGroup request. */
import { encodeConsumerProtocolSubscription } from '../../src/protocol/messages/index.js';
import { Writer } from '../../src/protocol/writer.js';
import type { JoinRequest } from '../../src/coordinator/group-coordinator.js';

/** A consumer protocol subscription (v0) to `topics`. */
export function subscription(...topics: string[]): Buffer {
  const w = new Writer();
  w.int16(0);
  encodeConsumerProtocolSubscription(w, { topics, userData: null, ownedPartitions: [], generationId: -1, rackId: null }, 0);
  return w.toBuffer();
}

/** A JoinGroup for group `g` with the range protocol on topic `t`, with `over` applied. */
export function joinRequest(over: Partial<JoinRequest> = {}): JoinRequest {
  return {
    groupId: 'g',
    memberId: '',
    groupInstanceId: null,
    clientId: 'c',
    clientHost: '/127.0.0.1',
    sessionTimeoutMs: 1000,
    rebalanceTimeoutMs: 2000,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: subscription('t') }],
    requireKnownMemberId: false,
    reason: null,
    ...over,
  };
}

/** Lets queued promise callbacks and immediates run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}
