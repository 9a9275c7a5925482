/**
 * The rows behind each table (CREATE TABLE), shared by every rule that joins it.
 *
 * - TYPE="file": DATASOURCE is a JSON file (an array of objects, or one object per line) inside the
 *   data directory. It is read again when a rule joining it starts (eKuiper's file source reads the
 *   file when the rule starts), so editing the file and restarting the rule refreshes the table.
 * - TYPE="memory": DATASOURCE is a topic of the in-process memory bus; rules with a memory sink fill
 *   it. A lookup table keeps the latest row per KEY (eKuiper's memory lookup store); a scan table
 *   keeps the last RETAIN_SIZE rows (default 1, as eKuiper).
 *
 * Rows are decoded with the table's schema like a stream's; a row that does not fit is skipped and logged.
 * Other source types cannot back a table yet: CREATE TABLE refuses them.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { StreamplugError } from '../errors.js';
import { tableKind, type StreamDef, type TableSource } from '../engine/index.js';
import { coerceRow } from '../engine/schema.js';
import { stableKey } from '../engine/values.js';
import { memoryBus, type MemoryBus } from '../connectors/index.js';
import type { Row } from '../connectors/index.js';

export const TABLE_TYPES = ['file', 'memory'];

/** eKuiper's RETAIN_SIZE defaults: a file table keeps all of its rows, other scan tables one. */
const MAX_RETAIN = 9999;

/** Refuses a table definition no data source here can serve; returns the file path for a file table. */
export function checkTableDef(def: StreamDef, dataDir: string): string | undefined {
  const type = (def.options.TYPE ?? 'file').toLowerCase();
  if (!TABLE_TYPES.includes(type))
    throw new StreamplugError('E_CONNECTOR_CONFIG', `table ${def.name}: TYPE "${def.options.TYPE}" cannot back a table here (have: ${TABLE_TYPES.join(', ')}); use TYPE="file" with a JSON file or TYPE="memory" with a topic`, { table: def.name, type: def.options.TYPE });
  const ds = def.options.DATASOURCE;
  if (!ds) throw new StreamplugError('E_CONNECTOR_CONFIG', `table ${def.name} names no DATASOURCE; give the JSON file (TYPE="file") or the memory topic (TYPE="memory")`, { table: def.name });
  if ((def.options.FORMAT ?? 'json').toLowerCase() !== 'json')
    throw new StreamplugError('E_CONNECTOR_CONFIG', `table ${def.name}: FORMAT "${def.options.FORMAT}" is not supported for tables; use FORMAT="json"`, { table: def.name });
  if (type !== 'file') return undefined;
  // a table must not read files outside the data directory (the REST API would otherwise read any file)
  const root = path.resolve(dataDir);
  const file = path.resolve(root, ds);
  if (file !== root && !file.startsWith(root + path.sep))
    throw new StreamplugError('E_CONNECTOR_CONFIG', `table ${def.name}: DATASOURCE "${ds}" is outside the data directory ${root}; put the file under it and name it relative to it`, { table: def.name, datasource: ds });
  return file;
}

export class TableData implements TableSource {
  private data: Row[] = [];
  /** Lookup tables: KEY value -> row. */
  private byKey = new Map<string, Row>();
  private unsubscribe?: () => void;
  private readonly kind: 'scan' | 'lookup';
  private readonly retain: number;
  private readonly file?: string;
  private readonly root: string;

  constructor(
    readonly def: StreamDef,
    dataDir: string,
    private readonly log?: Logger,
    private readonly bus: MemoryBus = memoryBus,
  ) {
    this.file = checkTableDef(def, dataDir);
    this.root = path.resolve(dataDir);
    this.kind = tableKind(def);
    const retain = def.options.RETAIN_SIZE === undefined ? 0 : Number(def.options.RETAIN_SIZE);
    this.retain = retain > 0 ? retain : this.file ? MAX_RETAIN : 1;
  }

  /**
   * Memory tables listen from their creation on, so rows published before a rule starts are there.
   * A file table is read now if it can be (DESCRIBE shows its rows); a missing file fails the rule
   * that joins it, not the definition (the file may come later, as in eKuiper).
   */
  open(): void {
    if (this.file) {
      try {
        this.refresh();
      } catch (e) {
        this.log?.info({ table: this.def.name, err: (e as Error).message }, `table ${this.def.name}: file not readable yet`);
      }
      return;
    }
    if (this.unsubscribe) return;
    this.unsubscribe = this.bus.subscribe(this.def.options.DATASOURCE, (rows) => this.add(rows));
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** A rule joining a file table starts: read the file again. Throws E_CONNECTOR_CONFIG naming the file. */
  refresh(): void {
    if (!this.file) return;
    let text: string;
    try {
      // a link inside the data directory must not lead out of it either
      const real = fs.realpathSync(this.file);
      const root = fs.realpathSync(this.root);
      if (real !== root && !real.startsWith(root + path.sep))
        throw new StreamplugError('E_CONNECTOR_CONFIG', `table ${this.def.name}: ${this.file} leads to ${real}, outside the data directory; put the file itself under ${root}`, { table: this.def.name, file: this.file });
      text = fs.readFileSync(real, 'utf8');
    } catch (e) {
      if (e instanceof StreamplugError) throw e;
      throw new StreamplugError('E_CONNECTOR_CONFIG', `table ${this.def.name}: cannot read ${this.file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); create the file (a JSON array of objects) or fix DATASOURCE`, { table: this.def.name, file: this.file });
    }
    let rows: unknown;
    try {
      const t = text.trim();
      rows = t.startsWith('[') ? JSON.parse(t) : t.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    } catch (e) {
      throw new StreamplugError('E_CONNECTOR_CONFIG', `table ${this.def.name}: ${this.file} is not JSON (${(e as Error).message}); expected an array of objects or one object per line`, { table: this.def.name, file: this.file });
    }
    if (!Array.isArray(rows) || !rows.every((r) => r && typeof r === 'object' && !Array.isArray(r)))
      throw new StreamplugError('E_CONNECTOR_CONFIG', `table ${this.def.name}: ${this.file} must hold JSON objects (an array of them, or one per line)`, { table: this.def.name, file: this.file });
    this.data = [];
    this.byKey.clear();
    this.add(rows as Row[]);
  }

  private add(rows: Row[]): void {
    const key = this.def.options.KEY;
    for (const raw of rows) {
      let row = raw;
      if (this.def.fields) {
        try {
          row = coerceRow(raw, this.def.fields);
        } catch (e) {
          this.log?.warn({ table: this.def.name, err: (e as Error).message }, `table ${this.def.name}: a row that does not fit its schema is skipped`);
          continue;
        }
      }
      if (this.kind === 'lookup' && key) {
        const k = row[key];
        if (k === undefined || k === null) {
          this.log?.warn({ table: this.def.name, key }, `table ${this.def.name}: a row without its KEY ${key} is skipped`);
          continue;
        }
        this.byKey.set(stableKey(k), row);
      } else {
        this.data.push(row);
        if (this.data.length > this.retain) this.data.splice(0, this.data.length - this.retain);
      }
    }
  }

  rows(): Row[] {
    return this.kind === 'lookup' ? [...this.byKey.values()] : this.data;
  }

  /** Only the lookup by the KEY alone uses the index; other fields scan the rows (still equality). */
  lookup(keys: string[], values: unknown[]): Row[] {
    const key = this.def.options.KEY;
    if (this.kind === 'lookup' && keys.length === 1 && keys[0] === key) {
      const r = this.byKey.get(stableKey(values[0]));
      return r ? [r] : [];
    }
    return this.rows().filter((r) => keys.every((k, i) => stableKey(r[k] ?? null) === stableKey(values[i])));
  }

  size(): number {
    return this.kind === 'lookup' ? this.byKey.size : this.data.length;
  }
}
