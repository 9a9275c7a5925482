/**
 * Tables and joins in the engine: the table statements, what a join refuses at compile time and why,
 * and the run-time paths the case table does not reach (cross join, a non-boolean ON, an indexed
 * lookup, typed streams decoded each with its own schema, rows pushed for a stream the rule does not read).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileRule, parseStatement, StreamCatalog, type TableSource } from '../../src/engine/index.js';
import { isStreamplugError } from '../../src/errors.js';

type Row = Record<string, unknown>;

function catalog(...ddl: string[]): StreamCatalog {
  const c = new StreamCatalog();
  for (const d of ddl) c.execute(d);
  return c;
}

function throwsCode(fn: () => unknown, code: string, msg: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isStreamplugError(e), String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, msg);
    return true;
  });
}

describe('table statements', () => {
  it('CREATE TABLE fills eKuiper defaults (TYPE file), SHOW TABLES and SHOW STREAMS list apart, DESCRIBE/DROP find only their kind', () => {
    const c = catalog('CREATE STREAM s (id bigint) WITH (DATASOURCE="t")');
    const r = c.execute('CREATE TABLE t1 (id bigint, name string) WITH (DATASOURCE="t1.json", KIND="lookup", KEY="id")');
    assert.equal(r.kind, 'created');
    if (r.kind !== 'created') return;
    assert.equal(r.stream.table, true);
    assert.equal(r.stream.options.TYPE, 'file');
    assert.equal(r.message, 'Table t1 is created.');
    assert.match(r.stream.sql, /^CREATE TABLE t1 \(id bigint, name string\) WITH \(/);
    // the normalised DDL parses back to the same definition
    assert.deepEqual(catalog(r.stream.sql).get('t1'), r.stream);
    assert.deepEqual(c.execute('SHOW TABLES'), { kind: 'list', names: ['t1'] });
    assert.deepEqual(c.execute('SHOW STREAMS'), { kind: 'list', names: ['s'] });
    throwsCode(() => c.execute('DESCRIBE STREAM t1'), 'E_NOT_FOUND', /stream t1 does not exist/);
    throwsCode(() => c.execute('DROP TABLE s'), 'E_NOT_FOUND', /table s does not exist; SHOW TABLES/);
    throwsCode(() => c.execute('CREATE STREAM t1 () WITH (DATASOURCE="x")'), 'E_CONFLICT', /table t1 already exists/);
    assert.equal(c.execute('DESCRIBE TABLE t1').kind, 'describe');
    assert.deepEqual(c.execute('DROP TABLE t1'), { kind: 'dropped', name: 't1', message: 'Table t1 is dropped.' });
  });

  it('refuses a bad KIND, a lookup table without KEY, a bad RETAIN_SIZE and KIND on a stream, saying what to write', () => {
    const c = new StreamCatalog();
    throwsCode(() => c.execute('CREATE TABLE t () WITH (DATASOURCE="x", KIND="index")'), 'E_SQL_SEMANTIC', /expected KIND="scan" or KIND="lookup"/);
    throwsCode(() => c.execute('CREATE TABLE t () WITH (DATASOURCE="x", KIND="lookup")'), 'E_SQL_SEMANTIC', /names no KEY; add KEY="field"/);
    throwsCode(() => c.execute('CREATE TABLE t () WITH (DATASOURCE="x", RETAIN_SIZE="-1")'), 'E_SQL_SEMANTIC', /RETAIN_SIZE="-1"; expected a whole number/);
    throwsCode(() => c.execute('CREATE STREAM t () WITH (DATASOURCE="x", KIND="lookup")'), 'E_SQL_SEMANTIC', /only tables take; use CREATE TABLE/);
    assert.equal(c.list().length, 0);
  });

  it('parses every join form; CROSS JOIN with ON is a syntax error at its position', () => {
    const s = parseStatement('SELECT * FROM a x LEFT OUTER JOIN b AS y ON x.i = y.i RIGHT JOIN c ON a.i = c.i FULL JOIN d ON 1 = 1 CROSS JOIN e JOIN f ON f.i = a.i GROUP BY COUNTWINDOW(2)');
    assert.equal(s.kind, 'select');
    if (s.kind !== 'select') return;
    assert.equal(s.from.alias, 'x');
    assert.deepEqual(s.joins.map((j) => [j.type, j.name, j.alias ?? null, !!j.on]), [
      ['left', 'b', 'y', true],
      ['right', 'c', null, true],
      ['full', 'd', null, true],
      ['cross', 'e', null, false],
      ['inner', 'f', null, true],
    ]);
    throwsCode(() => parseStatement('SELECT * FROM a CROSS JOIN b ON a.i = b.i'), 'E_SQL_SYNTAX', /CROSS JOIN takes no ON/);
  });
});

describe('joins: refused at compile time', () => {
  const c = catalog(
    'CREATE STREAM s (id bigint, v float) WITH (DATASOURCE="s")',
    'CREATE STREAM s2 (id bigint, w string) WITH (DATASOURCE="s2")',
    'CREATE TABLE look (id bigint, name string) WITH (TYPE="memory", DATASOURCE="look", KIND="lookup", KEY="id")',
    'CREATE TABLE scan (id bigint, name string) WITH (DATASOURCE="scan.json")',
  );
  const compile = (sql: string) => compileRule('r', sql, { streams: c.lookup });

  it('two streams without a window (eKuiper: a window is required)', () => {
    throwsCode(() => compile('SELECT * FROM s INNER JOIN s2 ON s.id = s2.id'), 'E_SQL_SEMANTIC', /a time window or count window is required to join multiple streams \(s, s2\)/);
  });
  it('a lookup join without an equality on the table, and RIGHT/FULL joins of a lookup table', () => {
    throwsCode(() => compile('SELECT * FROM s INNER JOIN look ON s.id > look.id'), 'E_SQL_SEMANTIC', /at least one equi-join predicate is required/);
    throwsCode(() => compile('SELECT * FROM s INNER JOIN look ON s.id = s.v'), 'E_SQL_SEMANTIC', /at least one equi-join predicate/);
    throwsCode(() => compile('SELECT * FROM s RIGHT JOIN look ON s.id = look.id'), 'E_SQL_SEMANTIC', /only with INNER or LEFT JOIN/);
  });
  it('a table in FROM without a stream, a lookup table in FROM, an unknown joined name, a qualifier used twice, an unknown qualified field', () => {
    throwsCode(() => compile('SELECT * FROM scan INNER JOIN look ON scan.id = look.id'), 'E_SQL_SEMANTIC', /scan is a table and the rule joins no stream/);
    throwsCode(() => compile('SELECT * FROM look INNER JOIN s ON s.id = look.id'), 'E_SQL_SEMANTIC', /lookup table look cannot be FROM/);
    throwsCode(() => compile('SELECT * FROM s INNER JOIN nope ON s.id = nope.id'), 'E_SQL_SEMANTIC', /stream or table nope is not defined/);
    throwsCode(() => compile('SELECT * FROM s INNER JOIN scan AS s ON s.id = s.id'), 'E_SQL_SEMANTIC', /s is named twice/);
    throwsCode(() => compile('SELECT scan.nme FROM s INNER JOIN scan ON s.id = scan.id'), 'E_SQL_SEMANTIC', /unknown field scan.nme in SELECT: scan has id, name/);
    throwsCode(() => compile('SELECT nme FROM s INNER JOIN scan ON s.id = scan.id'), 'E_SQL_SEMANTIC', /unknown field nme/);
  });
  it('lists the streams and tables a joining rule reads', () => {
    const r = compile('SELECT * FROM s INNER JOIN s2 ON s.id = s2.id LEFT JOIN look ON look.id = s.id INNER JOIN scan ON scan.id = s.id GROUP BY COUNTWINDOW(2)');
    assert.deepEqual([r.streams, r.tables], [['s', 's2'], ['look', 'scan']]);
    const t = compile('SELECT * FROM scan INNER JOIN s ON s.id = scan.id');
    assert.deepEqual([t.stream, t.streams, t.tables], ['s', ['s'], ['scan']]);
    t.close();
    assert.equal(r.rowsPassUnchanged, false);
    // a joined window is not checkpointed: its snapshot could not say which stream each row came from
    assert.equal(r.exportWindow(), undefined);
    throwsCode(() => r.push([{ id: 1 }], 0, 'other'), 'E_BAD_REQUEST', /does not read stream other; it reads s, s2/);
    r.close();
  });
});

describe('joins: at run time', () => {
  it('CROSS JOIN pairs every row; a typed joined stream decodes its rows with its own schema', () => {
    const c = catalog('CREATE STREAM a (i bigint) WITH (DATASOURCE="a")', 'CREATE STREAM b (j string) WITH (DATASOURCE="b")');
    const out: Row[] = [];
    const r = compileRule('r', 'SELECT a.i, b.j FROM a CROSS JOIN b GROUP BY COUNTWINDOW(4)', { streams: c.lookup, onResult: (rows) => out.push(...rows) });
    r.push([{ i: 1 }, { i: 2 }], 0);
    r.push([{ j: 5, extra: 1 }, { j: 'y' }], 0, 'b'); // 5 becomes "5" as b's schema says
    assert.deepEqual(out, [{ i: 1, j: '5' }, { i: 1, j: 'y' }, { i: 2, j: '5' }, { i: 2, j: 'y' }]);
  });

  it('an ON that is not a boolean fails that window, counted on the join operator; the rule goes on', () => {
    const c = catalog('CREATE STREAM a () WITH (DATASOURCE="a")', 'CREATE STREAM b () WITH (DATASOURCE="b")');
    const out: Row[] = [];
    const errors: string[] = [];
    const r = compileRule('r', 'SELECT * FROM a INNER JOIN b ON a.x GROUP BY COUNTWINDOW(2)', { streams: c.lookup, onResult: (rows) => out.push(...rows), onError: (e, op) => errors.push(`${op}:${e.code}`) });
    r.push([{ x: 'text' }], 0);
    r.push([{ y: 1 }], 0, 'b');
    assert.deepEqual(out, []);
    assert.deepEqual(errors, ['join:E_EVAL']);
    const join = r.metrics().find((m) => m.name === 'join')!;
    assert.equal(join.exceptions, 1);
    assert.match(join.lastError!.message, /invalid join condition that returns non-bool value/);
    r.push([{ x: true }], 0);
    r.push([{ y: 2 }], 0, 'b');
    assert.deepEqual(out, [{ x: true, y: 2 }]);
  });

  it('a lookup table with an index is asked by key, once per row, and sees the row values', () => {
    const c = catalog('CREATE STREAM s () WITH (DATASOURCE="s")', 'CREATE TABLE t () WITH (TYPE="memory", DATASOURCE="t", KIND="lookup", KEY="k")');
    const asked: unknown[][] = [];
    const table: TableSource = {
      rows: () => assert.fail('an indexed lookup table must not be scanned'),
      lookup: (keys, values) => {
        asked.push([keys, values]);
        return values[0] === 'a' ? [{ k: 'a', label: 'A1' }, { k: 'a', label: 'A2' }] : [];
      },
    };
    const out: Row[] = [];
    const r = compileRule('r', 'SELECT s.id, t.label FROM s LEFT JOIN t ON t.k = lower(s.code)', { streams: c.lookup, tables: () => table, onResult: (rows) => out.push(...rows) });
    r.push([{ id: 1, code: 'A' }, { id: 2, code: 'B' }, { id: 3 }]);
    // a null key value looks nothing up (eKuiper's memory table matches none)
    assert.deepEqual(asked, [[['k'], ['a']], [['k'], ['b']]]);
    assert.deepEqual(out, [{ id: 1, label: 'A1' }, { id: 1, label: 'A2' }, { id: 2 }, { id: 3 }]);
  });

  it('a scan table is read again for every batch: rows added later join later rows', () => {
    const c = catalog('CREATE STREAM s () WITH (DATASOURCE="s")', 'CREATE TABLE t () WITH (TYPE="memory", DATASOURCE="t")');
    const rows: Row[] = [];
    const out: Row[] = [];
    const r = compileRule('r', 'SELECT s.id, t.v FROM s INNER JOIN t ON s.id = t.id', { streams: c.lookup, tables: () => ({ rows: () => rows }), onResult: (x) => out.push(...x) });
    r.push([{ id: 1 }]);
    rows.push({ id: 1, v: 'one' });
    r.push([{ id: 1 }]);
    assert.deepEqual(out, [{ id: 1, v: 'one' }]);
  });

  it('aggregates over a joined window, grouped by a joined field', () => {
    const c = catalog('CREATE STREAM s () WITH (DATASOURCE="s")', 'CREATE TABLE t () WITH (DATASOURCE="t.json")');
    const out: Row[] = [];
    const table = [{ id: 1, kind: 'x' }, { id: 2, kind: 'y' }, { id: 3, kind: 'x' }];
    const r = compileRule('r', 'SELECT t.kind, sum(s.v) AS total FROM s INNER JOIN t ON s.id = t.id GROUP BY t.kind, COUNTWINDOW(4) ORDER BY t.kind', {
      streams: c.lookup,
      tables: () => ({ rows: () => table }),
      onResult: (x) => out.push(...x),
    });
    r.push([{ id: 1, v: 1 }, { id: 2, v: 10 }, { id: 3, v: 100 }, { id: 9, v: 1000 }]);
    assert.deepEqual(out, [{ kind: 'x', total: 101 }, { kind: 'y', total: 10 }]);
  });
  it('a window of 120 × 120 rows (more pairs than one ON call takes) joins every match once, in order', () => {
    const c = catalog('CREATE STREAM a () WITH (DATASOURCE="a")', 'CREATE STREAM b () WITH (DATASOURCE="b")');
    const out: Row[] = [];
    const r = compileRule('r', 'SELECT a.i, b.j FROM a INNER JOIN b ON a.i % 40 = b.j GROUP BY COUNTWINDOW(240)', { streams: c.lookup, onResult: (x) => out.push(...x) });
    r.push(Array.from({ length: 120 }, (_, i) => ({ i })), 0);
    r.push(Array.from({ length: 120 }, (_, j) => ({ j })), 0, 'b');
    const expected: Row[] = [];
    for (let i = 0; i < 120; i++) for (let j = 0; j < 120; j++) if (i % 40 === j) expected.push({ i, j });
    assert.equal(expected.length, 120);
    assert.deepEqual(out, expected);
  });
});
