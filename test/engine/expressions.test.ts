import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRule } from '../../src/engine/index.js';
import { catalog, run, rule } from './harness.js';

const rows = [
  { id: 1, name: 'alpha', temp: 20.5, loc: { city: 'Oslo', zip: 150 }, tags: ['a', 'b', 'c'], note: null },
  { id: 2, name: 'beta', temp: 55, loc: { city: 'Lima', zip: 15 }, tags: ['x'] },
  { id: 3, name: 'gamma_1', temp: 80, loc: { city: 'Oslo', zip: 7 }, tags: [] },
];

test('WHERE with comparison, AND/OR/NOT', () => {
  assert.deepEqual(run('SELECT id FROM demo WHERE temp > 50 AND NOT (id = 3) OR name = "alpha"', rows), [{ id: 1 }, { id: 2 }]);
});

test('LIKE with % and _, NOT LIKE, escapes', () => {
  assert.deepEqual(run('SELECT id FROM demo WHERE name LIKE "%a"', rows), [{ id: 1 }, { id: 2 }]);
  assert.deepEqual(run('SELECT id FROM demo WHERE name LIKE "_eta"', rows), [{ id: 2 }]);
  assert.deepEqual(run('SELECT id FROM demo WHERE name NOT LIKE "%a"', rows), [{ id: 3 }]);
  assert.deepEqual(run('SELECT id FROM demo WHERE name LIKE "%\\_1"', rows), [{ id: 3 }]);
});

test('IN, NOT IN, BETWEEN, NOT BETWEEN, IS NULL, IS NOT NULL', () => {
  assert.deepEqual(run('SELECT id FROM demo WHERE id IN (1, 3)', rows), [{ id: 1 }, { id: 3 }]);
  assert.deepEqual(run('SELECT id FROM demo WHERE name NOT IN ("alpha", "beta")', rows), [{ id: 3 }]);
  assert.deepEqual(run('SELECT id FROM demo WHERE temp BETWEEN 55 AND 80', rows), [{ id: 2 }, { id: 3 }]);
  assert.deepEqual(run('SELECT id FROM demo WHERE temp NOT BETWEEN 55 AND 80', rows), [{ id: 1 }]);
  assert.deepEqual(run('SELECT id FROM demo WHERE note IS NULL', rows), [{ id: 1 }, { id: 2 }, { id: 3 }]);
  assert.deepEqual(run('SELECT id FROM demo WHERE loc IS NOT NULL AND missing IS NULL', rows), [{ id: 1 }, { id: 2 }, { id: 3 }]);
});

test('CASE WHEN and CASE x WHEN, with ELSE and without', () => {
  assert.deepEqual(
    run('SELECT id, CASE WHEN temp > 70 THEN "hot" WHEN temp > 50 THEN "warm" ELSE "cold" END AS level FROM demo', rows),
    [{ id: 1, level: 'cold' }, { id: 2, level: 'warm' }, { id: 3, level: 'hot' }],
  );
  assert.deepEqual(run('SELECT CASE id WHEN 1 THEN "one" WHEN 2 THEN "two" END AS w FROM demo', rows), [{ w: 'one' }, { w: 'two' }, {}]); // a null result is left out of the row, as eKuiper does
});

test('CASE evaluates a branch only on the rows that reach it', () => {
  const r = run('SELECT CASE WHEN d = 0 THEN 0 ELSE 10 / d END AS q FROM demo', [{ d: 0 }, { d: 4 }, { d: 0 }]);
  assert.deepEqual(r, [{ q: 0 }, { q: 2.5 }, { q: 0 }]);
});

test('nested fields: a.b, a->b, stream-qualified, alias-qualified, array index', () => {
  assert.deepEqual(run('SELECT loc.city, loc->zip, tags[0] AS t0, tags[-1] AS tl FROM demo WHERE id = 1', rows), [{ city: 'Oslo', zip: 150, t0: 'a', tl: 'c' }]);
  assert.deepEqual(run('SELECT demo.id FROM demo WHERE demo.loc.city = "Lima"', rows), [{ id: 2 }]);
  // eKuiper: an index out of range is an error for that row only (row 3 has no tags)
  const h = rule('SELECT d.id AS i FROM demo AS d WHERE d.tags[0] = "x"');
  h.rule.push(rows, 1);
  assert.deepEqual(h.results, [[{ i: 2 }]]);
  assert.equal(h.errors.length, 1);
  assert.match(h.errors[0].message, /out of range/);
  assert.deepEqual(run('SELECT tags[1:] AS t, tags[:-1] AS u, tags[id - 1] AS v FROM demo WHERE id = 1', rows), [{ t: ['b', 'c'], u: ['a', 'b'], v: 'a' }]);
});

test('arithmetic, precedence, null propagation and unnamed fields', () => {
  assert.deepEqual(run('SELECT a + b * 2 AS x, (a + b) * 2 AS y, a % 3 AS m, -a AS n, a - c FROM demo', [{ a: 7, b: 1 }]), [{ x: 9, y: 16, m: 1, n: -7 }]);
  assert.deepEqual(run('SELECT *, a * 10 AS a10 FROM demo', [{ a: 2, s: 'x' }]), [{ a: 2, s: 'x', a10: 20 }]);
});

test('a run-time error drops only the failing row, counts an exception and keeps the rule running', () => {
  const h = rule('SELECT 10 / d AS q FROM demo');
  h.rule.push([{ d: 2 }, { d: 0 }], 1);
  h.rule.push([{ d: 5 }], 2);
  assert.deepEqual(h.results, [[{ q: 5 }], [{ q: 2 }]]);
  assert.equal(h.errors.length, 1);
  assert.equal(h.errors[0].code, 'E_EVAL');
  assert.equal(h.errors[0].op, 'project');
  const project = h.rule.metrics().find((m) => m.name === 'project')!;
  assert.equal(project.exceptions, 1);
  assert.match(project.lastError!.message, /division by zero/);
  assert.equal(project.recordsOut, 2);
  const source = h.rule.metrics().find((m) => m.name === 'source')!;
  assert.equal(source.recordsIn, 3);
});

test('a typed stream refuses unknown fields at compile time', () => {
  assert.throws(() => rule('SELECT idd FROM typed'), (e: any) => e.code === 'E_SQL_SEMANTIC' && /unknown field idd/.test(e.message) && /id, temp, name/.test(e.message));
  assert.throws(() => rule('SELECT id FROM nosuch'), (e: any) => e.code === 'E_SQL_SEMANTIC' && /stream nosuch is not defined/.test(e.message));
  assert.throws(() => rule('SELECT id FROM demo WHERE count(*) > 1'), (e: any) => e.code === 'E_SQL_SEMANTIC' && /not allowed in WHERE/.test(e.message));
  assert.throws(() => rule('CREATE STREAM x () WITH (DATASOURCE="a")'), (e: any) => e.code === 'E_SQL_SEMANTIC');
  const h = rule('SELECT loc.city AS c FROM typed WHERE id > 1');
  h.rule.push([{ id: 2, loc: { city: 'Rome', zip: 1 } }], 1);
  assert.deepEqual(h.results, [[{ c: 'Rome' }]]);
});

test('metrics: records through filter and project; close refuses further pushes', () => {
  const h = rule('SELECT id FROM demo WHERE temp > 50');
  h.rule.push(rows, 1);
  const m = Object.fromEntries(h.rule.metrics().map((x) => [x.name, x]));
  assert.deepEqual(Object.keys(m), ['source', 'filter', 'project']);
  assert.equal(m.filter.recordsIn, 3);
  assert.equal(m.filter.recordsOut, 2);
  assert.equal(m.project.recordsOut, 2);
  assert.equal(m.filter.calls, 1);
  h.rule.close();
  h.rule.close();
  assert.throws(() => h.rule.push(rows), (e: any) => e.code === 'E_RULE_CLOSED');
});

test('comparing text with a number is unknown, not an error: other rows of the batch still pass', () => {
  assert.deepEqual(run('SELECT a FROM demo WHERE a = "x" OR b > 1', [{ a: 'x' }, { a: 'y', b: 's' }, { a: 'z', b: 2 }]), [{ a: 'x' }, { a: 'z' }]);
});

test('sendError: an error row takes the failing row\'s place among the results of one batch', () => {
  const results: unknown[][] = [];
  const r = compileRule('se', 'SELECT 10 / d AS q, rule_id() AS id, rule_start() AS st FROM demo', {
    streams: catalog.lookup, now: () => 777, options: { sendError: true }, onResult: (rows) => results.push(rows),
  });
  r.push([{ d: 2 }, { d: 0 }, { d: 5 }], 1);
  assert.equal(results.length, 3);
  assert.deepEqual(results[0], [{ q: 5, id: 'se', st: 777 }]);
  assert.match((results[1][0] as { error: string }).error, /division by zero/);
  assert.deepEqual(results[2], [{ q: 2, id: 'se', st: 777 }]);
  assert.equal(r.metrics().find((m) => m.name === 'project')!.exceptions, 1);
});

test('a typed stream decodes each row: a wrong type is that row\'s error, counted on the source', () => {
  const h = rule('SELECT id, temp FROM typed');
  h.rule.push([{ id: 1, temp: 20 }, { id: 'x', temp: 1 }, { id: 3, temp: '7' }, { id: 4, temp: 2.5, extra: true }], 1);
  assert.deepEqual(h.results, [[{ id: 1, temp: 20 }, { id: 4, temp: 2.5 }]]);
  assert.equal(h.errors.length, 2);
  assert.match(h.errors[0].message, /error in preprocessor: field id type mismatch: cannot convert string\(x\) to int64/);
  assert.match(h.errors[1].message, /field temp type mismatch: cannot convert string\(7\) to float64/);
  assert.equal(h.rule.metrics().find((m) => m.name === 'source')!.exceptions, 2);
});
