/**
 * The checker of the cluster fault tests: given what the producer was told (acknowledged
 * records), what the consumers read, and what the partitions finally hold, it finds
 *  - lost:       an acknowledged record that is not in the final log at the offset it was acknowledged at;
 *  - duplicated: a value stored twice in a partition;
 *  - reordered:  two values of a partition whose per-partition sequence numbers go down as the offsets go up;
 *  - diverged:   a record a consumer read at an offset that now holds another value (a consumer
 *                saw data above the high watermark that was later truncated, or two replicas gave
 *                one offset two records);
 *  - unread:     a record of the final log that no consumer read (the consumers did not catch up).
 * Values are "<partition>:<seq>" (test/cluster/load/producer.py).
 */

export interface Acked {
  p: number;
  o: number;
  v: string;
}

export interface Stored {
  p: number;
  o: number;
  v: string;
}

export interface CheckReport {
  acked: number;
  stored: number;
  consumed: number;
  lost: Acked[];
  duplicated: Array<{ p: number; v: string; offsets: number[] }>;
  reordered: Array<{ p: number; before: Stored; after: Stored }>;
  diverged: Array<{ p: number; o: number; read: string; stored: string | null }>;
  unread: Array<{ p: number; o: number }>;
  /** Records whose value names another partition than the one they are in. */
  misplaced: Stored[];
}

function seqOf(v: string): number {
  const i = v.indexOf(':');
  return i < 0 ? Number.NaN : Number(v.slice(i + 1));
}

export function check(acked: readonly Acked[], finalLog: readonly Stored[], consumed: readonly Stored[], opts: { requireAllRead?: boolean } = {}): CheckReport {
  const byPartition = new Map<number, Map<number, string>>();
  for (const r of finalLog) {
    let m = byPartition.get(r.p);
    if (m === undefined) byPartition.set(r.p, (m = new Map()));
    m.set(r.o, r.v);
  }
  const report: CheckReport = { acked: acked.length, stored: finalLog.length, consumed: consumed.length, lost: [], duplicated: [], reordered: [], diverged: [], unread: [], misplaced: [] };
  for (const a of acked) if (byPartition.get(a.p)?.get(a.o) !== a.v) report.lost.push(a);
  for (const [p, records] of byPartition) {
    const sorted = [...records.entries()].sort((x, y) => x[0] - y[0]);
    const seen = new Map<string, number[]>();
    let prev: Stored | null = null;
    for (const [o, v] of sorted) {
      const cur = { p, o, v };
      if (!v.startsWith(`${p}:`)) report.misplaced.push(cur);
      const at = seen.get(v);
      if (at === undefined) seen.set(v, [o]);
      else at.push(o);
      if (prev !== null && seqOf(v) <= seqOf(prev.v) && seen.get(v)!.length === 1) report.reordered.push({ p, before: prev, after: cur });
      prev = cur;
    }
    for (const [v, offsets] of seen) if (offsets.length > 1) report.duplicated.push({ p, v, offsets });
  }
  const read = new Set<string>();
  for (const c of consumed) {
    const stored = byPartition.get(c.p)?.get(c.o) ?? null;
    if (stored !== c.v) report.diverged.push({ p: c.p, o: c.o, read: c.v, stored });
    else read.add(`${c.p}@${c.o}`);
  }
  if (opts.requireAllRead !== false) {
    for (const r of finalLog) if (!read.has(`${r.p}@${r.o}`)) report.unread.push({ p: r.p, o: r.o });
  }
  return report;
}

export function violations(r: CheckReport): string[] {
  const out: string[] = [];
  const few = <T>(xs: T[]): string => JSON.stringify(xs.slice(0, 5)) + (xs.length > 5 ? ` ... (${xs.length})` : '');
  if (r.lost.length > 0) out.push(`${r.lost.length} acknowledged record(s) lost: ${few(r.lost)}`);
  if (r.duplicated.length > 0) out.push(`${r.duplicated.length} value(s) stored twice: ${few(r.duplicated)}`);
  if (r.reordered.length > 0) out.push(`${r.reordered.length} reordering(s) within a partition: ${few(r.reordered)}`);
  if (r.diverged.length > 0) out.push(`${r.diverged.length} record(s) read at an offset that now holds another value: ${few(r.diverged)}`);
  if (r.unread.length > 0) out.push(`${r.unread.length} stored record(s) no consumer read: ${few(r.unread)}`);
  if (r.misplaced.length > 0) out.push(`${r.misplaced.length} record(s) in the wrong partition: ${few(r.misplaced)}`);
  return out;
}

export function summary(r: CheckReport): string {
  return `acked ${r.acked}, stored ${r.stored}, consumed ${r.consumed} (with re-reads); lost ${r.lost.length}, duplicated ${r.duplicated.length}, reordered ${r.reordered.length}, diverged ${r.diverged.length}, unread ${r.unread.length}`;
}
