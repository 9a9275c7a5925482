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
export function formatStreamSql(name: string, fields: StreamField[] | null, options: Record<string, string>): string {
  const cols = fields ? fields.map((f) => `${quoteName(f.name)} ${formatFieldType(f.type)}`).join(', ') : '';
  const opts = Object.entries(options).map(([k, v]) => `${k}=${quoteString(v)}`).join(', ');
  return `CREATE STREAM ${quoteName(name)} (${cols})${opts ? ` WITH (${opts})` : ''}`;
}

/** Parses `CREATE STREAM …` into a definition, filling eKuiper's defaults (TYPE mqtt, FORMAT json). */
export function parseStreamDef(sql: string): StreamDef {
  const s = parseStatement(sql);
  if (s.kind !== 'createStream')
    throw new StreamplugError('E_SQL_SEMANTIC', `expected a CREATE STREAM statement but found ${s.kind}; pass the stream DDL`, { found: s.kind });
  const options = { TYPE: 'mqtt', FORMAT: 'json', ...s.options };
  if (s.fields) {
    const seen = new Set<string>();
    for (const f of s.fields) {
      if (seen.has(f.name))
        throw new StreamplugError('E_SQL_SEMANTIC', `stream ${s.name} declares field ${f.name} twice; expected unique field names`, { field: f.name });
      seen.add(f.name);
    }
  }
  return { name: s.name, fields: s.fields, options, sql: formatStreamSql(s.name, s.fields, options) };
}

export type CatalogResult =
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
        if (this.defs.has(s.name))
          throw new StreamplugError('E_CONFLICT', `stream ${s.name} already exists; drop it first or pick another name`, { stream: s.name });
        const def = parseStreamDef(sql);
        this.defs.set(def.name, def);
        return { kind: 'created', stream: def, message: `Stream ${def.name} is created.` };
      }
      case 'dropStream':
        this.need(s.name);
        this.defs.delete(s.name);
        return { kind: 'dropped', name: s.name, message: `Stream ${s.name} is dropped.` };
      case 'showStreams':
        return { kind: 'list', names: [...this.defs.keys()].sort() };
      case 'describeStream':
        return { kind: 'describe', stream: this.need(s.name) };
      default:
        throw new StreamplugError('E_SQL_SEMANTIC', 'expected a stream statement (CREATE/DROP/SHOW/DESCRIBE STREAM) but found SELECT; create a rule for SELECT', {});
    }
  }

  private need(name: string): StreamDef {
    const d = this.defs.get(name);
    if (!d) throw new StreamplugError('E_NOT_FOUND', `stream ${name} does not exist; SHOW STREAMS lists the defined ones`, { stream: name });
    return d;
  }
}
