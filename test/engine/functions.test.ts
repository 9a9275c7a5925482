import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { run, rule } from './harness.js';

const one = (sql: string, row: Record<string, unknown> = {}) => run(sql, [row])[0];

test('math functions', () => {
  assert.deepEqual(one('SELECT abs(-3) AS a, ceil(1.2) AS c, floor(1.8) AS f, round(2.5) AS r, round(-2.5) AS rn, round(3.14159, 2) AS r2, power(2, 10) AS p, sqrt(16) AS s, mod(7, 3) AS m, log(100) AS l, ln(1) AS n, exp(0) AS e, sign(-4) AS sg FROM demo'), {
    a: 3, c: 2, f: 1, r: 3, rn: -3, r2: 3.14, p: 1024, s: 4, m: 1, l: 2, n: 0, e: 1, sg: -1,
  });
  assert.deepEqual(one('SELECT sin(0) AS s, cos(0) AS c, bitand(12, 10) AS ba, bitor(12, 10) AS bo, bitxor(12, 10) AS bx, 12 & 10 AS a2 FROM demo'), { s: 0, c: 1, ba: 8, bo: 14, bx: 6, a2: 8 });
});

test('string functions', () => {
  const r = one(
    'SELECT concat(a, "-", b) AS c, lower(a) AS lo, upper(b) AS up, length(a) AS len, substring(a, 1, 3) AS sub, trim(p) AS t, ltrim(p) AS lt, rtrim(p) AS rt, split_value(csv, ",", 1) AS sv, indexof(a, "l") AS io, startswith(a, "He") AS sw, endswith(a, "lo") AS ew, format(n, 2) AS fm, reverse(b) AS rv, regexp_matches(a, "^H.*o$") AS rm, regexp_replace(csv, ",", ";") AS rr, numbytes("é") AS nb FROM demo',
    { a: 'Hello', b: 'World', p: '  pad  ', csv: 'x,y,z', n: 1234567.891 },
  );
  assert.deepEqual(r, {
    c: 'Hello-World', lo: 'hello', up: 'WORLD', len: 5, sub: 'el', t: 'pad', lt: 'pad  ', rt: '  pad', sv: 'y', io: 2, sw: true, ew: true,
    fm: '1,234,567.89', rv: 'dlroW', rm: true, rr: 'x;y;z', nb: 2,
  });
});

test('conversion, hashing, null helpers', () => {
  const r = one(
    'SELECT cast(s, "bigint") AS i, cast(s, "float") AS f, cast(n, "string") AS st, cast("true", "boolean") AS b, cast(1.9, "bigint") AS t, md5(s) AS m, sha1(s) AS s1, sha256(s) AS s2, coalesce(missing, s) AS co, isnull(missing) AS isn, encode(s, "base64") AS en, decode("NDI=", "base64") AS de FROM demo',
    { s: '42', n: 7 },
  );
  const h = (alg: string) => createHash(alg).update('42').digest('hex');
  assert.deepEqual(r, { i: 42, f: 42, st: '7', b: true, t: 1, m: h('md5'), s1: h('sha1'), s2: h('sha256'), co: '42', isn: true, en: 'NDI=', de: new Uint8Array(Buffer.from('42')) }); // decode gives bytes, as eKuiper
  assert.throws(() => rule('SELECT cast(s, t) FROM demo'), (e: any) => e.code === 'E_ARG_LITERAL');
});

test('date and time functions use the rule clock, in UTC', () => {
  const h = rule('SELECT tstamp() AS ts, format_time(now(3), "yyyy-MM-dd HH:mm:ss.SSS") AS f, now() AS n, now(4) AS n4, unix_timestamp() AS u, cur_date() AS d, format_time(t, "yyyy/M/d EEE") AS g, hour(t) AS hh FROM demo', undefined, () => 0);
  const at = Date.UTC(2024, 1, 29, 13, 5, 9, 42);
  h.rule.push([{ t: '2023-07-04T10:00:00Z' }], at);
  assert.deepEqual(h.results, [[{ ts: at, f: '2024-02-29 13:05:09.042', n: '2024-02-29 13:05:09', n4: '2024-02-29 13:05:09.0420', u: Math.floor(at / 1000), d: '2024-02-29', g: '2023/7/4 Tue', hh: 10 }]]);
});

test('JSON path functions', () => {
  const doc = { a: { b: [{ c: 1 }, { c: 5 }, { c: 9 }] }, s: 'x' };
  assert.deepEqual(
    one('SELECT json_path_query(doc, "$.a.b[1].c") AS one, json_path_query(doc, "$.a.b[*].c") AS all, json_path_query(doc, "$.a.b[?(@.c > 2)].c") AS big, json_path_exists(doc, "$.s") AS ex, json_path_exists(doc, "$.nope") AS nx, json_path_query(txt, "$.k") AS fromText FROM demo', { doc, txt: '{"k": [1,2]}' }),
    { one: 5, all: [1, 5, 9], big: [5, 9], ex: true, nx: false, fromText: [1, 2] },
  );
});

test('built-in arity is checked when the rule compiles', () => {
  assert.throws(() => rule('SELECT lower(a, b) FROM demo'), (e: any) => e.code === 'E_ARITY' && /lower takes 1 argument/.test(e.message) && e.details.column === 8);
  assert.throws(() => rule('SELECT split_value(a) FROM demo'), (e: any) => e.code === 'E_ARITY' && /3 argument/.test(e.message));
  assert.throws(() => rule('SELECT nosuchfn(a) FROM demo'), (e: any) => e.code === 'E_UNKNOWN_FUNCTION' && /nosuchfn/.test(e.message));
  assert.throws(() => rule('SELECT lower(*) FROM demo'), (e: any) => e.code === 'E_SQL_SEMANTIC');
});

const win = (sql: string, rows: Record<string, unknown>[]) => {
  const h = rule(sql);
  h.rule.push(rows, 0);
  h.rule.tick(10000);
  assert.deepEqual(h.errors, []);
  return h.results;
};

test('aggregates: count, sum, avg, min, max, collect, deduplicate, stddev, median', () => {
  const rows = [{ v: 4, k: 'a' }, { v: 2, k: 'b' }, { v: null, k: 'a' }, { v: 6, k: 'c' }];
  assert.deepEqual(
    win('SELECT count(*) AS n, count(v) AS nv, sum(v) AS s, avg(v) AS a, min(v) AS lo, max(v) AS hi, collect(v) AS c, median(v) AS md, var(v) AS va FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)', rows),
    [[{ n: 4, nv: 3, s: 12, a: 4, lo: 2, hi: 6, c: [4, 2, null, 6], md: 4, va: 8 / 3 }]],
  );
  // eKuiper: true gives every row whose key is new in the group, false the last row (null when its key repeats)
  assert.deepEqual(win('SELECT deduplicate(k, true) AS d FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)', rows), [[{ d: [{ v: 4, k: 'a' }, { v: 2, k: 'b' }, { v: 6, k: 'c' }] }]]);
  assert.deepEqual(win('SELECT deduplicate(k, false) AS d FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)', rows), [[{ d: { v: 6, k: 'c' } }]]);
  assert.deepEqual(win('SELECT deduplicate(k, false) AS d FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)', rows.slice(0, 3)), [[{}]]);
  assert.deepEqual(win('SELECT stddev(v) AS sd FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)', [{ v: 2 }, { v: 4 }]), [[{ sd: 1 }]]);
  assert.deepEqual(win('SELECT collect(*) AS rows FROM demo GROUP BY TUMBLINGWINDOW(ss, 10)', [{ v: 1 }]), [[{ rows: [{ v: 1 }] }]]);
});

test('aggregates without a window aggregate each row alone', () => {
  assert.deepEqual(run('SELECT count(*) AS c, sum(v) AS s FROM demo', [{ v: 3 }, { v: 5 }]), [{ c: 1, s: 3 }, { c: 1, s: 5 }]);
});

test('GROUP BY keys, HAVING on aggregates and aliases, ORDER BY ASC/DESC, LIMIT', () => {
  const rows = [
    { k: 'a', v: 1 }, { k: 'b', v: 10 }, { k: 'a', v: 2 }, { k: 'c', v: 7 }, { k: 'b', v: 20 }, { k: 'c', v: 1 }, { k: 'd', v: 100 },
  ];
  assert.deepEqual(
    win('SELECT k, sum(v) AS total, count(*) AS n FROM demo GROUP BY k, TUMBLINGWINDOW(ss, 10) HAVING count(*) > 1 ORDER BY total DESC', rows),
    [[{ k: 'b', total: 30, n: 2 }, { k: 'c', total: 8, n: 2 }, { k: 'a', total: 3, n: 2 }]],
  );
  assert.deepEqual(
    win('SELECT k, sum(v) AS total FROM demo GROUP BY k, TUMBLINGWINDOW(ss, 10) HAVING total >= 8 ORDER BY k ASC LIMIT 2', rows),
    [[{ k: 'b', total: 30 }, { k: 'c', total: 8 }]],
  );
  assert.deepEqual(
    win('SELECT k, max(v) AS m FROM demo GROUP BY k, TUMBLINGWINDOW(ss, 10) ORDER BY max(v) - min(v), k DESC', rows),
    [[{ k: 'd', m: 100 }, { k: 'a', m: 2 }, { k: 'c', m: 7 }, { k: 'b', m: 20 }]],
  );
  assert.deepEqual(run('SELECT v FROM demo ORDER BY v DESC', [{ v: 1 }, { v: 3 }, { v: 2 }]), [{ v: 3 }, { v: 2 }, { v: 1 }]);
});

test('CASE over aggregates in a grouped select', () => {
  assert.deepEqual(
    win('SELECT k, CASE WHEN sum(v) > 5 THEN "big" ELSE "small" END AS size FROM demo GROUP BY k, TUMBLINGWINDOW(ss, 10) ORDER BY k', [{ k: 'a', v: 1 }, { k: 'b', v: 9 }]),
    [[{ k: 'a', size: 'small' }, { k: 'b', size: 'big' }]],
  );
  assert.throws(() => rule('SELECT sum(count(*)) FROM demo GROUP BY TUMBLINGWINDOW(ss, 1)'), (e: any) => e.code === 'E_SQL_SEMANTIC' && /nested/.test(e.message));
});

test('JSON paths in eKuiper\'s syntax: filters with or without parentheses, && and ||, unions, quoted keys; null data is an error', () => {
  const d = { a: [{ b: 1, c: 'x' }, { b: 5, c: 'y' }, { b: 9, c: 'x' }], o: { p: 1, 'q.r': 2 } };
  const r = one(
    `SELECT json_path_query(d, "$.a[0,2].b") AS u, json_path_query(d, "$.a[?(@.c == 'x' && @.b > 1)].b") AS f, json_path_query(d, "$.a[? @.c=='y' || @.b < 2].b") AS g, json_path_query(d, "$.o['q.r']") AS q, json_path_query(d, "$.a[-1:]") AS s FROM demo`,
    { d },
  );
  assert.deepEqual(r, { u: [1, 9], f: [9], g: [1, 5], q: 2, s: [{ b: 9, c: 'x' }] });
  const h = rule('SELECT id, json_path_query(d, "$.a") AS a FROM demo');
  h.rule.push([{ id: 1 }, { id: 2, d: { a: 3 } }], 1);
  assert.deepEqual(h.results, [[{ id: 2, a: 3 }]]);
  assert.match(h.errors[0].message, /invalid data nil for jsonpath/);
  assert.throws(() => rule('SELECT json_path_query(d, "a.b") FROM demo'), (e: any) => e.code === 'E_ARG_LITERAL' && /must start with \$/.test(e.message));
});
