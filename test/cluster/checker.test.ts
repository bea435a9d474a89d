/**
 * The fault tests' checker finds each kind of violation it is meant to find (so a clean report
 * from it means something), and passes a clean history.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { check, violations, type Stored } from './checker.js';

const log = (p: number, seqs: number[], from = 0): Stored[] => seqs.map((s, i) => ({ p, o: from + i, v: `${p}:${s}` }));

test('checker: a clean history (gaps in sequence numbers are failed sends, not violations)', () => {
  const final = [...log(0, [0, 1, 2, 4]), ...log(1, [0, 1])];
  const r = check(final.slice(0, 5), final, final);
  assert.deepEqual(violations(r), []);
});

test('checker: a lost acknowledged record, and one acknowledged at an offset that holds another value', () => {
  const final = log(0, [0, 1, 3]);
  const r = check([{ p: 0, o: 0, v: '0:0' }, { p: 0, o: 2, v: '0:2' }, { p: 0, o: 3, v: '0:3' }], final, final);
  assert.deepEqual(r.lost, [{ p: 0, o: 2, v: '0:2' }, { p: 0, o: 3, v: '0:3' }]);
  assert.match(violations(r)[0]!, /2 acknowledged record\(s\) lost/);
});

test('checker: duplicates and reordering within a partition', () => {
  const final = log(0, [0, 1, 1, 3, 2]);
  const r = check([], final, final);
  assert.deepEqual(r.duplicated, [{ p: 0, v: '0:1', offsets: [1, 2] }]);
  assert.deepEqual(r.reordered, [{ p: 0, before: { p: 0, o: 3, v: '0:3' }, after: { p: 0, o: 4, v: '0:2' } }]);
});

test('checker: a read of a value the final log does not hold there, an unread record, a misplaced one', () => {
  const final = [...log(0, [0, 1, 2]), { p: 1, o: 0, v: '0:9' }];
  const consumed = [{ p: 0, o: 0, v: '0:0' }, { p: 0, o: 1, v: '0:7' }, { p: 1, o: 0, v: '0:9' }];
  const r = check([], final, consumed);
  assert.deepEqual(r.diverged, [{ p: 0, o: 1, read: '0:7', stored: '0:1' }]);
  assert.deepEqual(r.unread, [{ p: 0, o: 1 }, { p: 0, o: 2 }]);
  assert.deepEqual(r.misplaced, [{ p: 1, o: 0, v: '0:9' }]);
  assert.equal(violations(r).length, 3);
});
