/**
 * Which partitions of a coordinator's internal topic this broker coordinates (Kafka's
 * CoordinatorRuntime states, per `__consumer_offsets` / `__transaction_state` partition).
 *
 * A coordinator serves the groups or transactional ids of a partition only while this broker
 * leads it: `elect(p, epoch)` starts a load (state `loading`: requests get
 * COORDINATOR_LOAD_IN_PROGRESS), `loaded(p, token)` makes it `active`, `resign(p)` forgets it
 * (requests get NOT_COORDINATOR). The epoch is the partition's leader epoch, Kafka's coordinator
 * epoch: transaction markers carry it, so a marker from a coordinator that lost the partition is
 * refused by every data partition that has seen a newer one.
 *
 * A load is identified by a token: a load that finishes after its partition was resigned (or
 * elected again) finds its token stale and discards what it replayed. An append captures
 * `epochOf(p)` before it starts and checks `isActive(p, epoch)` after: a coordinator that lost the
 * partition meanwhile answers NOT_COORDINATOR and leaves its memory as it is.
 */
import { ErrorCode } from '../protocol/errors.js';

type State = { state: 'loading' | 'active'; epoch: number; token: number };

export class OwnedPartitions {
  private readonly states = new Map<number, State>();
  private nextToken = 1;

  /**
   * Starts coordinating `p` at `epoch`. Returns the load token, or null when `p` is already
   * loading or active at this epoch or a later one (a repeated election is a no-op).
   * A later epoch while active or loading restarts the load: another coordinator may have
   * written to the partition in between.
   */
  elect(p: number, epoch: number): number | null {
    const cur = this.states.get(p);
    if (cur !== undefined && cur.epoch >= epoch) return null;
    const token = this.nextToken++;
    this.states.set(p, { state: 'loading', epoch, token });
    return token;
  }

  /** Marks `p` active if `token` is still its current load; false when the load is stale. */
  loaded(p: number, token: number): boolean {
    const cur = this.states.get(p);
    if (cur === undefined || cur.token !== token) return false;
    cur.state = 'active';
    return true;
  }

  /** Whether `token` is still the current load of `p`. */
  isLoading(p: number, token: number): boolean {
    const cur = this.states.get(p);
    return cur !== undefined && cur.token === token && cur.state === 'loading';
  }

  /**
   * Stops coordinating `p`; with `epoch`, only if the partition's epoch is below it (a
   * resignation older than the election it follows is ignored, as Kafka does). True when `p` was owned.
   */
  resign(p: number, epoch?: number): boolean {
    const cur = this.states.get(p);
    if (cur === undefined) return false;
    if (epoch !== undefined && epoch >= 0 && cur.epoch >= epoch) return false;
    this.states.delete(p);
    return true;
  }

  /** The coordinator epoch of `p`, or -1 when not owned. */
  epochOf(p: number): number {
    return this.states.get(p)?.epoch ?? -1;
  }

  isActive(p: number, epoch?: number): boolean {
    const cur = this.states.get(p);
    return cur !== undefined && cur.state === 'active' && (epoch === undefined || cur.epoch === epoch);
  }

  /** NONE when `p` is active here; else COORDINATOR_LOAD_IN_PROGRESS (loading) or NOT_COORDINATOR. */
  errorFor(p: number): number {
    const cur = this.states.get(p);
    if (cur === undefined) return ErrorCode.NOT_COORDINATOR;
    return cur.state === 'loading' ? ErrorCode.COORDINATOR_LOAD_IN_PROGRESS : ErrorCode.NONE;
  }

  get anyLoading(): boolean {
    for (const s of this.states.values()) if (s.state === 'loading') return true;
    return false;
  }

  /** The partitions owned (loading or active), ascending. */
  owned(): number[] {
    return [...this.states.keys()].sort((a, b) => a - b);
  }

  active(): number[] {
    return [...this.states].filter(([, s]) => s.state === 'active').map(([p]) => p).sort((a, b) => a - b);
  }

  clear(): void {
    this.states.clear();
  }
}

/**
 * How a coordinator answers a failed append to its partition (Kafka's
 * CoordinatorRuntime / GroupMetadataManager error mapping): the partition moved or the log is
 * gone → NOT_COORDINATOR (the client looks the coordinator up again); the replicas could not
 * take it in time → COORDINATOR_NOT_AVAILABLE (the client retries).
 */
export function appendErrorCode(e: unknown): number {
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case 'NOT_LEADER_OR_FOLLOWER':
    case 'NOT_COORDINATOR':
    case 'KAFKA_STORAGE_ERROR':
    case 'LOG_CLOSED':
    case 'FENCED_LEADER_EPOCH':
      return ErrorCode.NOT_COORDINATOR;
    default:
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
  }
}

/** An append refused because this broker does not lead the partition (any more). */
export class NotLeaderForPartitionError extends Error {
  readonly code = 'NOT_LEADER_OR_FOLLOWER';
  constructor(topic: string, partition: number) {
    super(`this broker does not lead ${topic}-${partition}`);
    this.name = 'NotLeaderForPartitionError';
  }
}
