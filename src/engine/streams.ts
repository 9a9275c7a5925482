/**
 * Stream definitions from eKuiper's DDL, and an in-memory catalog that executes the stream statements.
 * Persistence and connectors live elsewhere: they store `def.sql` and read `def.options`.
 */
import { StreamplugError } from '../errors.js';
import type { FieldType, StreamField } from './ast.js';
import { parseStatement } from './parser.js';

export interface StreamDef {
  name: string;
  /** null: schemaless stream, any field may be referenced. */
  fields: StreamField[] | null;
  /** Upper-cased option names: TYPE (default "mqtt"), DATASOURCE, FORMAT (default "json"), CONF_KEY, SHARED, KEY, … */
  options: Record<string, string>;
  /** The DDL that created it, normalised: feeding it back to parseStatement gives the same definition. */
  sql: string;
  /** A table (CREATE TABLE): joined with streams, never read by FROM alone. Options KIND (scan|lookup), KEY, RETAIN_SIZE. */
  table?: boolean;
}

/** A table's kind (eKuiper): scan tables keep rows in the rule; lookup tables are looked up by key. */
export function tableKind(def: StreamDef): 'scan' | 'lookup' {
  return def.options.KIND?.toLowerCase() === 'lookup' ? 'lookup' : 'scan';
}

export function formatFieldType(t: FieldType): string {
  if (t.type === 'array') return `array(${formatFieldType(t.items)})`;
  if (t.type === 'struct') return `struct(${t.fields.map((f) => `${quoteName(f.name)} ${formatFieldType(f.type)}`).join(', ')})`;
  return t.type;
}

function quoteName(n: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(n) ? n : '`' + n.replace(/`/g, '``') + '`';
}

function quoteString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/** Normalised DDL text for a definition. */
export function formatStreamSql(name: string, fields: StreamField[] | null, options: Record<string, string>, table = false): string {
  const cols = fields ? fields.map((f) => `${quoteName(f.name)} ${formatFieldType(f.type)}`).join(', ') : '';
  const opts = Object.entries(options).map(([k, v]) => `${k}=${quoteString(v)}`).join(', ');
  return `CREATE ${table ? 'TABLE' : 'STREAM'} ${quoteName(name)} (${cols})${opts ? ` WITH (${opts})` : ''}`;
}

/**
 * Parses `CREATE STREAM …` or `CREATE TABLE …` into a definition, filling eKuiper's defaults (TYPE mqtt,
 * FORMAT json; a table's TYPE file, KIND scan). A lookup table needs a KEY, as eKuiper's lookup sources do.
 */
export function parseStreamDef(sql: string): StreamDef {
  const s = parseStatement(sql);
  if (s.kind !== 'createStream')
    throw new StreamplugError('E_SQL_SEMANTIC', `expected a CREATE STREAM or CREATE TABLE statement but found ${s.kind}; pass the DDL`, { found: s.kind });
  // eKuiper: a stream's TYPE defaults to mqtt, a table's to file
  const options: Record<string, string> = { TYPE: s.table ? 'file' : 'mqtt', FORMAT: 'json', ...s.options };
  if (s.table) {
    const kind = (options.KIND ?? 'scan').toLowerCase();
    if (kind !== 'scan' && kind !== 'lookup')
      throw new StreamplugError('E_SQL_SEMANTIC', `table ${s.name} has KIND="${options.KIND}"; expected KIND="scan" or KIND="lookup"`, { table: s.name, kind: options.KIND });
    if (kind === 'lookup' && !options.KEY)
      throw new StreamplugError('E_SQL_SEMANTIC', `lookup table ${s.name} names no KEY; add KEY="field" (the field rows are looked up by)`, { table: s.name });
    if (options.RETAIN_SIZE !== undefined && !/^[0-9]+$/.test(options.RETAIN_SIZE))
      throw new StreamplugError('E_SQL_SEMANTIC', `table ${s.name} has RETAIN_SIZE="${options.RETAIN_SIZE}"; expected a whole number of rows`, { table: s.name });
  } else if (options.KIND !== undefined) {
    throw new StreamplugError('E_SQL_SEMANTIC', `stream ${s.name} has KIND="${options.KIND}", which only tables take; use CREATE TABLE or drop KIND`, { stream: s.name });
  }
  if (s.fields) {
    const seen = new Set<string>();
    for (const f of s.fields) {
      if (seen.has(f.name))
        throw new StreamplugError('E_SQL_SEMANTIC', `stream ${s.name} declares field ${f.name} twice; expected unique field names`, { field: f.name });
      seen.add(f.name);
    }
  }
  const def: StreamDef = { name: s.name, fields: s.fields, options, sql: formatStreamSql(s.name, s.fields, options, s.table) };
  if (s.table) def.table = true;
  return def;
}

export type CatalogResult =
  /** stream.table tells a table from a stream. */
  | { kind: 'created'; stream: StreamDef; message: string }
  | { kind: 'dropped'; name: string; message: string }
  | { kind: 'list'; names: string[] }
  | { kind: 'describe'; stream: StreamDef };

/** Executes the stream statements over an in-memory map; SELECT is the rule compiler's job. */
export class StreamCatalog {
  private readonly defs = new Map<string, StreamDef>();

  constructor(initial: Iterable<StreamDef> = []) {
    for (const d of initial) this.defs.set(d.name, d);
  }

  get(name: string): StreamDef | undefined {
    return this.defs.get(name);
  }

  list(): StreamDef[] {
    return [...this.defs.values()];
  }

  /** The lookup compileRule wants. */
  readonly lookup = (name: string): StreamDef | undefined => this.defs.get(name);

  execute(sql: string): CatalogResult {
    const s = parseStatement(sql);
    switch (s.kind) {
      case 'createStream': {
        // streams and tables share one namespace: FROM and JOIN name either
        const other = this.defs.get(s.name);
        if (other)
          throw new StreamplugError('E_CONFLICT', `${other.table ? 'table' : 'stream'} ${s.name} already exists; drop it first or pick another name`, { [other.table ? 'table' : 'stream']: s.name });
        const def = parseStreamDef(sql);
        this.defs.set(def.name, def);
        return { kind: 'created', stream: def, message: `${def.table ? 'Table' : 'Stream'} ${def.name} is created.` };
      }
      case 'dropStream':
      case 'dropTable': {
        const table = s.kind === 'dropTable';
        this.need(s.name, table);
        this.defs.delete(s.name);
        return { kind: 'dropped', name: s.name, message: `${table ? 'Table' : 'Stream'} ${s.name} is dropped.` };
      }
      case 'showStreams':
      case 'showTables': {
        const table = s.kind === 'showTables';
        return { kind: 'list', names: [...this.defs.values()].filter((d) => (d.table ?? false) === table).map((d) => d.name).sort() };
      }
      case 'describeStream':
        return { kind: 'describe', stream: this.need(s.name, false) };
      case 'describeTable':
        return { kind: 'describe', stream: this.need(s.name, true) };
      default:
        throw new StreamplugError('E_SQL_SEMANTIC', 'expected a stream or table statement (CREATE/DROP/SHOW/DESCRIBE STREAM|TABLE) but found SELECT; create a rule for SELECT', {});
    }
  }

  private need(name: string, table: boolean): StreamDef {
    const d = this.defs.get(name);
    if (!d || (d.table ?? false) !== table) {
      const what = table ? 'table' : 'stream';
      throw new StreamplugError('E_NOT_FOUND', `${what} ${name} does not exist; SHOW ${what.toUpperCase()}S lists the defined ones`, { [what]: name });
    }
    return d;
  }
}
