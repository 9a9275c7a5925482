/** Shared by the engine tests: a stream catalog and a rule whose results are collected. */
import { compileRule, StreamCatalog, type FunctionResolver, type RuleRuntime } from '../../src/engine/index.js';

export type Row = Record<string, unknown>;

export const catalog = new StreamCatalog();
catalog.execute('CREATE STREAM demo () WITH (DATASOURCE="demo", FORMAT="json")');
catalog.execute('CREATE STREAM typed (id bigint, temp float, name string, tags array(string), loc struct(city string, zip bigint)) WITH (DATASOURCE="t")');

export interface Harness {
  rule: RuleRuntime;
  /** One entry per onResult call. */
  results: Row[][];
  errors: { code: string; message: string; op: string }[];
}

export function rule(sql: string, functions?: FunctionResolver, now = () => 0): Harness {
  const results: Row[][] = [];
  const errors: Harness['errors'] = [];
  const r = compileRule('r1', sql, {
    streams: catalog.lookup,
    functions,
    now,
    onResult: (rows) => results.push(rows),
    onError: (e, op) => errors.push({ code: e.code, message: e.message, op }),
  });
  return { rule: r, results, errors };
}

/** Runs a window-less rule over rows and returns all result rows, flattened. */
export function run(sql: string, rows: Row[], functions?: FunctionResolver): Row[] {
  const h = rule(sql, functions);
  h.rule.push(rows, 1000);
  if (h.errors.length) throw new Error(h.errors.map((e) => `${e.code}: ${e.message}`).join('; '));
  return h.results.flat();
}
