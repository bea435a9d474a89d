/**
 * Partition assignors of the classic consumer group protocol (eager rebalancing): the group
 * leader runs one on every member's subscription and sends each member its partitions in
 * SyncGroup. Both follow the Java client's assignors of the same name, so a group may mix
 * Strand, Java and librdkafka members that agree on the protocol name.
 *
 * - `range`: per topic, partitions in order split into contiguous ranges over the members
 *   subscribed to it (sorted by member id); the first `partitions % members` get one more.
 * - `roundrobin`: all subscribed topic-partitions (sorted by topic, then partition) dealt in turn
 *   to the members (sorted by member id), skipping members not subscribed to that topic.
 */
export interface MemberSubscription {
  memberId: string;
  topics: string[];
  userData: Buffer | null;
}

export type Assignment = Map<string, Map<string, number[]>>; // memberId → topic → partitions

export interface Assignor {
  readonly name: string;
  /** `partitionsPerTopic`: topic → partition count. */
  assign(members: MemberSubscription[], partitionsPerTopic: Map<string, number>): Assignment;
}

function emptyAssignment(members: MemberSubscription[]): Assignment {
  const out: Assignment = new Map();
  for (const m of members) out.set(m.memberId, new Map());
  return out;
}

function add(a: Assignment, memberId: string, topic: string, partition: number): void {
  const m = a.get(memberId)!;
  let ps = m.get(topic);
  if (ps === undefined) m.set(topic, (ps = []));
  ps.push(partition);
}

export const rangeAssignor: Assignor = {
  name: 'range',
  assign(members, partitionsPerTopic) {
    const out = emptyAssignment(members);
    const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
    for (const topic of topics) {
      const n = partitionsPerTopic.get(topic) ?? 0;
      const subs = members.filter((m) => m.topics.includes(topic)).map((m) => m.memberId).sort();
      if (subs.length === 0) continue;
      const per = Math.floor(n / subs.length);
      const extra = n % subs.length;
      let next = 0;
      subs.forEach((memberId, i) => {
        const count = per + (i < extra ? 1 : 0);
        for (let k = 0; k < count; k++) add(out, memberId, topic, next++);
      });
    }
    return out;
  },
};

export const roundRobinAssignor: Assignor = {
  name: 'roundrobin',
  assign(members, partitionsPerTopic) {
    const out = emptyAssignment(members);
    const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
    const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
    let i = 0;
    for (const topic of topics) {
      const n = partitionsPerTopic.get(topic) ?? 0;
      for (let p = 0; p < n; p++) {
        for (let tries = 0; tries < sorted.length; tries++) {
          const m = sorted[i++ % sorted.length]!;
          if (m.topics.includes(topic)) {
            add(out, m.memberId, topic, p);
            break;
          }
        }
      }
    }
    return out;
  },
};

export const ASSIGNORS = { range: rangeAssignor, roundrobin: roundRobinAssignor } as const;
export type AssignorName = keyof typeof ASSIGNORS;
