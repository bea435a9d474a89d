/**
 * Partition assignors of the classic consumer group protocol: the group leader runs one on every
 * member's subscription and sends each member its partitions in SyncGroup. Each follows the Java
 * client's assignor of the same name, so a group may mix Strand, Java and librdkafka members that
 * agree on the protocol name.
 *
 * - `range`: per topic, partitions in order split into contiguous ranges over the members
 *   subscribed to it (sorted by member id); the first `partitions % members` get one more.
 * - `roundrobin`: all subscribed topic-partitions (sorted by topic, then partition) dealt in turn
 *   to the members (sorted by member id), skipping members not subscribed to that topic.
 * - `cooperative-sticky` (KIP-429, incremental rebalancing): see `cooperativeStickyAssignor`.
 *
 * `range` and `roundrobin` are eager: every member gives up all its partitions before joining.
 * `cooperative-sticky` is cooperative: members keep their partitions while they rejoin and give
 * up only those the new assignment moves elsewhere.
 */
export interface MemberSubscription {
  memberId: string;
  topics: string[];
  userData: Buffer | null;
  /** Partitions the member owns as it joins (cooperative protocol; empty under eager). */
  ownedPartitions?: Array<{ topic: string; partitions: number[] }>;
  /** The generation in which it owned them (-1 unknown). */
  generation?: number;
}

export type Assignment = Map<string, Map<string, number[]>>; // memberId → topic → partitions

export interface Assignor {
  readonly name: string;
  /** 'cooperative': members keep partitions across a rebalance (KIP-429). Default 'eager'. */
  readonly protocol?: 'eager' | 'cooperative';
  /** userData for this member's subscription (cooperative-sticky: the generation). */
  subscriptionUserData?(generation: number): Buffer | null;
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

const byMemberId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The generation a member's subscription says it owned its partitions in (field, or Java's 4-byte userData). */
function generationOf(m: MemberSubscription): number {
  let g = m.generation ?? -1;
  if (m.userData !== null && m.userData.length >= 4) g = Math.max(g, m.userData.readInt32BE(0));
  return g;
}

/**
 * `cooperative-sticky`: a balanced assignment that moves as few partitions as it can, given out
 * in two phases so that no partition is ever owned by two members at once (KIP-429).
 *
 * 1. Each member keeps the partitions it owns (from its subscription's `ownedPartitions`) that
 *    still exist and that it still subscribes to. When two members claim one partition, the
 *    claim of the higher generation wins (the other is stale, e.g. a member that was removed).
 * 2. Partitions nobody keeps go, in topic/partition order, to the subscribed member with the
 *    fewest partitions (ties by member id).
 * 3. While a member has at least two more partitions than another member subscribed to one of
 *    them, one moves from the fullest to the emptiest: a partition it was given in step 2 first,
 *    else one it owned.
 * 4. Cooperative adjustment: a partition that the result moves from its current owner to another
 *    member is left out of this round. The owner sees it missing, gives it up (the `revoked`
 *    event, after committing its offsets) and rejoins at once; in that second rebalance nobody
 *    owns it, and step 2 gives it to its new member. Members never give up partitions they keep.
 *
 * With equal subscriptions the counts differ by at most one, as in Java's assignor.
 */
export const cooperativeStickyAssignor: Assignor = {
  name: 'cooperative-sticky',
  protocol: 'cooperative',
  subscriptionUserData(generation) {
    const b = Buffer.alloc(4);
    b.writeInt32BE(generation, 0);
    return b;
  },
  assign(members, partitionsPerTopic) {
    const sorted = [...members].sort((a, b) => byMemberId(a.memberId, b.memberId));
    const subscribed = new Map<string, Set<string>>(sorted.map((m) => [m.memberId, new Set(m.topics)]));
    const exists = (topic: string, p: number): boolean => Number.isInteger(p) && p >= 0 && p < (partitionsPerTopic.get(topic) ?? 0);
    const tp = (topic: string, p: number): string => `${topic}\u0000${p}`;
    // Current owner of each partition (highest generation wins).
    const owner = new Map<string, { memberId: string; generation: number }>();
    for (const m of sorted) {
      const gen = generationOf(m);
      for (const o of m.ownedPartitions ?? []) {
        if (!subscribed.get(m.memberId)!.has(o.topic)) continue;
        for (const p of o.partitions) {
          if (!exists(o.topic, p)) continue;
          const cur = owner.get(tp(o.topic, p));
          if (cur === undefined || gen > cur.generation) owner.set(tp(o.topic, p), { memberId: m.memberId, generation: gen });
        }
      }
    }
    const assigned = new Map<string, Array<{ topic: string; partition: number; kept: boolean }>>(sorted.map((m) => [m.memberId, []]));
    const placed = new Set<string>();
    // 1. keep
    for (const [k, o] of owner) {
      const i = k.indexOf('\u0000');
      assigned.get(o.memberId)!.push({ topic: k.slice(0, i), partition: Number(k.slice(i + 1)), kept: true });
      placed.add(k);
    }
    // 2. the rest, to the emptiest subscribed member
    const topics = [...new Set(sorted.flatMap((m) => m.topics))].sort();
    for (const topic of topics) {
      const subs = sorted.filter((m) => subscribed.get(m.memberId)!.has(topic));
      const n = partitionsPerTopic.get(topic) ?? 0;
      for (let p = 0; p < n; p++) {
        if (placed.has(tp(topic, p))) continue;
        let best: MemberSubscription | null = null;
        for (const m of subs) if (best === null || assigned.get(m.memberId)!.length < assigned.get(best.memberId)!.length) best = m;
        if (best === null) continue;
        assigned.get(best.memberId)!.push({ topic, partition: p, kept: false });
        placed.add(tp(topic, p));
      }
    }
    // 3. balance
    for (let moves = 0; moves < 100000; moves++) {
      let move: { from: string; to: string; index: number } | null = null;
      const byLoad = [...sorted].sort((a, b) => assigned.get(b.memberId)!.length - assigned.get(a.memberId)!.length || byMemberId(a.memberId, b.memberId));
      search: for (const heavy of byLoad) {
        const mine = assigned.get(heavy.memberId)!;
        for (const light of [...byLoad].reverse()) {
          if (assigned.get(light.memberId)!.length + 1 >= mine.length) break;
          const canTake = subscribed.get(light.memberId)!;
          let index = -1;
          for (let i = mine.length - 1; i >= 0; i--) {
            if (!canTake.has(mine[i]!.topic)) continue;
            if (index < 0 || (mine[index]!.kept && !mine[i]!.kept)) index = i;
          }
          if (index >= 0) {
            move = { from: heavy.memberId, to: light.memberId, index };
            break search;
          }
        }
      }
      if (move === null) break;
      const [x] = assigned.get(move.from)!.splice(move.index, 1);
      assigned.get(move.to)!.push({ ...x!, kept: false });
    }
    // 4. cooperative: partitions changing owner wait for the second phase
    const out = emptyAssignment(members);
    for (const m of sorted) {
      const list = assigned.get(m.memberId)!.sort((a, b) => byMemberId(a.topic, b.topic) || a.partition - b.partition);
      for (const x of list) {
        const o = owner.get(tp(x.topic, x.partition));
        if (o !== undefined && o.memberId !== m.memberId) continue;
        add(out, m.memberId, x.topic, x.partition);
      }
    }
    return out;
  },
};

export const ASSIGNORS = { range: rangeAssignor, roundrobin: roundRobinAssignor, 'cooperative-sticky': cooperativeStickyAssignor } as const;
export type AssignorName = keyof typeof ASSIGNORS;
