import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStatement, parseExpression } from '../../src/engine/index.js';
import { StreamplugError } from '../../src/errors.js';

function syntaxError(sql: string): StreamplugError {
  try {
    parseStatement(sql);
  } catch (e) {
    assert.ok(e instanceof StreamplugError, `expected StreamplugError, got ${e}`);
    return e;
  }
  assert.fail(`expected ${JSON.stringify(sql)} to fail`);
}

test('a missing FROM reports where and what was expected', () => {
  const e = syntaxError('SELECT a, b WHERE a > 1');
  assert.equal(e.code, 'E_SQL_SYNTAX');
  assert.deepEqual(e.details, { line: 1, column: 13, offset: 12 });
  assert.match(e.message, /expected ',' or FROM but found 'WHERE' at line 1, column 13/);
});

test('positions count lines and columns across newlines', () => {
  const e = syntaxError('SELECT a\nFROM demo\nWHERE a > AND b');
  assert.equal(e.code, 'E_SQL_SYNTAX');
  assert.deepEqual(e.details, { line: 3, column: 11, offset: 29 });
  assert.match(e.message, /expected an expression .* but found 'AND'/);
});

test('unterminated string, bad character, bad window unit, trailing tokens', () => {
  let e = syntaxError('SELECT * FROM demo WHERE name = "abc');
  assert.match(e.message, /unterminated string/);
  assert.deepEqual(e.details, { line: 1, column: 33, offset: 32 });
  e = syntaxError('SELECT a # b FROM demo');
  assert.match(e.message, /unexpected character '#'/);
  assert.equal(e.details!.column, 10);
  e = syntaxError('SELECT count(*) FROM demo GROUP BY TUMBLINGWINDOW(xx, 10)');
  assert.match(e.message, /expected a time unit \(ms, ss, mi, hh, dd\) but found 'xx'/);
  assert.equal(e.details!.column, 51);
  e = syntaxError('SELECT a FROM demo extra junk');
  assert.match(e.message, /expected end of statement but found 'junk'/);
  e = syntaxError('SELECT CASE WHEN a THEN 1 FROM demo');
  assert.match(e.message, /expected WHEN, ELSE or END but found 'FROM'/);
  e = syntaxError('SELECT f(a, FROM demo');
  assert.equal(e.code, 'E_SQL_SYNTAX');
  e = syntaxError('SELECT * FROM demo GROUP BY TUMBLINGWINDOW(ss, 0)');
  assert.match(e.message, /window size must be greater than 0/);
});

test('CREATE STREAM with typed fields and options', () => {
  const s = parseStatement(
    'CREATE STREAM demo (USERID bigint, name STRING, score float, ok boolean, at datetime, raw bytea, tags array(string), loc struct(city string, zip bigint)) WITH (DATASOURCE="topic/a", FORMAT="json", CONF_KEY="c1", TYPE="mqtt");',
  );
  assert.equal(s.kind, 'createStream');
  if (s.kind !== 'createStream') return;
  assert.equal(s.name, 'demo');
  assert.deepEqual(s.fields!.map((f) => f.name), ['USERID', 'name', 'score', 'ok', 'at', 'raw', 'tags', 'loc']);
  assert.deepEqual(s.fields![0].type, { type: 'bigint' });
  assert.deepEqual(s.fields![6].type, { type: 'array', items: { type: 'string' } });
  assert.deepEqual(s.fields![7].type, { type: 'struct', fields: [{ name: 'city', type: { type: 'string' } }, { name: 'zip', type: { type: 'bigint' } }] });
  assert.deepEqual(s.options, { DATASOURCE: 'topic/a', FORMAT: 'json', CONF_KEY: 'c1', TYPE: 'mqtt' });
});

test('schemaless stream, DROP, SHOW, DESCRIBE', () => {
  assert.deepEqual(parseStatement('create stream s () WITH (DATASOURCE="x")'), { kind: 'createStream', name: 's', fields: null, options: { DATASOURCE: 'x' } });
  assert.deepEqual(parseStatement('DROP STREAM s'), { kind: 'dropStream', name: 's' });
  assert.deepEqual(parseStatement('show streams;'), { kind: 'showStreams' });
  assert.deepEqual(parseStatement('DESCRIBE STREAM `my stream`'), { kind: 'describeStream', name: 'my stream' });
  const e = syntaxError('CREATE STREAM s (a int) WITH (DATASOURCE="x")');
  assert.match(e.message, /expected a field type .* but found 'int'/);
});

test('SELECT clauses and windows parse into the statement', () => {
  const s = parseStatement(
    'SELECT d.a AS x, count(*), b->c, arr[0] FROM demo AS d WHERE a > 1 GROUP BY b, HOPPINGWINDOW(ss, 10, 5) HAVING count(*) > 2 ORDER BY x DESC, b LIMIT 3',
  );
  assert.equal(s.kind, 'select');
  if (s.kind !== 'select') return;
  assert.equal(s.from.alias, 'd');
  assert.deepEqual(s.fields.map((f) => [f.text, f.alias]), [['d.a', 'x'], ['count(*)', undefined], ['b->c', undefined], ['arr[0]', undefined]]);
  assert.equal(s.window?.type, 'hopping');
  assert.deepEqual(s.window && { ...s.window, pos: undefined }, { type: 'hopping', unit: 'SS', size: 10, hop: 5, pos: undefined });
  assert.equal(s.groupBy.length, 1);
  assert.deepEqual(s.orderBy.map((o) => o.desc), [true, false]);
  assert.equal(s.limit, 3);
});

test('operator precedence: arithmetic over comparison over NOT over AND over OR', () => {
  const e = parseExpression('a + b * 2 > 3 OR NOT c AND d = 1');
  assert.equal(e.kind, 'binary');
  if (e.kind !== 'binary') return;
  assert.equal(e.op, 'OR');
  assert.equal(e.left.kind === 'binary' && e.left.op, '>');
  const l = e.left.kind === 'binary' ? e.left.left : undefined;
  assert.equal(l?.kind === 'binary' && l.op, '+');
  assert.equal(e.right.kind === 'binary' && e.right.op, 'AND');
});

test('comments and quoting', () => {
  const s = parseStatement("SELECT `weird name` -- a comment\n, 'it''s' AS s /* block\n comment */ FROM demo");
  assert.equal(s.kind, 'select');
  if (s.kind !== 'select') return;
  assert.equal(s.fields[0].expr.kind === 'field' && s.fields[0].expr.name, 'weird name');
  assert.equal(s.fields[1].expr.kind === 'literal' && s.fields[1].expr.value, "it's");
});
