/**
 * Compiles a rule's SELECT into a plan (filter → window → aggregate → having → project → order/limit)
 * and runs it over pushed batches. Every stage is column-wise over the whole batch or window.
 */
import { performance } from 'node:perf_hooks';
import { StreamplugError, isStreamplugError } from '../errors.js';
import type { FunctionInstance, PluginFunction } from '../plugins/types.js';
import type { Expr, JoinClause, SelectStatement, StreamField } from './ast.js';
import type { Row } from './builtins.js';
import { AnalyticRegistry, ResultCols } from './analytic.js';
import { compileExpr, containsAggregate, fieldOf, semanticError, subFrame, usesHits, type Eval, type Frame, type FunctionResolver, type RuleInfo, type Scope } from './expr.js';
import { parseStatement } from './parser.js';
import { carryMeta, rowTime, setRowTime } from './meta.js';
import { coerceRow } from './schema.js';
import type { StreamDef } from './streams.js';
import { compare, isNull, plain, stableKey, toEpochMs, truthy } from './values.js';
import { createWindow, type Emission, type WindowBuffer } from './windows.js';
import { DEFAULT_MAX_WINDOW_ROWS, limitWindow } from './window-limit.js';
import { JournaledWindow, type WindowSnapshot } from './window-checkpoint.js';
import { joinSets, lookupJoin, scanLookup, type JoinStep, type LookupStep } from './join.js';
import { tableKind } from './streams.js';

/** What the host gives the engine for a table: its rows now, and optionally an indexed lookup by fields. */
export interface TableSource {
  rows(): Row[];
  lookup?(keys: string[], values: unknown[]): Row[];
}

/** The eKuiper rule options the engine itself honours. */
export interface EngineRuleOptions {
  /** Windows follow the rows' own time (the stream's TIMESTAMP field), with watermarks. */
  isEventTime?: boolean;
  /** Event time: how far (ms) a row may lag behind the newest one seen before it is late; default 1000. */
  lateTolerance?: number;
  /** A run-time error is also sent to the sinks as a row `{"error": "…"}`. */
  sendError?: boolean;
}

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
  /** eKuiper rule options: isEventTime, lateTolerance, sendError. */
  options?: EngineRuleOptions;
  /** The contents of the tables a rule joins (CREATE TABLE); a table without a source joins as empty. */
  tables?: (name: string) => TableSource | undefined;
}

export interface OperatorMetrics {
  name: 'source' | 'join' | 'filter' | 'window' | 'aggregate' | 'having' | 'project' | 'order';
  recordsIn: number;
  recordsOut: number;
  exceptions: number;
  lastError?: { code: string; message: string; at: number };
  /** Microseconds spent in the last call, and the total over all calls. */
  lastLatencyUs: number;
  totalLatencyUs: number;
  calls: number;
  /** Event time only (on window, or on source without a window): rows later than the watermark, dropped. */
  lateRows?: number;
}

export interface RuleRuntime {
  readonly id: string;
  readonly sql: string;
  /** The stream the rule reads (FROM). */
  readonly stream: string;
  /** Every stream the rule reads: FROM first, then the streams it joins (push(rows, ts, stream) names one). */
  readonly streams: readonly string[];
  /** The tables it joins (their rows come from CompileOptions.tables). */
  readonly tables: readonly string[];
  readonly statement: SelectStatement;
  /** True when results come per window (GROUP BY has a window). */
  readonly windowed: boolean;
  /**
   * False when the engine changes rows even for `SELECT *` (a schema decodes them, event time holds and
   * orders them, EXCEPT/REPLACE): such a rule must not take the encoded pass-through fast path.
   */
  readonly rowsPassUnchanged: boolean;
  onResult: ((rows: Row[]) => void) | undefined;
  /**
   * Feeds rows that arrived at processing time ts (default: the clock) from one of `streams` (default
   * the FROM stream). Windows that ended by ts emit first.
   */
  push(rows: Row[], ts?: number, stream?: string): void;
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
  importState(state: Readonly<Record<string, unknown>>): { restored: string[]; ignored: string[]; dropped: string[] };
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
  /** `* EXCEPT(…)` */
  except?: Set<string>;
  /** `* REPLACE(… AS name)` */
  replace?: { name: string; ev: Eval }[];
  /** A plain column without alias: a null it holds in the row is written, a missing one is not. */
  column?: string;
  /** unnest(arr): one output row per element. */
  unnest?: boolean;
  /** `AS name INVISIBLE`: computed for other fields, not written. */
  invisible?: boolean;
}

export function compileRule(id: string, sql: string, opts: CompileOptions): RuleRuntime {
  const stmt = parseStatement(sql);
  if (stmt.kind !== 'select')
    throw new StreamplugError('E_SQL_SEMANTIC', `a rule needs a SELECT statement but found ${describeKind(stmt.kind)}; stream statements go to the stream API`, { found: stmt.kind });
  const def = opts.streams(stmt.from.name);
  if (!def) throw semanticError(`stream ${stmt.from.name} is not defined; create it with CREATE STREAM first`, stmt.from.pos);
  // FROM a table (eKuiper: `FROM table1 INNER JOIN demo`): the first joined stream is what the rule reads
  let trigger = def;
  if (def.table) {
    const first = stmt.joins.map((j) => opts.streams(j.name)).find((d) => d && !d.table);
    if (!first) throw semanticError(`${stmt.from.name} is a table and the rule joins no stream; a rule reads a stream: FROM stream JOIN ${stmt.from.name} ON …`, stmt.from.pos);
    if (tableKind(def) === 'lookup') throw semanticError(`lookup table ${def.name} cannot be FROM; join it: FROM ${first.name} JOIN ${def.name} ON …`, stmt.from.pos);
    trigger = first;
  }
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
    return new Rule(id, sql, stmt, trigger, { ...opts, functions }, instances, sites, def.table ? def : undefined);
  } catch (e) {
    for (const i of instances) i.close();
    throw e;
  }
}

function describeKind(k: string): string {
  return {
    createStream: 'CREATE STREAM/TABLE', dropStream: 'DROP STREAM', showStreams: 'SHOW STREAMS', describeStream: 'DESCRIBE STREAM',
    dropTable: 'DROP TABLE', showTables: 'SHOW TABLES', describeTable: 'DESCRIBE TABLE',
  }[k] ?? k;
}

/** Thrown values that are not StreamplugErrors become E_EVAL errors naming the rule and stage. */
function asError(e: unknown, rule: string, stage: string): StreamplugError {
  return isStreamplugError(e) ? e : new StreamplugError('E_EVAL', `rule ${rule}, ${stage}: ${(e as Error)?.message ?? String(e)}`, {});
}

function isUnnest(e: Expr): boolean {
  return e.kind === 'call' && e.name.toLowerCase() === 'unnest';
}

function defaultName(e: Expr, k: number): string {
  if (e.kind === 'field' || e.kind === 'member') return e.name;
  if (e.kind === 'call') return e.name;
  return `kuiper_field_${k}`;
}

/** One compiled join: a set join (a stream in the window, or a scan table) or a lookup join. */
type CompiledJoin =
  | { kind: 'set'; step: JoinStep; stream?: string; table?: string }
  | { kind: 'lookup'; step: LookupStep; table: string };

/** Splits ON into its equalities and the rest (eKuiper's flatConditions: only AND is looked through). */
function flatConditions(e: Expr | undefined, eq: Extract<Expr, { kind: 'binary' }>[], rest: Expr[]): void {
  if (!e) return;
  if (e.kind === 'binary' && e.op === 'AND') {
    flatConditions(e.left, eq, rest);
    flatConditions(e.right, eq, rest);
  } else if (e.kind === 'binary' && e.op === '=') eq.push(e);
  else rest.push(e);
}

/** `q.name` when the expression is a field of qualifier q. */
function qualifiedField(e: Expr): { q: string; name: string } | undefined {
  return e.kind === 'member' && e.object.kind === 'field' ? { q: e.object.name, name: e.name } : undefined;
}

class Rule implements RuleRuntime {
  readonly stream: string;
  readonly streams: string[];
  readonly tables: string[] = [];
  private readonly joins: CompiledJoin[] = [];
  /** Stream name -> definition, for decoding each stream's rows with its own schema. */
  private readonly defs = new Map<string, StreamDef>();
  /** Which stream each pushed row came from (a joined window holds rows of several). */
  private readonly emitter = new WeakMap<Row, string>();
  readonly windowed: boolean;
  readonly rowsPassUnchanged: boolean;
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
  /** Processing-time windows only: the rows the window holds, for checkpoints (window-checkpoint.ts). */
  private readonly journal?: JournaledWindow;
  /** FILTER (WHERE …) before the window, OVER (WHEN …) deciding which rows trigger it. */
  private readonly windowFilter?: Eval;
  private readonly windowTrigger?: Eval;
  private readonly ops = new Map<OperatorMetrics['name'], OperatorMetrics>();
  private readonly clock: () => number;
  private readonly analytics = new AnalyticRegistry();
  private readonly schema: StreamDef['fields'];
  /** Event time: the stream's TIMESTAMP field, the tolerance and the watermark so far. */
  private readonly eventTime?: { field: string; tolerance: number };
  private maxEventTs = -Infinity;
  /** Event time without a window: rows wait here, in time order, until the watermark passes them. */
  private held: { ts: number; row: Row }[] = [];
  private readonly info: RuleInfo;
  /** The SQL reads last_hit_*(): rows go one by one and the counters move after each hit. */
  private readonly hitSensitive: boolean;
  /** The SQL reads a row's time (event_time(), last_hit_time()): rows are stamped as they come. */
  private readonly stampsRows: boolean;
  /** A rule selecting changed_col(s) emits nothing for a row where nothing changed (eKuiper's doc examples). */
  private readonly dropEmpty: boolean;

  constructor(
    readonly id: string,
    readonly sql: string,
    readonly statement: SelectStatement,
    def: StreamDef,
    private readonly opts: CompileOptions,
    private readonly instances: FunctionInstance[],
    private readonly sites: Site[],
    /** FROM names a scan table: its rows are the left side of the first join; `def` is the stream joined. */
    private readonly fromTable?: StreamDef,
  ) {
    this.stream = def.name;
    this.streams = [def.name];
    this.defs.set(def.name, def);
    this.onResult = opts.onResult;
    this.clock = opts.now ?? Date.now;
    this.schema = def.fields;
    const s = statement;
    const ro = opts.options ?? {};
    if (ro.isEventTime) {
      const field = def.options.TIMESTAMP;
      if (!field)
        throw semanticError(`rule ${id} has options.isEventTime but stream ${def.name} names no TIMESTAMP field; add TIMESTAMP="field" to the stream's WITH (…) or drop isEventTime`, s.from.pos);
      const tolerance = ro.lateTolerance ?? 1000;
      if (typeof tolerance !== 'number' || !(tolerance >= 0))
        throw semanticError(`options.lateTolerance must be a number of milliseconds >= 0 but found ${JSON.stringify(tolerance)}`, s.from.pos);
      this.eventTime = { field, tolerance };
    }
    this.info = { start: this.clock(), hits: { count: 0, time: 0 }, aggHits: { count: 0, time: 0 } };
    this.hitSensitive = [s.where, ...s.fields.map((f) => f.expr), s.having].some((e) => e !== undefined && usesHits(e));
    this.stampsRows = /event_time|last_hit_time/i.test(sql);
    this.rowsPassUnchanged = !def.fields && !ro.isEventTime && !ro.sendError && s.fields.every((f) => !f.except && !f.replace) && s.joins.length === 0;
    this.dropEmpty = s.fields.some((f) => f.expr.kind === 'call' && ['changed_cols', 'changed_col'].includes(f.expr.name.toLowerCase()));
    const base: Scope = {
      rule: this.info,
      ruleId: id,
      stream: def.name,
      alias: s.from.alias,
      schema: def.fields,
      functions: opts.functions,
      instances,
      clause: 'WHERE',
      aggregatesAllowed: false,
      analytics: this.analytics,
    };
    if (s.joins.length) this.compileJoins(s, fromTable ?? def, base);
    // a select alias may be named in WHERE (eKuiper): it stands for its expression
    const whereAliases = new Map<string, Expr>();
    for (const f of s.fields) if (f.alias && !isUnnest(f.expr) && !containsAggregate(f.expr, base)) whereAliases.set(f.alias, f.expr);
    if (s.where) this.where = compileExpr(s.where, { ...base, aliasExprs: whereAliases, allAliases: whereAliases });
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
      if (w.type === 'count' && w.hop !== undefined && w.hop > w.size) throw semanticError(`COUNTWINDOW hop ${w.hop} is larger than its count ${w.size}; use hop <= count`, w.pos);
      if (w.type === 'session' && w.timeout > w.maxDuration) throw semanticError(`SESSIONWINDOW(unit, maxDuration, timeout): timeout ${w.timeout} exceeds maxDuration ${w.maxDuration}; eKuiper's order is max duration first, then timeout`, w.pos);
      const max = opts.maxWindowRows ?? DEFAULT_MAX_WINDOW_ROWS;
      if (w.type === 'count' && w.size > max) throw semanticError(`COUNTWINDOW(${w.size}) holds more rows than maxWindowRows (${max}); use a smaller count or raise the rule option maxWindowRows`, w.pos);
      let win = createWindow(w, ro.isEventTime === true);
      // In event time rows arrive out of order, so the journal's premise (the window holds the latest rows) fails.
      // Nor are windows that join streams: a snapshot does not say which stream each row came from.
      if (ro.isEventTime !== true && this.streams.length === 1) win = this.journal = new JournaledWindow(win);
      this.window = w.type === 'count' ? win : limitWindow(win, max, (err) => this.refuseRows(err));
      if (s.windowFilter) this.windowFilter = compileExpr(s.windowFilter, { ...base, clause: 'FILTER' });
      if (s.windowTrigger) {
        if (w.type !== 'sliding') throw semanticError('OVER (WHEN …) on a window is only for SLIDINGWINDOW: it decides which rows trigger it', w.pos);
        this.windowTrigger = compileExpr(s.windowTrigger, { ...base, clause: 'OVER (WHEN …)' });
      }
    }

    const selScope: Scope = { ...base, clause: 'SELECT', aggregatesAllowed: this.aggregate };
    const names = new Set<string>();
    // a select field may name the alias of another: an earlier one is read from its column, a later one inlined
    const earlier = new Map<string, number>();
    const later = new Map<string, Expr>();
    for (const f of s.fields) if (f.alias && !isUnnest(f.expr)) later.set(f.alias, f.expr);
    const everyAlias = new Map(later);
    if (s.fields.filter((f) => isUnnest(f.expr)).length > 1) throw semanticError('only one unnest() is allowed in SELECT', s.from.pos);
    this.outputs = s.fields.map((f, k): Output => {
      if (f.alias) later.delete(f.alias);
      const allAliases = new Map(everyAlias);
      if (f.alias) allAliases.delete(f.alias);
      const scope: Scope = { ...selScope, aliasColumns: new Map(earlier), aliasExprs: new Map(later), allAliases };
      if (f.expr.kind === 'star') {
        const out: Output = { name: '*', star: true };
        if (f.except) out.except = new Set(f.except);
        if (f.replace) out.replace = f.replace.map((r) => ({ name: r.alias, ev: compileExpr(r.expr, scope) }));
        return out;
      }
      const name = f.alias ?? defaultName(f.expr, k);
      if (names.has(name)) throw semanticError(`two select fields are named ${name}; give one an alias with AS`, f.expr.pos);
      names.add(name);
      const out: Output = { name, star: false, ev: compileExpr(f.expr, scope) };
      if (f.alias) earlier.set(f.alias, k);
      if (!f.alias && f.expr.kind === 'field') out.column = f.expr.name;
      if (isUnnest(f.expr)) out.unnest = true;
      if (f.invisible) out.invisible = true;
      return out;
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
    if (this.joins.length) opNames.push('join');
    if (this.where) opNames.push('filter');
    if (this.window) opNames.push('window');
    if (this.aggregate) opNames.push('aggregate');
    if (this.having) opNames.push('having');
    opNames.push('project');
    if (this.order.length || this.limit !== undefined) opNames.push('order');
    for (const name of opNames) this.ops.set(name, { name, recordsIn: 0, recordsOut: 0, exceptions: 0, lastLatencyUs: 0, totalLatencyUs: 0, calls: 0 });
    if (this.eventTime && this.window) this.ops.get('window')!.lateRows = 0;
    if (this.eventTime && !this.window) this.ops.get('source')!.lateRows = 0;
  }

  /**
   * Resolves each JOIN (eKuiper's planner): streams join within the window, scan tables join their
   * current rows (with or without a window), lookup tables are looked up by the ON equalities on
   * their fields. Fields are then read qualified (`s.id`) from the part of the joined row.
   */
  private compileJoins(s: SelectStatement, def: StreamDef, base: Scope): void {
    const fromQ = s.from.alias ?? def.name;
    // select aliases may be named in ON (eKuiper's TestSingleSQLRule12: ON demoTs = table1Id)
    const aliases = new Map<string, Expr>();
    for (const f of s.fields) if (f.alias && !isUnnest(f.expr) && !containsAggregate(f.expr, base)) aliases.set(f.alias, f.expr);
    const unalias = (e: Expr): Expr => (e.kind === 'field' && aliases.has(e.name) ? aliases.get(e.name)! : e);
    const sources = new Map<string, StreamField[] | null>([[fromQ, def.fields]]);
    const defsByJoin: StreamDef[] = [];
    for (const j of s.joins) {
      const d = this.opts.streams(j.name);
      if (!d) throw semanticError(`stream or table ${j.name} is not defined; create it with CREATE STREAM or CREATE TABLE first`, j.pos);
      const q = j.alias ?? d.name;
      if (sources.has(q)) throw semanticError(`${q} is named twice in FROM/JOIN; give one an alias with AS`, j.pos);
      sources.set(q, d.fields);
      defsByJoin.push(d);
    }
    // an unqualified field is checked against the union of the schemas when every part has one
    const all = [...sources.values()];
    base.schema = all.every((f) => f !== null) ? all.flatMap((f) => f!) : null;
    base.sources = sources;
    const streamJoins = defsByJoin.filter((d) => !d.table);
    if (streamJoins.length + (def.table ? 0 : 1) > 1 && !s.window)
      throw semanticError(`a time window or count window is required to join multiple streams (${[def.name, ...streamJoins.map((d) => d.name)].join(', ')}); add one to GROUP BY, or join a table instead`, s.joins[0].pos);
    let leftQ = fromQ;
    s.joins.forEach((j, k) => {
      const d = defsByJoin[k];
      const q = j.alias ?? d.name;
      const scope: Scope = { ...base, clause: 'ON', aliasExprs: aliases, allAliases: aliases };
      if (d.table && tableKind(d) === 'lookup') {
        if (j.type !== 'inner' && j.type !== 'left')
          throw semanticError(`lookup table ${d.name} joins only with INNER or LEFT JOIN (eKuiper) but found ${j.type.toUpperCase()} JOIN`, j.pos);
        const eq: Extract<Expr, { kind: 'binary' }>[] = [];
        const rest: Expr[] = [];
        flatConditions(j.on, eq, rest);
        const keys: string[] = [];
        const values: Expr[] = [];
        for (const c of eq) {
          const l = qualifiedField(unalias(c.left));
          const r = qualifiedField(unalias(c.right));
          const mine = l?.q === q && r?.q !== q ? { key: l.name, value: c.right } : r?.q === q && l?.q !== q ? { key: r.name, value: c.left } : undefined;
          if (!mine || keys.includes(mine.key)) {
            rest.push(c);
            continue;
          }
          keys.push(mine.key);
          values.push(unalias(mine.value));
        }
        if (!keys.length)
          throw semanticError(`join condition of lookup table ${d.name} is invalid, at least one equi-join predicate is required: ON ${q}.field = ${fromQ}.field`, j.pos);
        const restExpr = rest.reduce<Expr | undefined>((a, e) => (a ? { kind: 'binary', op: 'AND', left: a, right: e, pos: e.pos } : e), undefined);
        const step: LookupStep = { type: j.type, leftQualifier: fromQ, rightQualifier: q, keys, values: values.map((v) => compileExpr(v, scope)) };
        if (restExpr) step.rest = compileExpr(restExpr, scope);
        this.joins.push({ kind: 'lookup', step, table: d.name });
      } else {
        const step: JoinStep = { type: j.type, leftQualifier: fromQ, rightQualifier: q };
        if (j.on) step.on = compileExpr(j.on, scope);
        this.joins.push(d.table ? { kind: 'set', step, table: d.name } : { kind: 'set', step, stream: d.name });
      }
      if (d.table) {
        if (!this.tables.includes(d.name)) this.tables.push(d.name);
      } else if (!this.streams.includes(d.name)) {
        this.streams.push(d.name);
        this.defs.set(d.name, d);
      }
      leftQ = q;
    });
    void leftQ;
    if (def.table && !this.tables.includes(def.name)) this.tables.unshift(def.name);
  }

  /** The joins over one batch or window: the FROM stream's rows are the left side of the first join. */
  private applyJoins(rows: Row[], now: number): Row[] {
    const from = this.stream;
    const ft = this.fromTable;
    let cur = ft ? (this.opts.tables?.(ft.name)?.rows() ?? []) : rows.filter((r) => (this.emitter.get(r) ?? from) === from);
    for (const j of this.joins) {
      const src = j.table ? this.opts.tables?.(j.table) : undefined;
      if (j.kind === 'lookup') {
        const look = src?.lookup ? src.lookup.bind(src) : (keys: string[], values: unknown[]) => scanLookup(src?.rows() ?? [], keys, values);
        cur = lookupJoin(cur, look, j.step, now);
      } else {
        const rights = j.table ? (src?.rows() ?? []) : rows.filter((r) => this.emitter.get(r) === j.stream);
        cur = joinSets(cur, rights, j.step, now);
      }
    }
    return cur;
  }

  /** Counts an error against an operator, tells onError, and with sendError sends it to the sinks. */
  private fail(name: OperatorMetrics['name'], e: unknown): void {
    const m = this.ops.get(name)!;
    const err = asError(e, this.id, name);
    m.exceptions++;
    m.lastError = { code: err.code, message: err.message, at: Date.now() };
    this.opts.onError?.(err, name);
    if (this.opts.options?.sendError && this.onResult) this.onResult([{ error: err.message }]);
  }

  /** The schema applied to each row; a row of the wrong type is counted and left out, the others go on. */
  private decode(rows: Row[], stream: string): Row[] {
    const fields = stream === this.stream ? this.schema : this.defs.get(stream)?.fields;
    if (!fields) return rows;
    const out: Row[] = [];
    for (const r of rows) {
      try {
        const c = coerceRow(r, fields);
        carryMeta(r, c);
        out.push(c);
      } catch (e) {
        const err = asError(e, this.id, 'source');
        this.fail('source', new StreamplugError(err.code, `error in preprocessor: ${err.message}`, err.details));
      }
    }
    return out;
  }

  /**
   * Runs fn over the whole batch; if it throws, over each row alone, so that only the rows that fail
   * are counted and dropped (eKuiper handles rows one by one). A window is one unit and fails whole.
   */
  private rowWise<T>(name: OperatorMetrics['name'], rows: Row[], fn: (rows: Row[]) => T[], perRow: boolean): T[] | undefined {
    if (!perRow || rows.length <= 1) return this.stage(name, rows.length, () => fn(rows), (o) => o.length);
    const whole = this.stage(name, rows.length, () => fn(rows), (o) => o.length, true);
    if (whole) return whole;
    const out: T[] = [];
    for (const r of rows) {
      const one = this.stage(name, 0, () => fn([r]), (o) => o.length);
      if (one) out.push(...one);
    }
    return out;
  }

  // ---- running

  push(rows: Row[], ts?: number, stream?: string): void {
    this.ensureOpen();
    const now = ts ?? this.clock();
    const from = stream ?? this.stream;
    if (!this.defs.has(from))
      throw new StreamplugError('E_BAD_REQUEST', `rule ${this.id} does not read stream ${from}; it reads ${this.streams.join(', ')}`, { rule: this.id, stream: from });
    const src = this.ops.get('source')!;
    src.recordsIn += rows.length;
    src.recordsOut += rows.length;
    src.calls++;
    // With sendError, errors travel in the same stream as the results: rows go one by one, so that a
    // row's error reaches the sinks in its place, between the results of the rows around it.
    if ((this.opts.options?.sendError || this.hitSensitive) && rows.length > 1 && !this.window) {
      src.recordsIn -= rows.length;
      src.recordsOut -= rows.length;
      src.calls--;
      for (const r of rows) this.push([r], now, from);
      return;
    }
    if (this.stampsRows) for (const r of rows) setRowTime(r, now);
    rows = this.decode(rows, from);
    if (this.joins.length) for (const r of rows) this.emitter.set(r, from);
    if (this.eventTime && this.stampsRows) for (const r of rows) {
      const t = toEpochMs(fieldOf(r, this.eventTime.field));
      if (t !== undefined) setRowTime(r, t, true); // the row's own time field: the same for every rule of the stream
    }
    if (this.eventTime && !this.window) {
      rows = this.watermark(rows);
      if (rows.length === 0) return;
    }
    if (!this.analytics.empty) {
      // analytic functions see every row, before WHERE
      const ok = this.rowWise('source', rows, (rs) => {
        this.analytics.run(rs, now);
        return rs;
      }, true);
      if (!ok) return;
      rows = ok;
    }
    if (this.joins.length && !this.window) {
      // tables join row by row as the rows come (eKuiper: a lookup, or a scan table's current rows)
      const r = this.rowWise('join', rows, (rs) => this.applyJoins(rs, now), true);
      if (!r) return;
      rows = r;
    }
    let kept = rows;
    // With a window, eKuiper filters the window's rows: a COUNTWINDOW counts rows before WHERE, and
    // every row moves event time on. Without one, WHERE runs on the rows as they come.
    if (this.where && !this.window) {
      const where = this.where;
      const r = this.rowWise('filter', rows, (rs) => {
        const mask = where({ rows: rs, n: rs.length, now });
        return rs.filter((_, i) => truthy(mask[i]));
      }, true);
      if (!r) return;
      kept = r;
    }
    if (!this.window) {
      if (kept.length) this.evaluate(kept, undefined, now);
      // a row that passed is a hit (one row at a time when the SQL reads the counters)
      for (const r of kept) {
        this.info.hits.count++;
        this.info.hits.time = rowTime(r) ?? now;
      }
      return;
    }
    const win = this.window;
    // FILTER (WHERE …): rows that do not match stay out of the window, but still move event time on
    let enters: boolean[] | undefined;
    if (this.windowFilter) {
      const filter = this.windowFilter;
      const rs = kept;
      const m = this.stage('window', 0, () => filter({ rows: rs, n: rs.length, now }).map(truthy), () => 0);
      if (!m) return;
      enters = m;
    }
    let triggers: boolean[] | undefined;
    if (this.windowTrigger) {
      const trigger = this.windowTrigger;
      const rs = kept;
      const t = this.stage('window', 0, () => trigger({ rows: rs, n: rs.length, now }).map(truthy), () => 0);
      if (!t) return;
      triggers = t;
    }
    if (this.eventTime) return this.pushEventTime(win, kept, now, triggers, enters);
    if (enters) {
      const e = enters;
      triggers = triggers?.filter((_, i) => e[i]);
      kept = kept.filter((_, i) => e[i]);
    }
    const emissions = this.stage('window', kept.length, () => win.push(kept, now, triggers), (e) => e.length);
    if (emissions) this.emitAll(emissions, now);
  }

  /**
   * Event time without a window (eKuiper's watermark stage): a row older than the watermark is late
   * (dropped, counted on the source); the others are held and go on in time order once the watermark
   * reaches them.
   */
  private watermark(rows: Row[]): Row[] {
    const et = this.eventTime!;
    const src = this.ops.get('source')!;
    for (const row of rows) {
      const ts = toEpochMs(fieldOf(row, et.field));
      if (ts === undefined) {
        this.fail('source', new StreamplugError('E_EVAL', `rule ${this.id}: the row's TIMESTAMP field ${et.field} holds no time (${JSON.stringify(fieldOf(row, et.field))}); expected epoch milliseconds or a date text`, { field: et.field }));
        continue;
      }
      if (ts < this.maxEventTs - et.tolerance) {
        src.lateRows = (src.lateRows ?? 0) + 1;
        continue;
      }
      this.held.push({ ts, row });
      if (ts > this.maxEventTs) this.maxEventTs = ts;
    }
    const mark = this.maxEventTs - et.tolerance;
    this.held.sort((a, b) => a.ts - b.ts);
    let k = 0;
    while (k < this.held.length && this.held[k].ts <= mark) k++;
    return this.held.splice(0, k).map((x) => x.row);
  }

  /** Event time: each row goes in at its own timestamp; windows close as the watermark passes their end. */
  private pushEventTime(win: WindowBuffer, rows: Row[], now: number, triggers?: boolean[], enters?: boolean[]): void {
    const et = this.eventTime!;
    const m = this.ops.get('window')!;
    m.recordsIn += rows.length;
    m.calls++;
    for (const [k, row] of rows.entries()) {
      const ts = toEpochMs(fieldOf(row, et.field));
      if (ts === undefined) {
        this.fail('window', new StreamplugError('E_EVAL', `rule ${this.id}: the row's TIMESTAMP field ${et.field} holds no time (${JSON.stringify(fieldOf(row, et.field))}); expected epoch milliseconds or a date text`, { field: et.field }));
        continue;
      }
      const watermark = this.maxEventTs - et.tolerance;
      if (ts < watermark) {
        m.lateRows = (m.lateRows ?? 0) + 1;
        continue;
      }
      let emissions: Emission[];
      try {
        emissions = !enters || enters[k] ? win.insert([row], ts, triggers && [triggers[k]]) : [];
        if (ts > this.maxEventTs) this.maxEventTs = ts;
        emissions.push(...win.advance(this.maxEventTs - et.tolerance));
      } catch (e) {
        this.fail('window', e);
        continue;
      }
      m.recordsOut += emissions.length;
      this.emitAll(emissions, now);
    }
  }

  tick(now: number): void {
    this.ensureOpen();
    if (!this.window || this.eventTime) return; // event time moves with the rows only
    const win = this.window;
    const emissions = this.stage('window', 0, () => win.advance(now), (e) => e.length);
    if (emissions) this.emitAll(emissions, now);
  }

  nextDeadline(): number | undefined {
    return this.eventTime ? undefined : this.window?.nextDeadline();
  }

  private emitAll(emissions: Emission[], now: number): void {
    for (const e of emissions) this.evaluate(e.rows, { start: e.start, end: e.end }, now);
  }

  /** One batch or one window through aggregate → having → project → order; a batch falls back to row by row on an error. */
  private evaluate(rows: Row[], window: Frame['window'], now: number): void {
    const perRow = !this.windowed && rows.length > 1;
    if (perRow) {
      const out = this.run(rows, window, now, true);
      if (out) {
        if (out.length && this.onResult) this.onResult(out);
        return;
      }
      for (const r of rows) {
        const one = this.run([r], window, now, false);
        if (one?.length && this.onResult) this.onResult(one);
      }
      return;
    }
    const out = this.run(rows, window, now, false);
    if (out?.length && this.onResult) this.onResult(out);
    if (out?.length && window) {
      this.info.aggHits.count++;
      this.info.aggHits.time = window.end;
    }
  }

  /** The rows of one result, or undefined when a stage failed (counted unless quiet: the caller retries per row). */
  private run(rows: Row[], window: Frame['window'], now: number, quiet: boolean): Row[] | undefined {
    if (this.window && this.joins.length) {
      // eKuiper joins a window's rows (all joined streams', plus the tables') before WHERE
      const joined = this.stage('join', rows.length, () => this.applyJoins(rows, now), (o) => o.length, quiet);
      if (!joined) return undefined;
      if (joined.length === 0) return [];
      rows = joined;
    }
    if (this.window && this.where) {
      const where = this.where;
      const kept = this.rowWise('filter', rows, (rs) => {
        const mask = where({ rows: rs, n: rs.length, now, window, windowed: true });
        return rs.filter((_, i) => truthy(mask[i]));
      }, true);
      if (!kept || kept.length === 0) return kept ? [] : undefined;
      rows = kept;
    }
    let frame: Frame | undefined = { rows, n: rows.length, window, now, windowed: this.windowed };
    if (this.aggregate) {
      const rowFrame = frame;
      frame = this.stage('aggregate', rows.length, () => this.group(rowFrame), (f) => f.n, quiet);
      if (!frame) return undefined;
    }
    if (this.having) {
      const having = this.having;
      const f0 = frame;
      frame = this.stage('having', f0.n, () => {
        const mask = having(f0);
        const keep: number[] = [];
        mask.forEach((m, i) => truthy(m) && keep.push(i));
        return keep.length === f0.n ? f0 : subFrame(f0, keep);
      }, (f) => f.n, quiet);
      if (!frame) return undefined;
      if (frame.n === 0) return [];
    }
    const f1 = frame;
    const project = () => {
      const cols: unknown[][] = [];
      const reps: unknown[][][] = [];
      const pf: Frame = { ...f1, projected: cols };
      for (const o of this.outputs) {
        cols.push(o.ev ? o.ev(pf) : []);
        reps.push(o.replace ? o.replace.map((r) => r.ev(pf)) : []);
      }
      return { cols, reps };
    };
    const projected = this.stage('project', f1.n, project, () => f1.n, quiet);
    if (!projected) return undefined;
    const { cols, reps } = projected;
    let order = Array.from({ length: f1.n }, (_, i) => i);
    if (this.order.length || this.limit !== undefined) {
      const sorted = this.stage('order', f1.n, () => this.sort({ ...f1, projected: cols }, order), (o) => o.length, quiet);
      if (!sorted) return undefined;
      order = sorted;
    }
    const out: Row[] = [];
    for (const i of order) this.outputRows(f1.rows[i], i, cols, reps, out);
    return out;
  }

  /**
   * The output row(s) of result i, as eKuiper writes them: a null value is left out (a plain column
   * that holds null in the input keeps it), changed_cols spreads its columns, unnest gives one row per
   * element, BIGINTs become numbers.
   */
  private outputRows(row: Row, i: number, cols: unknown[][], reps: unknown[][][], out: Row[]): void {
    const o: Row = {};
    let unnest: { name: string; items: unknown[] } | undefined;
    this.outputs.forEach((spec, k) => {
      if (spec.invisible) return;
      if (spec.star) {
        for (const key in row) if (!spec.except?.has(key)) o[key] = row[key];
        spec.replace?.forEach((r, j) => {
          const v = reps[k][j][i];
          if (isNull(v)) delete o[r.name];
          else o[r.name] = v;
        });
        return;
      }
      const v = cols[k][i];
      if (spec.unnest) {
        if (Array.isArray(v)) unnest = { name: spec.name, items: v };
        else if (!isNull(v)) throw new StreamplugError('E_EVAL', 'the argument for the unnest function should be array', {});
        else unnest = { name: spec.name, items: [] };
        return;
      }
      if (v instanceof ResultCols) Object.assign(o, v.cols);
      else if (!isNull(v)) o[spec.name] = v;
      else if (spec.column !== undefined && Object.hasOwn(row, spec.column) && row[spec.column] === null) o[spec.name] = null;
    });
    if (!unnest) {
      if (this.dropEmpty && Object.keys(o).length === 0) return;
      out.push(plain(o) as Row);
      return;
    }
    for (const item of unnest.items) {
      const r: Row = item && typeof item === 'object' && !Array.isArray(item) && !(item instanceof Date) && !(item instanceof Uint8Array)
        ? { ...o, ...(item as Row) }
        : { ...o, [unnest.name]: item };
      out.push(plain(r) as Row);
    }
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

  /** Rows a full window refused: errors of the window operator. */
  private refuseRows(err: StreamplugError): void {
    const m = this.ops.get('window')!;
    m.exceptions++;
    m.lastError = { code: err.code, message: err.message, at: Date.now() };
    this.opts.onError?.(err, 'window');
  }

  /** Runs one stage, timing it and counting records; on failure counts the exception and returns undefined. */
  private stage<T>(name: OperatorMetrics['name'], nIn: number, fn: () => T, nOut: (r: T) => number, quiet = false): T | undefined {
    const m = this.ops.get(name)!;
    m.recordsIn += nIn;
    m.calls++;
    const t0 = performance.now();
    try {
      const r = fn();
      m.recordsOut += nOut(r);
      return r;
    } catch (e) {
      if (!quiet) this.fail(name, e);
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

  importState(state: Readonly<Record<string, unknown>>): { restored: string[]; ignored: string[]; dropped: string[] } {
    this.ensureOpen();
    const restored: string[] = [];
    const ignored: string[] = [];
    const dropped: string[] = []; // another state version the plugin could not take (logged by the host)
    for (const [id, value] of Object.entries(state)) {
      const site = this.sites.find((s) => s.id === id);
      if (!site?.instance.importState) {
        ignored.push(id);
        continue;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every((v) => v instanceof Uint8Array))
        throw new StreamplugError('E_BAD_REQUEST', `rule ${this.id}: the state of call site ${id} must map keys to bytes (Uint8Array), as exportState() returns; drop the checkpoint`, { rule: this.id, site: id });
      try {
        const done = site.instance.importState(value as Record<string, Uint8Array>);
        if (done && done.outcome === 'dropped') {
          dropped.push(id);
          continue;
        }
      } catch (e) {
        if (isStreamplugError(e)) throw new StreamplugError(e.code, `rule ${this.id}, call site ${id}: ${e.message}`, { ...e.details, rule: this.id, site: id });
        throw e;
      }
      restored.push(id);
    }
    return { restored, ignored, dropped };
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
