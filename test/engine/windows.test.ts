import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRule } from '../../src/engine/index.js';
import { catalog, rule } from './harness.js';

/** A typed stream with an event-time field, for the event-time tests. */
function evtStream(): void {
  if (!catalog.get('evt')) catalog.execute('CREATE STREAM evt (v bigint, ts bigint) WITH (DATASOURCE="evt", TIMESTAMP="ts")');
}

test('TUMBLINGWINDOW: epoch-aligned windows, emitted when time reaches their end', () => {
  const h = rule('SELECT count(*) AS c, sum(v) AS s, window_start() AS ws, window_end() AS we FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)');
  h.rule.push([{ v: 1 }], 1000);
  h.rule.push([{ v: 2 }, { v: 3 }], 9999);
  assert.deepEqual(h.results, []);
  assert.equal(h.rule.nextDeadline(), 10000);
  h.rule.push([{ v: 4 }], 10000); // belongs to [10000, 20000); closes [0, 10000) first
  assert.deepEqual(h.results, [[{ c: 3, s: 6, ws: 0, we: 10000 }]]);
  h.rule.tick(19999);
  assert.equal(h.results.length, 1);
  h.rule.tick(20000);
  assert.deepEqual(h.results[1], [{ c: 1, s: 4, ws: 10000, we: 20000 }]);
  h.rule.push([{ v: 5 }], 45000); // the empty windows in between emit nothing
  h.rule.tick(50000);
  assert.deepEqual(h.results, [[{ c: 3, s: 6, ws: 0, we: 10000 }], [{ c: 1, s: 4, ws: 10000, we: 20000 }], [{ c: 1, s: 5, ws: 40000, we: 50000 }]]);
});

test('TUMBLINGWINDOW without aggregates emits the window rows; WHERE runs before the window', () => {
  const h = rule('SELECT * FROM demo WHERE v > 1 GROUP BY TUMBLINGWINDOW(ms, 100)');
  h.rule.push([{ v: 1 }, { v: 2 }], 10);
  h.rule.push([{ v: 3 }], 50);
  h.rule.tick(100);
  assert.deepEqual(h.results, [[{ v: 2 }, { v: 3 }]]);
});

test('HOPPINGWINDOW(ss, 10, 5): overlapping windows ending at every multiple of 5s', () => {
  const h = rule('SELECT sum(v) AS s, window_start() AS ws, window_end() AS we FROM demo GROUP BY HOPPINGWINDOW(ss, 10, 5)');
  h.rule.push([{ v: 1 }], 101000);
  h.rule.push([{ v: 2 }], 106000); // closes [95000, 105000)
  h.rule.push([{ v: 4 }], 112000); // closes [100000, 110000)
  h.rule.tick(125000);
  assert.deepEqual(h.results, [
    [{ s: 1, ws: 95000, we: 105000 }],
    [{ s: 3, ws: 100000, we: 110000 }],
    [{ s: 6, ws: 105000, we: 115000 }],
    [{ s: 4, ws: 110000, we: 120000 }],
  ]);
  assert.equal(h.rule.nextDeadline(), undefined);
});

test('SLIDINGWINDOW(ss, 10): each row emits the rows of the last 10 seconds', () => {
  const h = rule('SELECT collect(v) AS vs, window_end() AS we FROM demo GROUP BY SLIDINGWINDOW(ss, 10)');
  h.rule.push([{ v: 1 }], 1000);
  h.rule.push([{ v: 2 }], 5000);
  h.rule.push([{ v: 3 }], 11000); // (1000, 11000]: row 1 has left
  h.rule.tick(15000); // time alone emits nothing
  h.rule.push([{ v: 4 }, { v: 5 }], 20000);
  assert.deepEqual(h.results, [
    [{ vs: [1], we: 1000 }],
    [{ vs: [1, 2], we: 5000 }],
    [{ vs: [2, 3], we: 11000 }],
    [{ vs: [3, 4], we: 20000 }],
    [{ vs: [3, 4, 5], we: 20000 }],
  ]);
});

test('SESSIONWINDOW(ss, 10, 2): closes after 2s of silence, or at the 10s boundary once 10s have passed', () => {
  const h = rule('SELECT collect(v) AS vs, window_start() AS ws, window_end() AS we FROM demo GROUP BY SESSIONWINDOW(ss, 10, 2)');
  h.rule.push([{ v: 1 }], 1000);
  h.rule.push([{ v: 2 }], 2500);
  h.rule.push([{ v: 3 }], 4000);
  h.rule.tick(5999);
  assert.deepEqual(h.results, []);
  assert.equal(h.rule.nextDeadline(), 6000);
  h.rule.tick(6000);
  assert.deepEqual(h.results, [[{ vs: [1, 2, 3], ws: 1000, we: 6000 }]]);
  // rows 1.5s apart keep the session open until the 10s maximum
  for (let k = 0; k < 7; k++) h.rule.push([{ v: 4 + k }], 10000 + k * 1500);
  h.rule.push([{ v: 11 }], 20500); // the max duration closed the previous session at 20000 (a multiple of 10s)
  assert.deepEqual(h.results[1], [{ vs: [4, 5, 6, 7, 8, 9, 10], ws: 10000, we: 20000 }]);
  h.rule.tick(22500);
  // within the timeout of the cut session: eKuiper shows the cut as the start of its continuation
  assert.deepEqual(h.results[2], [{ vs: [11], ws: 20000, we: 22500 }]);
  assert.equal(h.results.length, 3);
  h.rule.push([{ v: 12 }], 31000); // long after: a fresh session; the max check at 40000 is 9s away
  h.rule.push([{ v: 13 }], 32500);
  h.rule.tick(34500);
  assert.deepEqual(h.results[3], [{ vs: [12, 13], ws: 31000, we: 34500 }]);
});

test('SESSIONWINDOW with the timeout larger than the max duration is refused with the expected order', () => {
  assert.throws(() => rule('SELECT count(*) FROM demo GROUP BY SESSIONWINDOW(ss, 2, 10)'), (e: any) => e.code === 'E_SQL_SEMANTIC' && /maxDuration/.test(e.message));
});

test('COUNTWINDOW(3): every 3 rows', () => {
  const h = rule('SELECT collect(v) AS vs FROM demo GROUP BY COUNTWINDOW(3)');
  for (let v = 1; v <= 7; v++) h.rule.push([{ v }], v * 10);
  assert.deepEqual(h.results, [[{ vs: [1, 2, 3] }], [{ vs: [4, 5, 6] }]]);
});

test('COUNTWINDOW(3, 2): every 2nd row emits the latest 3 once 3 have arrived', () => {
  const h = rule('SELECT collect(v) AS vs, window_start() AS ws, window_end() AS we FROM demo GROUP BY COUNTWINDOW(3, 2)');
  h.rule.push([1, 2, 3, 4, 5, 6, 7].map((v) => ({ v })), 500);
  assert.deepEqual(h.results, [[{ vs: [2, 3, 4], ws: 500, we: 500 }], [{ vs: [4, 5, 6], ws: 500, we: 500 }]]);
});

test('windows with GROUP BY keys: one row per key per window', () => {
  const h = rule('SELECT id, count(*) AS c, max(v) AS m FROM demo GROUP BY id, TUMBLINGWINDOW(ss, 1) ORDER BY id');
  h.rule.push([{ id: 'b', v: 1 }, { id: 'a', v: 5 }, { id: 'b', v: 3 }], 100);
  h.rule.push([{ id: 'a', v: 2 }], 900);
  h.rule.tick(1000);
  assert.deepEqual(h.results, [[{ id: 'a', c: 2, m: 5 }, { id: 'b', c: 2, m: 3 }]]);
});

test('windows are refused where they cannot work', () => {
  assert.throws(() => rule('SELECT id, count(*) FROM demo GROUP BY id'), (e: any) => e.code === 'E_SQL_SEMANTIC' && /needs a window/.test(e.message));
});

test('HOPPINGWINDOW with a hop larger than its size leaves gaps, as eKuiper allows', () => {
  const h = rule('SELECT collect(v) AS vs, window_start() AS ws FROM demo GROUP BY HOPPINGWINDOW(ss, 2, 5)');
  h.rule.push([{ v: 1 }], 1000); // in the gap before [3000, 5000)
  h.rule.push([{ v: 2 }], 4000);
  h.rule.tick(10000);
  assert.deepEqual(h.results, [[{ vs: [2], ws: 3000 }]]);
});

test('a COUNTWINDOW counts the rows before WHERE, which then filters each window (eKuiper)', () => {
  const h = rule('SELECT collect(v) AS vs FROM demo WHERE v > 0 GROUP BY COUNTWINDOW(3)');
  for (const v of [1, -1, 2, -4, -2, -3]) h.rule.push([{ v }], 10);
  assert.deepEqual(h.results, [[{ vs: [1, 2] }]]); // the second window has no row left: nothing is sent
});

test('event time: windows close as the watermark passes, late rows are dropped and counted', () => {
  evtStream();
  const results: unknown[][] = [];
  const r = compileRule('et', 'SELECT collect(v) AS vs, window_start() AS ws, window_end() AS we FROM evt GROUP BY TUMBLINGWINDOW(ss, 1)', {
    streams: catalog.lookup, options: { isEventTime: true, lateTolerance: 500 }, onResult: (rows) => results.push(rows),
  });
  for (const [v, ts] of [[1, 1200], [2, 1900], [3, 1500], [4, 2600], [5, 1300], [6, 3000]]) r.push([{ v, ts }], 99_999_999);
  // 2600 lifts the watermark to 2100: [1000, 2000) closes with 1, 3, 2 in time order; 1300 is then late
  r.tick(Number.MAX_SAFE_INTEGER); // processing time does not close event-time windows
  assert.deepEqual(results, [[{ vs: [1, 3, 2], ws: 1200, we: 2000 }]]);
  assert.equal(r.metrics().find((m) => m.name === 'window')!.lateRows, 1);
  assert.throws(() => compileRule('et2', 'SELECT * FROM demo GROUP BY TUMBLINGWINDOW(ss, 1)', { streams: catalog.lookup, options: { isEventTime: true } }),
    (e: any) => e.code === 'E_SQL_SEMANTIC' && /TIMESTAMP/.test(e.message));
});

test('SLIDINGWINDOW(ss, 10, 2) waits 2s after a row and includes the rows of that delay; OVER (WHEN …) picks the triggering rows', () => {
  const h = rule('SELECT collect(v) AS vs FROM demo GROUP BY SLIDINGWINDOW(ss, 10, 2)');
  h.rule.push([{ v: 1 }], 1000);
  h.rule.push([{ v: 2 }], 2500);
  assert.deepEqual(h.results, []);
  assert.equal(h.rule.nextDeadline(), 3000);
  h.rule.tick(3000); // the first row's window: (-9000, 3000]
  assert.deepEqual(h.results, [[{ vs: [1, 2] }]]);
  h.rule.tick(4500);
  assert.deepEqual(h.results[1], [{ vs: [1, 2] }]);

  const t = rule('SELECT collect(v) AS vs FROM demo GROUP BY SLIDINGWINDOW(ss, 10) OVER (WHEN v > 1) FILTER (WHERE v != 3)');
  t.rule.push([{ v: 1 }, { v: 2 }, { v: 3 }, { v: 4 }], 1000); // 1 does not trigger; 3 never enters
  assert.deepEqual(t.results, [[{ vs: [1, 2] }], [{ vs: [1, 2, 4] }]]);
  assert.throws(() => rule('SELECT count(*) FROM demo GROUP BY COUNTWINDOW(2) OVER (WHEN v > 1)'), (e: any) => e.code === 'E_SQL_SEMANTIC' && /SLIDINGWINDOW/.test(e.message));
});

test('event time without a window: rows wait for the watermark and leave in time order; a late row is counted on the source', () => {
  const results: unknown[][] = [];
  evtStream();
  const r = compileRule('et3', 'SELECT v FROM evt', { streams: catalog.lookup, options: { isEventTime: true, lateTolerance: 500 }, onResult: (rows) => results.push(rows) });
  for (const [v, ts] of [[1, 1000], [2, 1400], [3, 1200], [4, 2000], [5, 1100], [6, 3000]]) r.push([{ v, ts }], 5);
  // 2000 lets out everything up to 1500: 1, 3, 2; 1100 is late then; 3000 lets out 4
  assert.deepEqual(results.flat(), [{ v: 1 }, { v: 3 }, { v: 2 }, { v: 4 }]);
  assert.equal(r.metrics().find((m) => m.name === 'source')!.lateRows, 1);
});
