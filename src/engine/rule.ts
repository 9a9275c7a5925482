/**
 * Compiles a rule's SELECT into a plan (filter → window → aggregate → having → project → order/limit)
 * and runs it over pushed batches. Every stage is column-wise over the whole batch or window.
 */
import { performance } from 'node:perf_hooks';
import { StreamplugError, isStreamplugError } from '../errors.js';
import type { FunctionInstance, PluginFunction } from '../plugins/types.js';
import type { Expr, SelectStatement } from './ast.js';
import type { Row } from './builtins.js';
import { compileExpr, containsAggregate, semanticError, subFrame, type Eval, type Frame, type FunctionResolver, type Scope } from './expr.js';
import { parseStatement } from './parser.js';
import type { StreamDef } from './streams.js';
import { compare, isNull, stableKey, truthy } from './values.js';
import { createWindow, type Emission, type WindowBuffer } from './windows.js';
import { DEFAULT_MAX_WINDOW_ROWS, limitWindow } from './window-limit.js';
import { JournaledWindow, type WindowSnapshot } from './window-checkpoint.js';

export interface CompileOptions {
  streams: (name: string) => StreamDef | undefined;
  functions?: FunctionResolver;
  /** Called with the rows of each result (one call per window, or per pushed batch without a window). */
  onResult?: (rows: Row[]) => void;
  /** Called when a stage fails on a batch; the batch is dropped and counted, the rule keeps running. */
  onError?: (err: StreamplugError, operator: string) => void;
  /** Processing-time clock used when push() gets no ts; default Date.now. */
  now?: () => number;
  /** Most rows a time window holds (window-limit.ts); default DEFAULT_MAX_WINDOW_ROWS. */
  maxWindowRows?: number;
}

export interface OperatorMetrics {
  name: 'source' | 'filter' | 'window' | 'aggregate' | 'having' | 'project' | 'order';
  recordsIn: number;
  recordsOut: number;
  exceptions: number;
  lastError?: { code: string; message: string; at: number };
  /** Microseconds spent in the last call, and the total over all calls. */
  lastLatencyUs: number;
  totalLatencyUs: number;
  calls: number;
}

export interface RuleRuntime {
  readonly id: string;
  readonly sql: string;
  /** The stream the rule reads (FROM). */
  readonly stream: string;
  readonly statement: SelectStatement;
  /** True when results come per window (GROUP BY has a window). */
  readonly windowed: boolean;
  onResult: ((rows: Row[]) => void) | undefined;
  /** Feeds rows that arrived at processing time ts (default: the clock). Windows that ended by ts emit first. */
  push(rows: Row[], ts?: number): void;
  /** Moves processing time to now, emitting every time window that ended by then. */
  tick(now: number): void;
  /** When tick() next has something to do, if anything; undefined when only rows can trigger output. */
  nextDeadline(): number | undefined;
  metrics(): OperatorMetrics[];
  /**
   * Call sites whose plugin function instance can export its state, as `<function>#<n>`: the n-th
   * call (1-based, in compile order) of that function, lower-cased, in this rule's SQL. The same SQL
   * gives the same ids in every process, so a checkpoint finds its call sites again.
   */
  readonly stateSites: readonly string[];
  /** Plugin function state per call site, for a checkpoint. Throws what an instance throws (closed, unloaded). */
  exportState(): RuleStateSnapshot;
  /**
   * Puts a snapshot's state back into the matching call sites (they continue where it stopped);
   * returns the sites it restored and the snapshot's ids that match none (ignored). Built-in
   * aggregates and rows buffered in open windows are not part of the state.
   */
  importState(state: Readonly<Record<string, unknown>>): { restored: string[]; ignored: string[] };
  /** The rows the window holds (window-checkpoint.ts), or undefined without a window. */
  exportWindow(): WindowSnapshot | undefined;
  /** Changes with every row the window takes or lets go: an equal version needs no new checkpoint. */
  windowVersion(): number;
  /** Puts checkpointed window rows back into the (fresh) window; returns how many. */
  importWindow(s: WindowSnapshot): number;
  readonly closed: boolean;
  /** Closes the plugin function instances and drops buffered rows. Idempotent. */
  close(): void;
}

/** Call-site id -> that instance's exported state (key -> bytes). */
export type RuleStateSnapshot = Record<string, Record<string, Uint8Array>>;

interface Site {
  id: string;
  instance: FunctionInstance;
}

/** The same function, recording each instance it makes under its call-site id. */
function recordingSites(f: PluginFunction, sites: Site[]): PluginFunction {
  return {
    name: f.name,
    plugin: f.plugin,
    kind: f.kind,
    minArgs: f.minArgs,
    maxArgs: f.maxArgs,
    argTypes: f.argTypes,
    literalArgs: f.literalArgs,
    resultType: f.resultType,
    stateful: f.stateful,
    validate: (args) => f.validate(args),
    instantiate: (ruleId) => {
      const instance = f.instantiate(ruleId);
      const name = f.name.toLowerCase();
      const n = sites.filter((s) => s.id.startsWith(`${name}#`)).length + 1;
      sites.push({ id: `${name}#${n}`, instance });
      return instance;
    },
  };
}

interface Output {
  name: string;
  star: boolean;
  ev?: Eval;
}

export function compileRule(id: string, sql: string, opts: CompileOptions): RuleRuntime {
  const stmt = parseStatement(sql);
  if (stmt.kind !== 'select')
    throw new StreamplugError('E_SQL_SEMANTIC', `a rule needs a SELECT statement but found ${describeKind(stmt.kind)}; stream statements go to the stream API`, { found: stmt.kind });
  const def = opts.streams(stmt.from.name);
  if (!def) throw semanticError(`stream ${stmt.from.name} is not defined; create it with CREATE STREAM first`, stmt.from.pos);
  const instances: FunctionInstance[] = [];
  const sites: Site[] = [];
  const resolver = opts.functions;
  const functions = resolver && {
    getFunction: (name: string) => {
      const f = resolver.getFunction(name);
      return f && recordingSites(f, sites);
    },
  };
  try {
    return new Rule(id, sql, stmt, def, { ...opts, functions }, instances, sites);
  } catch (e) {
    for (const i of instances) i.close();
    throw e;
  }
}

function describeKind(k: string): string {
  return { createStream: 'CREATE STREAM', dropStream: 'DROP STREAM', showStreams: 'SHOW STREAMS', describeStream: 'DESCRIBE STREAM' }[k] ?? k;
}

function defaultName(e: Expr, k: number): string {
  if (e.kind === 'field' || e.kind === 'member') return e.name;
  if (e.kind === 'call') return e.name;
  return `kuiper_field_${k}`;
}

class Rule implements RuleRuntime {
  readonly stream: string;
  readonly windowed: boolean;
  onResult: ((rows: Row[]) => void) | undefined;
  closed = false;
  private readonly where?: Eval;
  private readonly keys: Eval[];
  private readonly aggregate: boolean;
  private readonly having?: Eval;
  private readonly outputs: Output[];
  private readonly order: { ev: Eval; desc: boolean }[];
  private readonly limit?: number;
  private readonly window?: WindowBuffer;
  private readonly journal?: JournaledWindow;
  private readonly ops = new Map<OperatorMetrics['name'], OperatorMetrics>();
  private readonly clock: () => number;

  constructor(
    readonly id: string,
    readonly sql: string,
    readonly statement: SelectStatement,
    def: StreamDef,
    private readonly opts: CompileOptions,
    private readonly instances: FunctionInstance[],
    private readonly sites: Site[],
  ) {
    this.stream = def.name;
    this.onResult = opts.onResult;
    this.clock = opts.now ?? Date.now;
    const s = statement;
    const base: Scope = {
      ruleId: id,
      stream: def.name,
      alias: s.from.alias,
      schema: def.fields,
      functions: opts.functions,
      instances,
      clause: 'WHERE',
      aggregatesAllowed: false,
    };
    if (s.where) this.where = compileExpr(s.where, base);
    this.keys = s.groupBy.map((g) => compileExpr(g, { ...base, clause: 'GROUP BY' }));
    const usesAgg =
      s.fields.some((f) => containsAggregate(f.expr, base)) ||
      (s.having !== undefined && containsAggregate(s.having, base)) ||
      s.orderBy.some((o) => containsAggregate(o.expr, base));
    this.aggregate = usesAgg || s.groupBy.length > 0 || s.having !== undefined;
    if (s.groupBy.length > 0 && !s.window)
      throw semanticError(`GROUP BY needs a window to know when a group is complete; add TUMBLINGWINDOW(ss, 10) or another window to GROUP BY`, s.from.pos);
    this.windowed = s.window !== undefined;
    if (s.window) {
      const w = s.window;
      if (w.type === 'hopping' && w.hop > w.size) throw semanticError(`HOPPINGWINDOW hop ${w.hop} is larger than its size ${w.size}; rows would fall between windows — use hop <= size`, w.pos);
      if (w.type === 'count' && w.hop !== undefined && w.hop > w.size) throw semanticError(`COUNTWINDOW hop ${w.hop} is larger than its count ${w.size}; use hop <= count`, w.pos);
      if (w.type === 'session' && w.timeout > w.maxDuration) throw semanticError(`SESSIONWINDOW(unit, maxDuration, timeout): timeout ${w.timeout} exceeds maxDuration ${w.maxDuration}; eKuiper's order is max duration first, then timeout`, w.pos);
      const max = opts.maxWindowRows ?? DEFAULT_MAX_WINDOW_ROWS;
      if (w.type === 'count') {
        if (w.size > max) throw semanticError(`COUNTWINDOW(${w.size}) holds more rows than maxWindowRows (${max}); use a smaller count or raise the rule option maxWindowRows`, w.pos);
        this.journal = new JournaledWindow(createWindow(w));
        this.window = this.journal;
      } else {
        this.journal = new JournaledWindow(createWindow(w));
        this.window = limitWindow(this.journal, max, (err) => this.refuseRows(err));
      }
    }

    const selScope: Scope = { ...base, clause: 'SELECT', aggregatesAllowed: this.aggregate };
    const names = new Set<string>();
    this.outputs = s.fields.map((f, k) => {
      if (f.expr.kind === 'star') return { name: '*', star: true };
      const name = f.alias ?? defaultName(f.expr, k);
      if (names.has(name)) throw semanticError(`two select fields are named ${name}; give one an alias with AS`, f.expr.pos);
      names.add(name);
      return { name, star: false, ev: compileExpr(f.expr, selScope) };
    });
    const aliasExprs = new Map<string, Expr>();
    const aliasColumns = new Map<string, number>();
    s.fields.forEach((f, k) => {
      if (f.alias) {
        aliasExprs.set(f.alias, f.expr);
        aliasColumns.set(f.alias, k);
      }
    });
    if (s.having) this.having = compileExpr(s.having, { ...base, clause: 'HAVING', aggregatesAllowed: true, aliasExprs });
    this.order = s.orderBy.map((o) => ({ ev: compileExpr(o.expr, { ...base, clause: 'ORDER BY', aggregatesAllowed: this.aggregate, aliasColumns }), desc: o.desc }));
    this.limit = s.limit;

    const opNames: OperatorMetrics['name'][] = ['source'];
    if (this.where) opNames.push('filter');
    if (this.window) opNames.push('window');
    if (this.aggregate) opNames.push('aggregate');
    if (this.having) opNames.push('having');
    opNames.push('project');
    if (this.order.length || this.limit !== undefined) opNames.push('order');
    for (const name of opNames) this.ops.set(name, { name, recordsIn: 0, recordsOut: 0, exceptions: 0, lastLatencyUs: 0, totalLatencyUs: 0, calls: 0 });
  }

  // ---- running

  push(rows: Row[], ts?: number): void {
    this.ensureOpen();
    const now = ts ?? this.clock();
    const src = this.ops.get('source')!;
    src.recordsIn += rows.length;
    src.recordsOut += rows.length;
    src.calls++;
    let kept = rows;
    if (this.where) {
      const where = this.where;
      const r = this.stage('filter', rows.length, () => {
        const mask = where({ rows, n: rows.length, now });
        return rows.filter((_, i) => truthy(mask[i]));
      }, (o) => o.length);
      if (!r) return;
      kept = r;
    }
    if (!this.window) {
      if (kept.length) this.evaluate(kept, undefined, now);
      return;
    }
    const win = this.window;
    const emissions = this.stage('window', kept.length, () => win.push(kept, now), (e) => e.length);
    if (emissions) this.emitAll(emissions, now);
  }

  tick(now: number): void {
    this.ensureOpen();
    if (!this.window) return;
    const win = this.window;
    const emissions = this.stage('window', 0, () => win.advance(now), (e) => e.length);
    if (emissions) this.emitAll(emissions, now);
  }

  nextDeadline(): number | undefined {
    return this.window?.nextDeadline();
  }

  private emitAll(emissions: Emission[], now: number): void {
    for (const e of emissions) this.evaluate(e.rows, { start: e.start, end: e.end }, now);
  }

  /** One batch or one window through aggregate → having → project → order. */
  private evaluate(rows: Row[], window: Frame['window'], now: number): void {
    let frame: Frame | undefined = { rows, n: rows.length, window, now };
    if (this.aggregate) {
      const rowFrame = frame;
      frame = this.stage('aggregate', rows.length, () => this.group(rowFrame), (f) => f.n);
      if (!frame) return;
    }
    if (this.having) {
      const having = this.having;
      const f0 = frame;
      frame = this.stage('having', f0.n, () => {
        const mask = having(f0);
        const keep: number[] = [];
        mask.forEach((m, i) => truthy(m) && keep.push(i));
        return keep.length === f0.n ? f0 : subFrame(f0, keep);
      }, (f) => f.n);
      if (!frame || frame.n === 0) return;
    }
    const f1 = frame;
    const cols = this.stage('project', f1.n, () => this.outputs.map((o) => (o.ev ? o.ev(f1) : [])), () => f1.n);
    if (!cols) return;
    let order = Array.from({ length: f1.n }, (_, i) => i);
    if (this.order.length || this.limit !== undefined) {
      const sorted = this.stage('order', f1.n, () => this.sort({ ...f1, projected: cols }, order), (o) => o.length);
      if (!sorted) return;
      order = sorted;
    }
    const out: Row[] = order.map((i) => {
      const o: Row = {};
      this.outputs.forEach((spec, k) => {
        if (spec.star) Object.assign(o, f1.rows[i]);
        else o[spec.name] = cols[k][i] ?? null;
      });
      return o;
    });
    if (out.length && this.onResult) this.onResult(out);
  }

  /** Orders rows by group: with no GROUP BY keys the whole window is one group, without a window every row is. */
  private group(f: Frame): Frame {
    const offsets: number[] = [0];
    let inner: Row[];
    if (this.keys.length) {
      const keyCols = this.keys.map((k) => k(f));
      const groups = new Map<string, Row[]>();
      for (let i = 0; i < f.n; i++) {
        const key = keyCols.map((c) => stableKey(c[i])).join('\u0000');
        let g = groups.get(key);
        if (!g) groups.set(key, (g = []));
        g.push(f.rows[i]);
      }
      inner = [];
      for (const g of groups.values()) {
        inner.push(...g);
        offsets.push(inner.length);
      }
    } else if (this.window) {
      inner = f.rows;
      if (f.n) offsets.push(f.n);
    } else {
      inner = f.rows;
      for (let i = 1; i <= f.n; i++) offsets.push(i);
    }
    const reps = offsets.slice(0, -1).map((o) => inner[o]);
    return { rows: reps, n: reps.length, group: { rows: inner, offsets: Uint32Array.from(offsets) }, window: f.window, now: f.now };
  }

  private sort(f: Frame, idx: number[]): number[] {
    const keys = this.order.map((o) => ({ vals: o.ev(f), desc: o.desc }));
    const sorted = keys.length
      ? [...idx].sort((a, b) => {
          for (const k of keys) {
            const x = k.vals[a];
            const y = k.vals[b];
            // nulls sort first ascending, last descending
            let c = isNull(x) ? (isNull(y) ? 0 : -1) : isNull(y) ? 1 : (compare(x, y) ?? 0);
            if (k.desc) c = -c;
            if (c !== 0) return c;
          }
          return a - b;
        })
      : idx;
    return this.limit !== undefined ? sorted.slice(0, this.limit) : sorted;
  }

  /** Runs one stage, timing it and counting records; on failure counts the exception and returns undefined. */
  /** Rows a full window refused: errors of the window operator. */
  private refuseRows(err: StreamplugError): void {
    const m = this.ops.get('window')!;
    m.exceptions++;
    m.lastError = { code: err.code, message: err.message, at: Date.now() };
    this.opts.onError?.(err, 'window');
  }

  private stage<T>(name: OperatorMetrics['name'], nIn: number, fn: () => T, nOut: (r: T) => number): T | undefined {
    const m = this.ops.get(name)!;
    m.recordsIn += nIn;
    m.calls++;
    const t0 = performance.now();
    try {
      const r = fn();
      m.recordsOut += nOut(r);
      return r;
    } catch (e) {
      const err = isStreamplugError(e) ? e : new StreamplugError('E_EVAL', `rule ${this.id}, ${name}: ${(e as Error)?.message ?? String(e)}`, {});
      m.exceptions++;
      m.lastError = { code: err.code, message: err.message, at: Date.now() };
      this.opts.onError?.(err, name);
      return undefined;
    } finally {
      const us = Math.round((performance.now() - t0) * 1000);
      m.lastLatencyUs = us;
      m.totalLatencyUs += us;
    }
  }

  get stateSites(): string[] {
    return this.sites.filter((s) => s.instance.exportState).map((s) => s.id);
  }

  exportWindow(): WindowSnapshot | undefined {
    return this.journal?.snapshot();
  }

  windowVersion(): number {
    return this.journal?.version ?? 0;
  }

  importWindow(s: WindowSnapshot): number {
    this.ensureOpen();
    return this.journal?.restore(s) ?? 0;
  }

  exportState(): RuleStateSnapshot {
    this.ensureOpen();
    const out: RuleStateSnapshot = {};
    for (const s of this.sites) if (s.instance.exportState) out[s.id] = s.instance.exportState();
    return out;
  }

  importState(state: Readonly<Record<string, unknown>>): { restored: string[]; ignored: string[] } {
    this.ensureOpen();
    const restored: string[] = [];
    const ignored: string[] = [];
    for (const [id, value] of Object.entries(state)) {
      const site = this.sites.find((s) => s.id === id);
      if (!site?.instance.importState) {
        ignored.push(id);
        continue;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every((v) => v instanceof Uint8Array))
        throw new StreamplugError('E_BAD_REQUEST', `rule ${this.id}: the state of call site ${id} must map keys to bytes (Uint8Array), as exportState() returns; drop the checkpoint`, { rule: this.id, site: id });
      try {
        site.instance.importState(value as Record<string, Uint8Array>);
      } catch (e) {
        if (isStreamplugError(e)) throw new StreamplugError(e.code, `rule ${this.id}, call site ${id}: ${e.message}`, { ...e.details, rule: this.id, site: id });
        throw e;
      }
      restored.push(id);
    }
    return { restored, ignored };
  }

  metrics(): OperatorMetrics[] {
    return [...this.ops.values()].map((m) => ({ ...m, lastError: m.lastError && { ...m.lastError } }));
  }

  private ensureOpen(): void {
    if (this.closed) throw new StreamplugError('E_RULE_CLOSED', `rule ${this.id} is closed; compile it again to run it`, { rule: this.id });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.window?.clear();
    for (const i of this.instances) {
      try {
        i.close();
      } catch {
        /* closing must not throw: the rule is gone either way */
      }
    }
  }
}
