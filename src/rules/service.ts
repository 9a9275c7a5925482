/**
 * The rules service: streams and rules, their lifecycle and their persistence.
 *
 * - Streams are eKuiper DDL, kept in the store; their source type and properties are checked when
 *   created. One source connector per stream is shared by all running rules reading it (SourceHub).
 * - Rules are eKuiper rule JSON. Creating one compiles its SQL (functions resolved and validated by
 *   their plugins) and builds its sinks without opening them, so a bad rule is refused with the
 *   position and reason before anything is stored.
 * - Every rule's desired state (running/stopped) is stored; restore() brings each back as it was. A
 *   rule that cannot start (function gone, source or sink refused) is `failed` with the reason; the
 *   others run on.
 */
import type { Logger } from 'pino';
import { StreamplugError, isStreamplugError, type ErrorCode } from '../errors.js';
import {
  compileRule,
  parseStatement,
  parseStreamDef,
  SCALARS,
  AGGREGATES,
  type FunctionResolver,
  type RuleRuntime,
  type RuleStateSnapshot,
  type StreamDef,
} from '../engine/index.js';
import {
  createSinkRunner,
  createSource,
  loadNamedConfigs,
  sinkCacheScope,
  sinkTypes,
  sourceTypes,
  type ConnectorContext,
  type NamedConfigs,
  type SourceConnector,
} from '../connectors/index.js';
import type { Store } from '../store/index.js';
import type { PluginFunction } from '../plugins/types.js';
import type { PluginUsage } from '../manager/types.js';
import { actionEntries, checkName, checkpointIntervalOf, engineOptionsOf, maxWindowRowsOf, parseRuleDef, qosOf, type RuleDef } from './definition.js';
import type { WindowSnapshot } from '../engine/window-checkpoint.js';
import { SourceHub, type Subscriber } from './source-hub.js';
import { TableData } from './table-data.js';
import { readRestartStrategy, restartDelay } from './restart.js';
import { RunningRule, type SinkSlot } from './running-rule.js';
import { flatMetrics, type RuleError, type RuleState, type RuleStatus } from './status.js';
import type { Degraded } from './health.js';

export interface RuleServiceOptions {
  dataDir: string;
  store: Store;
  /** Plugin functions by name: the PluginRegistry. */
  functions: FunctionResolver;
  /** Default MQTT server for streams and mqtt sinks that name none (the embedded broker). */
  broker?: { url: string };
  log?: Logger;
  /** Processing-time clock; default Date.now. */
  now?: () => number;
  /**
   * Called (and awaited) after a rule is deleted or its SQL changed, so a pending plugin update no
   * rule uses any more is applied (the host passes the plugin manager's applyPendingUpdates).
   * A failure is logged, never thrown: the rule change itself has happened.
   */
  onPluginUseChanged?: () => Promise<unknown>;
}

export interface StreamDescription {
  name: string;
  fields: StreamDef['fields'];
  options: Record<string, string>;
  sql: string;
}

export interface RuleSummary {
  id: string;
  status: RuleState;
  message?: string;
}

export interface RestoreReport {
  streams: number;
  tables?: number;
  rules: number;
  started: string[];
  failed: { id: string; code: string; message: string }[];
}

export type StreamSqlResult =
  | { kind: 'created'; stream: StreamDescription; message: string }
  | { kind: 'dropped'; name: string; message: string }
  | { kind: 'list'; names: string[] }
  | { kind: 'describe'; stream: StreamDescription };

export interface RuleService extends PluginUsage {
  readonly dataDir: string;
  readonly broker?: { url: string };
  // streams
  createStream(sql: string): { stream: StreamDescription; message: string };
  replaceStream(name: string, sql: string): Promise<{ stream: StreamDescription; message: string }>;
  dropStream(name: string): { message: string };
  listStreams(): string[];
  describeStream(name: string): StreamDescription;
  /** CREATE / DROP / SHOW / DESCRIBE STREAM or TABLE. */
  executeStreamSql(sql: string): StreamSqlResult;
  // tables (CREATE TABLE): joined by rules, backed by a JSON file or a memory topic
  createTable(sql: string): { table: StreamDescription; message: string };
  dropTable(name: string): { message: string };
  listTables(): string[];
  /** The definition, and how many rows the table holds now. */
  describeTable(name: string): StreamDescription & { rows: number };
  // rules
  /** Validates, stores and (unless `triggered: false`) starts the rule. A start failure leaves it created and failed. */
  createRule(body: unknown): Promise<RuleSummary>;
  updateRule(id: string, body: unknown): Promise<RuleSummary>;
  deleteRule(id: string): Promise<void>;
  listRules(): RuleSummary[];
  describeRule(id: string): RuleDef;
  /** Throws the reason when the rule cannot start (it is then `failed`). */
  startRule(id: string): Promise<void>;
  stopRule(id: string): Promise<void>;
  restartRule(id: string): Promise<void>;
  ruleStatus(id: string): RuleStatus;
  /** Loads streams and rules from the store and starts the rules whose desired state is running. */
  restore(): Promise<RestoreReport>;
  /** Stops every rule (their desired state is kept) and every source. The store stays open. */
  close(): Promise<void>;
  /**
   * Consulted by restore() for each plugin a rule used: a reason (e.g. "plugin X crashed the host
   * …") keeps the rule stopped with that reason as its status message, its desired state kept.
   */
  setPluginGate(gate: (plugin: string) => string | undefined): void;
  /** Starts the rules restore() held back because of `plugin` (after the plugin is enabled again). */
  resumeHeld(plugin: string): Promise<string[]>;
}

interface Entry {
  def: RuleDef;
  /** FROM */
  stream: string;
  /** Streams joined besides FROM, and the tables joined. */
  joined: string[];
  tables: string[];
  /** While running: the subscriptions to the joined streams' hubs. */
  joinHubs?: { stream: string; hub: SourceHub; sub: Subscriber }[];
  /** Names of non-built-in functions the SQL calls. */
  calls: string[];
  /** Plugins that provided those functions when the rule last compiled. */
  plugins: Set<string>;
  state: RuleState;
  error?: RuleError;
  startedAt?: number;
  running?: RunningRule;
  /** The last run, kept for its counters after a stop. */
  last?: RunningRule;
  hub?: SourceHub;
  /** Serialises lifecycle operations on this rule. */
  queue: Promise<unknown>;
  /** restartStrategy: tries made since the last good start, and the pending one. */
  restart?: { tries: number; timer?: NodeJS.Timeout; nextAt?: number; carry?: number };
}

/** Store scope: rule id -> the rows its window held at the last checkpoint (qos >= 1). */
const WINDOW_SCOPE = 'rules.window';

/** Store scope: rule id -> plugins its functions came from at the last compile. */
const PLUGINS_SCOPE = 'rules.plugins';

const BUILTIN = (n: string) => {
  const k = n.toLowerCase();
  return Object.hasOwn(SCALARS, k) || Object.hasOwn(AGGREGATES, k) || k === 'window_start' || k === 'window_end';
};

function callNames(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const n of node) callNames(n, out);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o.kind === 'call' && typeof o.name === 'string' && !BUILTIN(o.name)) out.add(o.name);
    for (const v of Object.values(o)) if (v && typeof v === 'object') callNames(v, out);
  }
  return out;
}

function describe(def: StreamDef): StreamDescription {
  return { name: def.name, fields: def.fields, options: def.options, sql: def.sql };
}

function asError(e: unknown): RuleError {
  return isStreamplugError(e)
    ? { code: e.code, message: e.message, at: Date.now() }
    : { code: 'E_INTERNAL', message: (e as Error)?.message ?? String(e), at: Date.now() };
}

/** Same code and details, the message prefixed with where it happened. */
function within(where: string, e: unknown, code?: ErrorCode): StreamplugError {
  if (isStreamplugError(e)) return new StreamplugError(code ?? e.code, `${where}: ${e.message}`, e.details);
  return new StreamplugError(code ?? 'E_INTERNAL', `${where}: ${(e as Error)?.message ?? String(e)}`);
}

function notFound(what: 'rule' | 'stream' | 'table', name: string): StreamplugError {
  const list = `GET /${what}s`;
  return new StreamplugError('E_NOT_FOUND', `${what} ${name} does not exist; ${list} lists the defined ones`, { [what]: name });
}

export function createRuleService(opts: RuleServiceOptions): RuleService {
  return new Service(opts);
}

class Service implements RuleService {
  readonly dataDir: string;
  readonly broker?: { url: string };
  private readonly store: Store;
  private readonly functions: FunctionResolver;
  private readonly log?: Logger;
  private readonly now: () => number;
  private readonly onPluginUseChanged?: () => Promise<unknown>;
  private readonly streams = new Map<string, StreamDef>();
  /** Tables share the streams' namespace (FROM and JOIN name either). */
  private readonly tables = new Map<string, TableData>();
  private readonly defOf = (n: string): StreamDef | undefined => this.streams.get(n) ?? this.tables.get(n)?.def;
  private readonly rules = new Map<string, Entry>();
  private readonly hubs = new Map<string, SourceHub>();
  /** Last plugin seen for a function name: rulesUsing still answers once the plugin is unloaded. */
  private readonly knownPlugin = new Map<string, string>();
  private closed = false;
  private gate: (plugin: string) => string | undefined = () => undefined;
  /** rule id -> plugin that held it back at restore */
  private readonly held = new Map<string, string>();

  constructor(o: RuleServiceOptions) {
    this.dataDir = o.dataDir;
    this.broker = o.broker;
    this.store = o.store;
    this.functions = o.functions;
    this.log = o.log;
    this.now = o.now ?? Date.now;
    this.onPluginUseChanged = o.onPluginUseChanged;
  }

  // ---------------------------------------------------------------- connectors

  private mqttConfigs(): NamedConfigs | undefined {
    if (!this.broker) return undefined; // connectors read <dataDir>/etc/mqtt_source.json themselves
    const confs = loadNamedConfigs({ dataDir: this.dataDir });
    return { ...confs, default: { server: this.broker.url, ...(confs.default ?? {}) } };
  }

  private ctx(ruleId?: string): ConnectorContext {
    return { ruleId, dataDir: this.dataDir, mqttConfigs: this.mqttConfigs(), logger: this.log, kv: this.store };
  }

  private makeSource(def: StreamDef, ruleId?: string): SourceConnector {
    const { TYPE = 'mqtt', DATASOURCE = '', ...props } = def.options;
    if (!sourceTypes().includes(TYPE.toLowerCase()))
      throw new StreamplugError('E_CONNECTOR_CONFIG', `stream ${def.name}: source TYPE "${TYPE}" is unknown (have: ${sourceTypes().join(', ')}); fix TYPE or install the plugin that provides it`, { stream: def.name, type: TYPE });
    try {
      return createSource(TYPE, DATASOURCE, props, { ...this.ctx(ruleId), stream: def.name });
    } catch (e) {
      throw within(`stream ${def.name}`, e);
    }
  }

  private makeSinks(def: RuleDef): SinkSlot[] {
    const ctx = this.ctx(def.id);
    return actionEntries(def).map(([type, props], i) => {
      if (!sinkTypes().includes(type.toLowerCase()))
        throw new StreamplugError('E_CONNECTOR_CONFIG', `rule ${def.id}: actions[${i}] names sink type "${type}", which is unknown (have: ${sinkTypes().join(', ')}); fix the action or install the plugin that provides it`, { rule: def.id, action: i, type });
      try {
        return { type, runner: createSinkRunner(type, props, ctx, i) };
      } catch (e) {
        throw within(`rule ${def.id}, actions[${i}].${type}`, e);
      }
    });
  }

  // ---------------------------------------------------------------- streams

  private ensureOpen(): void {
    if (this.closed) throw new StreamplugError('E_RULE_CLOSED', 'the rules service is closed; start the host again');
  }

  private parseDef(sql: unknown): StreamDef {
    if (typeof sql !== 'string' || !sql.trim())
      throw new StreamplugError('E_BAD_REQUEST', 'stream "sql" must be a CREATE STREAM statement, like CREATE STREAM demo () WITH (DATASOURCE="demo/sensors")');
    const def = parseStreamDef(sql);
    if (def.table) throw new StreamplugError('E_BAD_REQUEST', `this is a CREATE TABLE statement; tables go to POST /tables`, { table: def.name });
    checkName('stream name', def.name);
    this.makeSource(def); // type and properties are checked now; nothing connects until a rule starts
    return def;
  }

  createStream(sql: string): { stream: StreamDescription; message: string } {
    this.ensureOpen();
    const def = this.parseDef(sql);
    if (this.streams.has(def.name))
      throw new StreamplugError('E_CONFLICT', `stream ${def.name} already exists; drop it first, update it with PUT /streams/${def.name}, or pick another name`, { stream: def.name });
    if (this.tables.has(def.name))
      throw new StreamplugError('E_CONFLICT', `table ${def.name} already exists, and streams and tables share their names; pick another name`, { table: def.name });
    this.store.putStream({ name: def.name, sql: def.sql });
    this.streams.set(def.name, def);
    return { stream: describe(def), message: `Stream ${def.name} is created.` };
  }

  async replaceStream(name: string, sql: string): Promise<{ stream: StreamDescription; message: string }> {
    this.ensureOpen();
    if (!this.streams.has(name)) throw notFound('stream', name);
    const def = this.parseDef(sql);
    if (def.name !== name)
      throw new StreamplugError('E_BAD_REQUEST', `the SQL defines stream ${def.name} but the URL names ${name}; a stream cannot be renamed`, { stream: name });
    this.store.putStream({ name, sql: def.sql }, { replace: true });
    this.streams.set(name, def);
    // Running readers pick the new definition up (a new shared source) by restarting.
    for (const [id, e] of this.rules) if ((e.stream === name || e.joined.includes(name)) && e.running) await this.restartRule(id).catch(() => undefined);
    return { stream: describe(def), message: `Stream ${name} is updated.` };
  }

  dropStream(name: string): { message: string } {
    this.ensureOpen();
    if (!this.streams.has(name)) throw notFound('stream', name);
    const users = [...this.rules.values()].filter((e) => e.stream === name || e.joined.includes(name)).map((e) => e.def.id);
    if (users.length)
      throw new StreamplugError('E_CONFLICT', `stream ${name} is read by rule(s) ${users.join(', ')}; delete those rules first`, { stream: name, rules: users });
    this.store.deleteStream(name);
    this.streams.delete(name);
    return { message: `Stream ${name} is dropped.` };
  }

  listStreams(): string[] {
    return [...this.streams.keys()].sort();
  }

  describeStream(name: string): StreamDescription {
    const d = this.streams.get(name);
    if (!d) throw notFound('stream', name);
    return describe(d);
  }

  // ---------------------------------------------------------------- tables

  createTable(sql: string): { table: StreamDescription; message: string } {
    this.ensureOpen();
    if (typeof sql !== 'string' || !sql.trim())
      throw new StreamplugError('E_BAD_REQUEST', 'table "sql" must be a CREATE TABLE statement, like CREATE TABLE t (id bigint, name string) WITH (DATASOURCE="lookup.json", TYPE="file")');
    const def = parseStreamDef(sql);
    if (!def.table) throw new StreamplugError('E_BAD_REQUEST', 'this is a CREATE STREAM statement; streams go to POST /streams', { stream: def.name });
    checkName('table name', def.name);
    if (this.tables.has(def.name))
      throw new StreamplugError('E_CONFLICT', `table ${def.name} already exists; drop it first or pick another name`, { table: def.name });
    if (this.streams.has(def.name))
      throw new StreamplugError('E_CONFLICT', `stream ${def.name} already exists, and streams and tables share their names; pick another name`, { stream: def.name });
    const data = new TableData(def, this.dataDir, this.log);
    this.store.putStream({ name: def.name, sql: def.sql, kind: 'table' });
    data.open();
    this.tables.set(def.name, data);
    return { table: describe(def), message: `Table ${def.name} is created.` };
  }

  dropTable(name: string): { message: string } {
    this.ensureOpen();
    const t = this.tables.get(name);
    if (!t) throw notFound('table', name);
    const users = [...this.rules.values()].filter((e) => e.tables.includes(name)).map((e) => e.def.id);
    if (users.length)
      throw new StreamplugError('E_CONFLICT', `table ${name} is joined by rule(s) ${users.join(', ')}; delete those rules first`, { table: name, rules: users });
    this.store.deleteStream(name);
    t.close();
    this.tables.delete(name);
    return { message: `Table ${name} is dropped.` };
  }

  listTables(): string[] {
    return [...this.tables.keys()].sort();
  }

  describeTable(name: string): StreamDescription & { rows: number } {
    const t = this.tables.get(name);
    if (!t) throw notFound('table', name);
    return { ...describe(t.def), rows: t.size() };
  }

  executeStreamSql(sql: string): StreamSqlResult {
    const s = parseStatement(sql);
    switch (s.kind) {
      case 'createStream': {
        if (s.table) {
          const r = this.createTable(sql);
          return { kind: 'created', stream: r.table, message: r.message };
        }
        const r = this.createStream(sql);
        return { kind: 'created', ...r };
      }
      case 'dropTable':
        return { kind: 'dropped', name: s.name, ...this.dropTable(s.name) };
      case 'showTables':
        return { kind: 'list', names: this.listTables() };
      case 'describeTable':
        return { kind: 'describe', stream: this.describeTable(s.name) };
      case 'dropStream':
        return { kind: 'dropped', name: s.name, ...this.dropStream(s.name) };
      case 'showStreams':
        return { kind: 'list', names: this.listStreams() };
      case 'describeStream':
        return { kind: 'describe', stream: this.describeStream(s.name) };
      default:
        throw new StreamplugError('E_BAD_REQUEST', 'expected CREATE, DROP, SHOW or DESCRIBE STREAM but found SELECT; a SELECT is a rule: POST /rules', {});
    }
  }

  // ---------------------------------------------------------------- rules: validation

  /** Compiles the rule (then closes the compiled runtime) and builds its sinks without opening them. */
  private validate(def: RuleDef): Pick<Entry, 'stream' | 'joined' | 'tables' | 'calls' | 'plugins'> {
    const plugins = new Set<string>();
    let stream: string;
    let joined: string[];
    let tables: string[];
    try {
      const rt = compileRule(def.id, def.sql, { streams: this.defOf, functions: this.tracking(plugins), options: engineOptionsOf(def), maxWindowRows: maxWindowRowsOf(def) });
      stream = rt.stream;
      joined = rt.streams.slice(1);
      tables = [...rt.tables];
      rt.close();
    } catch (e) {
      throw within(`rule ${def.id}`, e);
    }
    this.makeSinks(def);
    return { stream, joined, tables, calls: [...callNames(parseStatement(def.sql))], plugins };
  }

  private tracking(plugins: Set<string>): FunctionResolver {
    return {
      getFunction: (name: string): PluginFunction | undefined => {
        const f = this.functions.getFunction(name);
        if (f) {
          plugins.add(f.plugin);
          this.knownPlugin.set(name.toLowerCase(), f.plugin);
        }
        return f;
      },
    };
  }

  private entry(id: string): Entry {
    const e = this.rules.get(id);
    if (!e) throw notFound('rule', id);
    return e;
  }

  /** Runs fn after every earlier operation on the rule. */
  private serial<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    const run = e.queue.then(fn, fn);
    e.queue = run.catch(() => undefined);
    return run;
  }

  private clearSinkCaches(def: RuleDef): void {
    for (let i = 0; i < def.actions.length; i++) this.store.kvClear(sinkCacheScope(def.id, i));
  }

  private savePlugins(id: string, plugins: Set<string>): void {
    this.store.kvPut(PLUGINS_SCOPE, id, [...plugins].sort());
  }

  private saveStatus(e: Entry): void {
    try {
      if (this.rules.get(e.def.id) === e) this.store.setRuleStatus(e.def.id, { state: e.state, error: e.error, at: Date.now() });
    } catch (err) {
      this.log?.warn({ rule: e.def.id, err: (err as Error).message }, 'could not save rule status');
    }
  }

  // ---------------------------------------------------------------- rules: lifecycle

  private async doStart(e: Entry): Promise<void> {
    if (e.running) return;
    this.ensureOpen();
    const id = e.def.id;
    e.state = 'starting';
    e.error = undefined;
    let running: RunningRule | undefined;
    let hub: SourceHub | undefined;
    const opened: SinkSlot[] = [];
    try {
      const plugins = new Set<string>();
      let runtime;
      try {
        runtime = compileRule(id, e.def.sql, {
          streams: this.defOf,
          tables: (n) => this.tables.get(n),
          functions: this.tracking(plugins),
          now: this.now,
          maxWindowRows: maxWindowRowsOf(e.def),
          options: engineOptionsOf(e.def),
          onError: (err, op) => this.log?.debug({ rule: id, operator: op, code: err.code }, err.message),
        });
      } catch (err) {
        throw within(`rule ${id} cannot start`, err);
      }
      e.stream = runtime.stream;
      e.joined = runtime.streams.slice(1);
      e.tables = [...runtime.tables];
      try {
        for (const t of e.tables) this.tables.get(t)!.refresh(); // a file table is read as the rule starts
      } catch (err) {
        runtime.close();
        throw within(`rule ${id} cannot start`, err);
      }
      e.plugins = plugins;
      this.savePlugins(id, plugins);
      const restored = this.restoreState(id, runtime);
      this.restoreWindow(id, e.def, runtime);
      let sinks: SinkSlot[];
      try {
        sinks = this.makeSinks(e.def);
      } catch (err) {
        runtime.close();
        throw err;
      }
      running = new RunningRule(runtime, sinks, this.now, this.log, {
        intervalMs: checkpointIntervalOf(e.def),
        save: (state) => this.store.saveCheckpoint(id, state),
        ...(qosOf(e.def) >= 1 ? { saveWindow: (w: WindowSnapshot) => this.store.kvPut(WINDOW_SCOPE, id, w) } : {}),
      });
      for (const [i, s] of sinks.entries()) {
        try {
          await s.runner.open();
          opened.push(s);
        } catch (err) {
          throw within(`rule ${id} cannot start: actions[${i}].${s.type}`, err);
        }
      }
      hub = this.hubs.get(e.stream);
      if (!hub || hub.stopping) {
        const def = this.streams.get(e.stream);
        if (!def) throw new StreamplugError('E_SQL_SEMANTIC', `rule ${id} cannot start: stream ${e.stream} is not defined; create it first`, { stream: e.stream });
        hub = new SourceHub(def, () => this.makeSource(def, id));
        this.hubs.set(e.stream, hub);
      }
      try {
        await hub.attach(running);
      } catch (err) {
        throw within(`rule ${id} cannot start: source of stream ${e.stream}`, err);
      }
      // the streams it joins: their rows are pushed naming the stream, so the window knows whose they are
      const rr = running;
      e.joinHubs = [];
      for (const name of e.joined) {
        const def = this.streams.get(name);
        if (!def) throw new StreamplugError('E_SQL_SEMANTIC', `rule ${id} cannot start: stream ${name} is not defined; create it first`, { stream: name });
        let h = this.hubs.get(name);
        if (!h || h.stopping) {
          h = new SourceHub(def, () => this.makeSource(def, id));
          this.hubs.set(name, h);
        }
        const sub: Subscriber = { push: (rows, ts) => rr.push(rows, ts, name) };
        e.joinHubs.push({ stream: name, hub: h, sub });
        try {
          await h.attach(sub);
        } catch (err) {
          throw within(`rule ${id} cannot start: source of stream ${name}`, err);
        }
      }
      running.startCheckpoints(restored);
      if (runtime.windowed) running.schedule(); // a restored window may be due already
      e.running = running;
      e.last = running;
      e.hub = hub;
      e.state = 'running';
      e.startedAt = Date.now();
      const tries = e.restart?.tries ?? 0;
      this.cancelRestart(e, true);
      // A failure soon after this start continues the count (failAtRunTime), so a rule that starts
      // and dies at once is not restarted forever.
      if (e.restart) e.restart.carry = tries;
      running.onFatal = (reason) => void this.failAtRunTime(e, running!, reason);
      this.log?.info({ rule: id, stream: e.stream }, `rule ${id} started`);
    } catch (err) {
      if (hub && running) this.release(e.stream, hub, running);
      for (const j of e.joinHubs ?? []) this.release(j.stream, j.hub, j.sub);
      e.joinHubs = undefined;
      if (running) {
        running.runtime.close();
        await Promise.all(opened.map((s) => s.runner.close().catch(() => undefined)));
        e.last = running;
      }
      e.state = 'failed';
      e.error = asError(err);
      this.log?.warn({ rule: id, code: e.error.code }, e.error.message);
      this.scheduleRestart(e);
      throw err;
    } finally {
      this.saveStatus(e);
    }
  }

  /**
   * Gives a starting rule's plugin functions the state of its last checkpoint, and returns that
   * state as restored. A checkpoint that does not fit is logged and the rule starts afresh.
   */
  private restoreState(id: string, runtime: RuleRuntime): RuleStateSnapshot | undefined {
    if (runtime.stateSites.length === 0) return undefined;
    try {
      const saved = this.store.loadCheckpoint(id);
      if (Object.keys(saved).length === 0) return undefined;
      const { restored, ignored, dropped } = runtime.importState(saved);
      if (dropped.length) this.log?.warn({ rule: id, dropped }, `rule ${id}: checkpoint state of another state version was dropped (see the plugin's log line for both versions)`);
      if (ignored.length) this.log?.info({ rule: id, ignored }, `rule ${id}: checkpoint call sites without a match were ignored`);
      if (restored.length) this.log?.info({ rule: id, restored }, `rule ${id}: plugin function state restored from its checkpoint`);
      return runtime.exportState();
    } catch (err) {
      this.log?.warn({ rule: id, err: (err as Error).message }, `rule ${id}: its checkpoint cannot be restored; plugin functions start with no state`);
      return undefined;
    }
  }

  /** With qos >= 1, the rows the window held at the last checkpoint go back into it. */
  private restoreWindow(id: string, def: RuleDef, runtime: RuleRuntime): void {
    if (!runtime.windowed || qosOf(def) < 1) return;
    try {
      const saved = this.store.kvGet(WINDOW_SCOPE, id) as WindowSnapshot | undefined;
      if (!saved) return;
      const n = runtime.importWindow(saved);
      if (n > 0) this.log?.info({ rule: id, rows: n }, `rule ${id}: ${n} window row(s) restored from its checkpoint`);
    } catch (err) {
      this.log?.warn({ rule: id, err: (err as Error).message }, `rule ${id}: its window checkpoint cannot be restored; the window starts empty`);
    }
  }

  /** Detaches from the hub; the last reader stops the shared connector. */
  private release(stream: string, hub: SourceHub, sub: Subscriber): Promise<void> | undefined {
    if (!hub.detach(sub)) return undefined;
    if (this.hubs.get(stream) === hub) this.hubs.delete(stream);
    return hub.stop().catch((err: unknown) => this.log?.warn({ stream, err: (err as Error).message }, 'source stop failed'));
  }

  /**
   * A running rule whose sink died (a fatal error while running): it is stopped and `failed` with the
   * reason, and its restartStrategy applies as after a failed start. A rule that ran at least
   * `maxDelay` ms counts as a good run (its tries start from 0); one that failed sooner continues
   * the count of the tries that started it.
   */
  private failAtRunTime(e: Entry, run: RunningRule, reason: string): Promise<void> {
    return this.serial(e, async () => {
      if (e.running !== run || this.closed) return;
      const s = readRestartStrategy(e.def.id, e.def.options?.restartStrategy);
      const ranMs = Date.now() - (e.startedAt ?? Date.now());
      const tries = ranMs >= s.maxDelay ? 0 : (e.restart?.carry ?? 0);
      const error = new StreamplugError('E_RULE_FAILED', `rule ${e.def.id} failed while running: ${reason}; it is stopped${s.attempts > 0 ? ' and its restartStrategy applies' : '; start it again when the cause is fixed, or set options.restartStrategy'}`, { rule: e.def.id });
      this.log?.warn({ rule: e.def.id, code: error.code, ranMs }, error.message);
      await this.doStop(e, 'failed');
      e.state = 'failed';
      e.error = asError(error);
      (e.restart ??= { tries: 0 }).tries = tries;
      this.saveStatus(e);
      this.scheduleRestart(e);
    }).catch((err: unknown) => this.log?.warn({ rule: e.def.id, err: (err as Error).message }, `rule ${e.def.id}: stopping it after a run-time failure failed`));
  }

  /** After a failed start: the next try of the rule's restartStrategy, if it has tries left. */
  private scheduleRestart(e: Entry): void {
    if (this.closed || this.rules.get(e.def.id) !== e) return;
    const s = readRestartStrategy(e.def.id, e.def.options?.restartStrategy);
    const r = (e.restart ??= { tries: 0 });
    if (r.timer) return;
    if (r.tries >= s.attempts) {
      if (s.attempts > 0) this.log?.warn({ rule: e.def.id, tries: r.tries }, `rule ${e.def.id}: restartStrategy gave up after ${r.tries} tries; it stays failed`);
      return;
    }
    const wait = restartDelay(s, r.tries);
    r.nextAt = Date.now() + wait;
    this.log?.info({ rule: e.def.id, try: r.tries + 1, of: s.attempts, inMs: wait }, `rule ${e.def.id}: restart ${r.tries + 1} of ${s.attempts} in ${wait} ms`);
    r.timer = setTimeout(() => {
      r.timer = undefined;
      r.nextAt = undefined;
      r.tries++;
      if (this.closed || this.rules.get(e.def.id) !== e || this.store.getRule(e.def.id)?.desired !== 'running') return;
      this.serial(e, () => this.doStart(e)).catch(() => undefined);
    }, wait);
    r.timer.unref();
  }

  /** Drops a pending try; `reset` (a good start, a manual stop) also forgets the tries made. */
  private cancelRestart(e: Entry, reset: boolean): void {
    if (!e.restart) return;
    if (e.restart.timer) clearTimeout(e.restart.timer);
    e.restart.timer = undefined;
    e.restart.nextAt = undefined;
    if (reset) e.restart.tries = 0;
  }

  private async doStop(e: Entry, state: RuleState = 'stopped'): Promise<void> {
    this.cancelRestart(e, true);
    const running = e.running;
    if (running) {
      e.running = undefined;
      const hub = e.hub!;
      e.hub = undefined;
      if (hub.subscribers.size === 1 && hub.subscribers.has(running)) {
        // The last reader: a checkpoint now lets an acknowledging source (MQTT QoS 1 on a persistent
        // session) ack what this rule holds before the connection closes, not get it again at start.
        running.saveCheckpoint();
        await hub.quiesce(2000);
      }
      await this.release(e.stream, hub, running);
      await Promise.all((e.joinHubs ?? []).map((j) => this.release(j.stream, j.hub, j.sub)));
      e.joinHubs = undefined;
      await running.close();
      this.log?.info({ rule: e.def.id }, `rule ${e.def.id} stopped`);
    }
    if (state === 'stopped' || e.state !== 'failed') {
      e.state = state;
      if (state === 'stopped') e.error = undefined;
    }
    this.saveStatus(e);
  }

  async createRule(body: unknown): Promise<RuleSummary> {
    this.ensureOpen();
    const def = parseRuleDef(body);
    if (this.rules.has(def.id))
      throw new StreamplugError('E_CONFLICT', `rule ${def.id} already exists; update it with PUT /rules/${def.id} or delete it first`, { rule: def.id });
    const v = this.validate(def);
    const desired = def.triggered === false ? 'stopped' : 'running';
    this.store.putRule(def.id, def, { desired });
    this.store.saveCheckpoint(def.id, {}); // a new rule starts with no state, whatever was left under its id
    this.store.kvDelete(WINDOW_SCOPE, def.id);
    this.savePlugins(def.id, v.plugins);
    const e: Entry = { def, ...v, state: 'stopped', queue: Promise.resolve() };
    this.rules.set(def.id, e);
    if (desired === 'running') await this.serial(e, () => this.doStart(e)).catch(() => undefined);
    else this.saveStatus(e);
    return this.summary(e);
  }

  async updateRule(id: string, body: unknown): Promise<RuleSummary> {
    this.ensureOpen();
    const e = this.entry(id);
    const def = parseRuleDef(body, id);
    const v = this.validate(def);
    const sqlChanged = def.sql !== e.def.sql;
    return this.serial(e, async () => {
      const desired = def.triggered === false ? 'stopped' : (this.store.getRule(id)?.desired ?? 'running');
      await this.doStop(e);
      this.store.putRule(id, def, { desired, replace: true });
      // New SQL means new call sites: its functions start afresh. Same SQL (new actions, options) keeps the state.
      if (def.sql !== e.def.sql) {
        this.store.saveCheckpoint(id, {});
        this.store.kvDelete(WINDOW_SCOPE, id);
      }
      // Cached messages were made for the old actions: new ones do not inherit them.
      if (JSON.stringify(def.actions) !== JSON.stringify(e.def.actions)) this.clearSinkCaches(e.def);
      this.savePlugins(id, v.plugins);
      Object.assign(e, { def, ...v });
      if (desired === 'running') await this.doStart(e).catch(() => undefined);
      return this.summary(e);
    }).finally(() => (sqlChanged ? this.pluginUseChanged() : undefined));
  }

  async deleteRule(id: string): Promise<void> {
    const e = this.entry(id);
    await this.serial(e, async () => {
      await this.doStop(e);
      this.store.deleteRule(id);
      this.store.kvDelete(PLUGINS_SCOPE, id);
      this.clearSinkCaches(e.def);
      this.store.kvDelete(WINDOW_SCOPE, id);
      this.rules.delete(id);
    });
    await this.pluginUseChanged();
  }

  /** A rule stopped naming some functions: let a pending plugin update no rule blocks apply now. */
  private async pluginUseChanged(): Promise<void> {
    try {
      await this.onPluginUseChanged?.();
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, 'applying pending plugin updates failed');
    }
  }

  listRules(): RuleSummary[] {
    return [...this.rules.values()].sort((a, b) => (a.def.id < b.def.id ? -1 : a.def.id > b.def.id ? 1 : 0)).map((e) => this.summary(e));
  }

  /** The stored state, shown as `degraded` while a running rule has a part down. */
  private shownState(e: Entry): { status: RuleState; degraded?: Degraded } {
    const d = e.state === 'running' ? e.running?.health.report() : undefined;
    return d ? { status: 'degraded', degraded: d } : { status: e.state };
  }

  private summary(e: Entry): RuleSummary {
    const { status, degraded } = this.shownState(e);
    return { id: e.def.id, status, ...(e.error ? { message: e.error.message } : degraded ? { message: degraded.reason } : {}) };
  }

  describeRule(id: string): RuleDef {
    return structuredClone(this.entry(id).def);
  }

  async startRule(id: string): Promise<void> {
    this.ensureOpen();
    const e = this.entry(id);
    await this.serial(e, async () => {
      this.store.setRuleDesired(id, 'running');
      await this.doStart(e);
    });
  }

  async stopRule(id: string): Promise<void> {
    const e = this.entry(id);
    await this.serial(e, async () => {
      this.store.setRuleDesired(id, 'stopped');
      await this.doStop(e);
    });
  }

  async restartRule(id: string): Promise<void> {
    this.ensureOpen();
    const e = this.entry(id);
    await this.serial(e, async () => {
      this.store.setRuleDesired(id, 'running');
      await this.doStop(e);
      await this.doStart(e);
    });
  }

  ruleStatus(id: string): RuleStatus {
    const e = this.entry(id);
    const run = e.running ?? e.last;
    const operators = run ? run.metrics() : [];
    const sinks = run ? run.sinks.map((s, action) => ({ action, type: s.type, ...s.runner.metrics() })) : [];
    const shown = this.shownState(e);
    return {
      id,
      stream: e.stream,
      ...shown,
      ...(e.error ? { message: e.error.message, error: { ...e.error } } : {}),
      ...(e.running && e.startedAt ? { startedAt: e.startedAt } : {}),
      ...(run?.checkpointAt ? { checkpointAt: run.checkpointAt } : {}),
      ...(e.restart && (e.restart.tries > 0 || e.restart.nextAt) ? { restart: { tries: e.restart.tries, ...(e.restart.nextAt ? { nextAt: e.restart.nextAt } : {}) } } : {}),
      ...(e.running && e.hub ? { source: e.hub.report() } : {}),
      ...(run ? { fastPath: run.fastPath() } : {}),
      operators,
      sinks,
      metrics: flatMetrics(e.stream, operators, sinks),
    };
  }

  rulesUsing(plugin: string): string[] {
    // Plugin names are unique regardless of case (as SQL function names are): "Echo" is "echo".
    const want = plugin.toLowerCase();
    const same = (p: string | undefined) => p !== undefined && p.toLowerCase() === want;
    const ids: string[] = [];
    for (const [id, e] of this.rules) {
      const uses =
        [...e.plugins].some(same) ||
        e.calls.some((n) => same(this.functions.getFunction(n)?.plugin ?? this.knownPlugin.get(n.toLowerCase())));
      if (uses) ids.push(id);
    }
    return ids.sort();
  }

  // ---------------------------------------------------------------- persistence

  async restore(): Promise<RestoreReport> {
    this.ensureOpen();
    const report: RestoreReport = { streams: 0, rules: 0, started: [], failed: [] };
    for (const rec of this.store.listStreams('table')) {
      try {
        const def = parseStreamDef(rec.sql);
        const data = new TableData(def, this.dataDir, this.log);
        data.open();
        this.tables.set(def.name, data);
        report.tables = (report.tables ?? 0) + 1;
      } catch (err) {
        this.log?.error({ table: rec.name, err: (err as Error).message }, `stored table ${rec.name} can no longer be used; it is skipped`);
      }
    }
    for (const rec of this.store.listStreams('stream')) {
      try {
        const def = parseStreamDef(rec.sql);
        this.streams.set(def.name, def);
        report.streams++;
      } catch (err) {
        this.log?.error({ stream: rec.name, err: (err as Error).message }, `stored stream ${rec.name} no longer parses; it is skipped`);
      }
    }
    const toStart: Entry[] = [];
    for (const rec of this.store.listRules()) {
      if (this.rules.has(rec.id)) continue;
      let def: RuleDef;
      try {
        def = parseRuleDef(rec.rule, rec.id);
      } catch (err) {
        this.log?.error({ rule: rec.id, err: (err as Error).message }, `stored rule ${rec.id} is malformed; it is skipped`);
        continue;
      }
      let stream = '';
      let calls: string[] = [];
      const joined: string[] = [];
      const tables: string[] = [];
      try {
        const s = parseStatement(def.sql);
        if (s.kind === 'select') {
          // FROM a table: the first joined stream is the one the rule reads
          const names = [s.from.name, ...s.joins.map((j) => j.name)];
          stream = names.find((x) => !this.tables.has(x)) ?? s.from.name;
          for (const n of names) if (this.tables.has(n)) tables.push(n);
          else if (n !== stream) joined.push(n);
        }
        calls = [...callNames(s)];
      } catch {
        // start() reports the SQL error as the rule's status
      }
      // Plugins seen at the last compile: still known when a plugin failed to load this time.
      const saved = this.store.kvGet(PLUGINS_SCOPE, rec.id);
      const plugins = new Set<string>(Array.isArray(saved) ? saved.filter((p): p is string => typeof p === 'string') : []);
      for (const n of calls) {
        const f = this.functions.getFunction(n);
        if (f) plugins.add(f.plugin);
      }
      const e: Entry = { def, stream, joined, tables, calls, plugins, state: 'stopped', queue: Promise.resolve() };
      this.rules.set(rec.id, e);
      report.rules++;
      if (rec.desired === 'running') toStart.push(e);
    }
    for (const e of toStart) {
      const blocked = [...e.plugins].map((p) => [p, this.gate(p)] as const).find(([, why]) => why !== undefined);
      if (blocked) {
        e.state = 'stopped';
        e.error = { code: 'E_PLUGIN_CRASHED', message: blocked[1]!, at: Date.now() };
        this.held.set(e.def.id, blocked[0]);
        this.log?.warn({ rule: e.def.id, plugin: blocked[0], code: 'E_PLUGIN_CRASHED' }, `rule ${e.def.id} not started: ${blocked[1]}`);
        report.failed.push({ id: e.def.id, code: 'E_PLUGIN_CRASHED', message: blocked[1]! });
        continue;
      }
      try {
        await this.serial(e, () => this.doStart(e));
        report.started.push(e.def.id);
      } catch (err) {
        const x = asError(err);
        report.failed.push({ id: e.def.id, code: x.code, message: x.message });
      }
    }
    return report;
  }

  setPluginGate(gate: (plugin: string) => string | undefined): void {
    this.gate = gate;
  }

  async resumeHeld(plugin: string): Promise<string[]> {
    const started: string[] = [];
    for (const [id, p] of [...this.held]) {
      if (p !== plugin) continue;
      this.held.delete(id);
      const e = this.rules.get(id);
      if (!e || e.running) continue;
      try {
        await this.serial(e, () => this.doStart(e));
        started.push(id);
      } catch (err) {
        this.log?.warn({ rule: id, err: (err as Error).message }, `rule ${id} could not start after plugin ${plugin} was enabled`);
      }
    }
    return started;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Cut the input first: rules then stop without a backlog still flowing in.
    const hubs = [...this.hubs.values()];
    this.hubs.clear();
    await Promise.all(hubs.map((h) => h.stop().catch(() => undefined)));
    await Promise.all([...this.rules.values()].map((e) => this.serial(e, () => this.doStop(e, e.state === 'failed' ? 'failed' : 'stopped')).catch(() => undefined)));
    for (const t of this.tables.values()) t.close();
  }
}
