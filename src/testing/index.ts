/**
 * `streamplug/testing`: load a plugin file and call it without a host, from a `node:test` file or
 * the `streamplug call | run-source | feed-sink` commands. Loading goes through the same pre-load
 * check and registry (src/plugins) as the host, so a file refused here is refused there, and a
 * function behaves here as it does in a rule.
 *
 *   import { loadPlugin } from 'streamplug/testing';
 *   const plugin = await loadPlugin('build/plugins/celsius.so');
 *   assert.equal(plugin.call('celsius', 212), 212);
 *   await plugin.close();
 */
import { StreamplugError } from '../errors.js';
import { PluginRegistry } from '../plugins/registry.js';
import { scalarAt } from '../plugins/columns.js';
import type { PluginLogLine } from '../plugins/native-addon.js';
import type { Column, LoadedPluginInfo, PluginFunction, Scalar, ValueType } from '../plugins/types.js';
import { createSink, createSource } from '../connectors/registry.js';
import type { Props, Row } from '../connectors/types.js';

export type { Column, Scalar, LoadedPluginInfo, PluginLogLine };

export interface LoadOptions {
  /** Plugin log lines (host->log). Default: one line each on stderr. */
  onLog?: (line: PluginLogLine) => void;
}

type Concrete = Exclude<ValueType, 'any'>;

/** The type a column gets for `values` when the function declares `declared`. */
function columnType(declared: ValueType, values: Scalar[], fn: string, arg: number): Concrete {
  if (declared !== 'any') return declared;
  const seen = new Set(values.filter((v) => v !== null).map((v) =>
    typeof v === 'number' ? 'float64' : typeof v === 'bigint' ? 'int64' : typeof v === 'boolean' ? 'bool' : typeof v === 'string' ? 'string' : 'bytes'));
  if (seen.size > 1) {
    throw new StreamplugError('E_ARG_TYPE', `${fn}: argument ${arg + 1} has values of types ${[...seen].join(' and ')} across the rows; one column holds one type: make them agree`);
  }
  return ([...seen][0] as Concrete | undefined) ?? 'float64';
}

/** Rows (one array of arguments each) as columns typed by the function's declared argument types. */
export function columnsFromRows(fn: PluginFunction, rows: readonly Scalar[][]): Column[] {
  const nargs = rows.length ? rows[0].length : 0;
  rows.forEach((r, i) => {
    if (r.length !== nargs) throw new StreamplugError('E_BAD_REQUEST', `row ${i + 1} has ${r.length} arguments, row 1 has ${nargs}; every row needs the same arguments`);
  });
  const cols: Column[] = [];
  for (let a = 0; a < nargs; a++) {
    const values = rows.map((r) => r[a]);
    const declared = fn.argTypes[Math.min(a, fn.argTypes.length - 1)] ?? 'any';
    const type = columnType(declared, values, fn.name, a);
    const nulls = values.some((v) => v === null) ? Uint8Array.from(values, (v) => (v === null ? 1 : 0)) : undefined;
    const bad = (v: Scalar) => new StreamplugError('E_ARG_TYPE', `${fn.name}: argument ${a + 1} is ${type}, got ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)}; pass a ${type}`);
    switch (type) {
      case 'float64':
        cols.push({ type, nulls, values: Float64Array.from(values, (v) => { if (v !== null && typeof v !== 'number' && typeof v !== 'bigint') throw bad(v); return v === null ? 0 : Number(v); }) });
        break;
      case 'int64':
        cols.push({ type, nulls, values: BigInt64Array.from(values, (v) => {
          if (v === null) return 0n;
          if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return BigInt(v);
          throw bad(v);
        }) });
        break;
      case 'bool':
        cols.push({ type, nulls, values: Uint8Array.from(values, (v) => { if (v !== null && typeof v !== 'boolean') throw bad(v); return v ? 1 : 0; }) });
        break;
      case 'string':
        cols.push({ type, nulls, values: values.map((v) => { if (v !== null && typeof v !== 'string') throw bad(v); return v ?? ''; }) });
        break;
      case 'bytes':
        cols.push({ type, nulls, values: values.map((v) => (v === null ? new Uint8Array(0) : v instanceof Uint8Array ? v : Buffer.from(String(v)))) });
        break;
    }
  }
  return cols;
}

export class TestPlugin {
  constructor(private readonly registry: PluginRegistry, readonly info: LoadedPluginInfo) {}

  private fn(name: string): PluginFunction {
    const fn = this.registry.getFunction(name);
    if (!fn || fn.plugin !== this.info.name) {
      throw new StreamplugError('E_UNKNOWN_FUNCTION', `plugin ${this.info.name} provides no function ${name} (it provides: ${this.info.functions.join(', ') || 'none'})`, { function: name });
    }
    return fn;
  }

  /** One call with one row of arguments; returns the result value (a bigint for int64). */
  call(fn: string, ...args: Scalar[]): Scalar {
    return this.callRows(fn, [args])[0];
  }

  /**
   * One batch: `rows[i]` holds the arguments of row i. A scalar function returns one value per row;
   * an aggregate returns one value, over all the rows. Errors: StreamplugError (E_FUNCTION_FAILED
   * with the plugin's message when it fails the call).
   */
  callRows(name: string, rows: readonly Scalar[][]): Scalar[] {
    const fn = this.fn(name);
    const cols = columnsFromRows(fn, rows);
    fn.validate(cols.map((c) => ({ type: c.type })));
    const instance = fn.instantiate(`test:${name}`);
    try {
      if (fn.kind === 'aggregate') {
        return [scalarAt(instance.callGroups(cols, rows.length, Uint32Array.of(0, rows.length)), 0)];
      }
      const out = instance.callBatch(cols, rows.length);
      return rows.map((_, i) => scalarAt(out, i));
    } finally {
      instance.close();
    }
  }

  /** Source and sink types the plugin registered. */
  get connectors(): { sources: string[]; sinks: string[] } {
    return this.registry.connectors(this.info.name);
  }

  private connectorType(kind: 'source' | 'sink', type?: string): string {
    const have = kind === 'source' ? this.connectors.sources : this.connectors.sinks;
    if (type !== undefined) {
      if (!have.includes(type)) throw new StreamplugError('E_NOT_FOUND', `plugin ${this.info.name} has no ${kind} ${type} (it has: ${have.join(', ') || 'none'})`);
      return type;
    }
    if (have.length !== 1) {
      throw new StreamplugError('E_USAGE', `plugin ${this.info.name} has ${have.length} ${kind}s (${have.join(', ') || 'none'}); name one with --type`);
    }
    return have[0];
  }

  /**
   * Starts the plugin's source with `config`, collects the first `rows` rows it emits (or what it
   * emitted when `timeoutMs` passes), stops it and returns them.
   */
  async runSource(config: Props, rows: number, opts: { type?: string; datasource?: string; timeoutMs?: number } = {}): Promise<Row[]> {
    const source = createSource(this.connectorType('source', opts.type), opts.datasource ?? '', config, {});
    const got: Row[] = [];
    let done!: () => void;
    const enough = new Promise<void>((resolve) => { done = resolve; });
    const timer = setTimeout(() => done(), opts.timeoutMs ?? 10_000);
    try {
      await source.start((batch) => {
        for (const r of batch) if (got.length < rows) got.push(r);
        if (got.length >= rows) done();
      }, () => {}, undefined);
      if (rows > 0) await enough;
    } finally {
      clearTimeout(timer);
      await source.stop();
    }
    return got;
  }

  /** Opens the plugin's sink with `config`, delivers `rows` as one batch, closes it. */
  async feedSink(config: Props, rows: Row[], opts: { type?: string } = {}): Promise<void> {
    const sink = createSink(this.connectorType('sink', opts.type), config, {});
    await sink.open();
    try {
      if (rows.length) await sink.collect(rows);
    } finally {
      await sink.close();
    }
  }

  /** Unloads the plugin (open instances are closed first). */
  async close(): Promise<void> {
    await this.registry.unload(this.info.name, { force: true });
  }
}

/** Checks and loads `file` (.so or .node) as the host would. Throws StreamplugError on refusal. */
export async function loadPlugin(file: string, opts: LoadOptions = {}): Promise<TestPlugin> {
  const registry = new PluginRegistry({ onLog: opts.onLog });
  const info = await registry.load(file);
  return new TestPlugin(registry, info);
}

/** A value as JSON: int64 results (bigint) as numbers when exact, else as strings; bytes as base64. */
export function toJSONValue(v: Scalar): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return v;
}
