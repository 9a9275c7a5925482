/**
 * The eKuiper case table, in process: each case compiles its rule against its stream, pushes the rows
 * one by one (with the MQTT topic as meta) and compares every output row with eKuiper's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileRule, setRowMeta, StreamCatalog, type TableSource } from '../../src/engine/index.js';
import { asJson, caseSql, compareRows, inputRows, loadCases, streamSql, tableSql, type Row } from './ekuiper-cases.js';

const { cases, streams } = loadCases();

/** The output rows of a case, flattened in order. */
export function runCase(c: (typeof cases)[number]): unknown[] {
  const spec = streams[c.stream];
  const name = `${c.stream}_x`;
  const topic = `cases/${c.stream}`;
  const catalog = new StreamCatalog();
  catalog.execute(streamSql(spec, name, topic));
  const tables = new Map<string, TableSource>();
  for (const [t, ts] of Object.entries(c.tables ?? {})) {
    catalog.execute(tableSql(ts, t, `${t}.json`));
    const rows = ts.rows.map((r) => structuredClone(r) as Row);
    tables.set(t, { rows: () => rows });
  }
  for (const [j, js] of Object.entries(c.joinStreams ?? {})) catalog.execute(streamSql(js, j, `cases/${j}`));
  const out: unknown[] = [];
  const rule = compileRule('case', caseSql(c, name, topic), {
    streams: catalog.lookup,
    tables: (t) => tables.get(t),
    now: () => 0,
    options: c.options as { sendError?: boolean; isEventTime?: boolean; lateTolerance?: number },
    onResult: (rows) => out.push(...rows.map(asJson)),
  });
  try {
    inputRows(c, spec).forEach((r, k) => {
      const row = structuredClone(r) as Row;
      setRowMeta(row, { topic });
      rule.push([row], 1_000_000 + k * 100);
    });
    let k = inputRows(c, spec).length;
    for (const [j, js] of Object.entries(c.joinStreams ?? {}))
      for (const r of js.rows) {
        const row = structuredClone(r) as Row;
        setRowMeta(row, { topic: `cases/${j}` });
        rule.push([row], 1_000_000 + k++ * 100, j);
      }
  } finally {
    rule.close();
  }
  return out;
}

describe('eKuiper SQL cases, in process', () => {
  it('the table covers every group of issue #14 and names a source for each case', () => {
    const groups = new Set(cases.map((c) => c.group));
    for (const g of ['null fields', 'functions and null arguments', 'types and arithmetic', 'arrays', 'select', 'analytic functions', 'date and time', 'bad data', 'event time', 'tables and joins'])
      assert.ok(groups.has(g), `no case for ${g}`);
    for (const c of cases) assert.ok(c.source && c.expected, `case ${c.name} needs a source and expected rows`);
    assert.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'case names are unique');
  });
  for (const c of cases) {
    it(`${c.group}: ${c.name} — ${c.sql}`, () => {
      const diff = compareRows(runCase(c), c.expected);
      assert.equal(diff, undefined, diff);
    });
  }
});
