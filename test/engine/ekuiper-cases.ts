/**
 * The eKuiper SQL case table (test/engine/ekuiper-cases/*.json): SQL, input rows and the rows eKuiper
 * outputs, each case naming the eKuiper test or document it comes from. Run in process by
 * test/engine/ekuiper.test.ts and end to end (REST + MQTT + file sink) by test/e2e/ekuiper-sql.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';

export type Row = Record<string, unknown>;

export interface SqlCase {
  name: string;
  group: string;
  source: string;
  /** A stream of streams.json. */
  stream: string;
  /** `{s}` is the stream's name, `{topic}` its MQTT topic. */
  sql: string;
  /** Input rows; default: the stream's rows. */
  rows?: Row[];
  options?: Record<string, unknown>;
  /** Output rows in order (all results flattened). `{"error": "ERROR"}` matches any error row. */
  expected: Row[];
  /**
   * Tables the SQL joins, by the name it uses: their DDL (`{name}` is that name, `{file}` the JSON file
   * the rows are written to for TYPE="file") and rows. Created before the rule, dropped after it.
   */
  tables?: Record<string, StreamSpec>;
  /** Other streams the SQL joins, by name; their rows are pushed after the case stream's rows. */
  joinStreams?: Record<string, StreamSpec>;
}

export interface StreamSpec {
  ddl: string;
  rows: Row[];
}

const dir = path.join(repoRoot, 'test', 'engine', 'ekuiper-cases');

export function loadCases(): { cases: SqlCase[]; streams: Record<string, StreamSpec> } {
  const streams = (JSON.parse(fs.readFileSync(path.join(dir, 'streams.json'), 'utf8')) as { streams: Record<string, StreamSpec> }).streams;
  const cases = (JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8')) as { cases: SqlCase[] }).cases;
  for (const c of cases) if (!streams[c.stream]) throw new Error(`case ${c.name} names stream ${c.stream}, which streams.json does not define`);
  return { cases, streams };
}

const fillIn = (text: string, name: string, topic: string) => text.replaceAll('{name}', name).replaceAll('{s}', name).replaceAll('{topic}', topic);

export function streamSql(spec: StreamSpec, name: string, topic: string): string {
  return fillIn(spec.ddl, name, topic);
}

/** A table's DDL for a case: `{name}` its name, `{file}` where its rows are. */
export function tableSql(spec: StreamSpec, name: string, file: string): string {
  return spec.ddl.replaceAll('{name}', name).replaceAll('{file}', file);
}

export function caseSql(c: SqlCase, name: string, topic: string): string {
  return fillIn(c.sql, name, topic);
}

export function inputRows(c: SqlCase, spec: StreamSpec): Row[] {
  return c.rows ?? spec.rows;
}

/** JSON as a sink writes it, so that in-process results compare like file lines. */
export function asJson(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x instanceof Uint8Array ? Buffer.from(x).toString('base64') : x)));
}

function sameRow(actual: unknown, expected: Row): boolean {
  if (expected.error === 'ERROR' && Object.keys(expected).length === 1)
    return !!actual && typeof actual === 'object' && typeof (actual as Row).error === 'string' && Object.keys(actual as Row).length === 1;
  return isDeepEqual(actual, expected);
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => isDeepEqual(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && isDeepEqual((a as Row)[k], (b as Row)[k]));
  }
  return false;
}

/** Undefined when the rows match; otherwise what differs, for the failure message. */
export function compareRows(actual: unknown[], expected: Row[]): string | undefined {
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (i >= actual.length) return `row ${i}: missing, expected ${JSON.stringify(expected[i])} (got ${actual.length} rows: ${JSON.stringify(actual)})`;
    if (i >= expected.length) return `row ${i}: unexpected ${JSON.stringify(actual[i])} (expected ${expected.length} rows)`;
    if (!sameRow(actual[i], expected[i])) return `row ${i}: got ${JSON.stringify(actual[i])}, expected ${JSON.stringify(expected[i])}`;
  }
  return undefined;
}
