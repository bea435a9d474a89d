/**
 * The coordinator's clock and timers, behind a seam so a test can drive them by hand
 * (`ManualScheduler`) and a model test runs the real state machine deterministically.
 */

export interface Scheduler {
  now(): number;
  /** Runs `fn` after `delayMs`; the returned function cancels it (idempotent). */
  schedule(delayMs: number, fn: () => void): () => void;
}

/** Wall clock and unref'd timers: a pending session timeout never keeps the process alive. */
export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  schedule(delayMs, fn) {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return () => clearTimeout(t);
  },
};

/** A clock that moves only when told to; timers fire in deadline order (ties in scheduling order). */
export class ManualScheduler implements Scheduler {
  private time: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; seq: number; fn: () => void }>();

  constructor(startMs = 1_000_000) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  schedule(delayMs: number, fn: () => void): () => void {
    const id = ++this.seq;
    this.timers.set(id, { at: this.time + Math.max(0, delayMs), seq: id, fn });
    return () => {
      this.timers.delete(id);
    };
  }

  get pending(): number {
    return this.timers.size;
  }

  /** Moves the clock forward by `ms`, firing every timer that comes due, in order. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      let next: { id: number; at: number; seq: number; fn: () => void } | null = null;
      for (const [id, t] of this.timers) if (t.at <= target && (next === null || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = { id, ...t };
      if (next === null) break;
      this.timers.delete(next.id);
      this.time = Math.max(this.time, next.at);
      next.fn();
    }
    this.time = target;
  }
}
