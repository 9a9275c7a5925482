/**
 * The shapes every part agrees on: a column of values crossing into a plugin, a function as the
 * engine sees it, a loaded plugin as the manager sees it. The native addon and `.node` plugins are
 * behind these; the engine and the manager never see a handle.
 */

export type ValueType = 'any' | 'bool' | 'int64' | 'float64' | 'string' | 'bytes';
export type ResultType = Exclude<ValueType, 'any'> | 'like-arg0';

/**
 * A batch of values of one type, columnar. `nulls[i] === 1` marks row i null.
 * `constant: true` promises every row holds the same value (and the same null-ness), as for a
 * literal argument the engine repeats: a `.so` plugin then sees `is_constant = 1` and may read
 * row 0 only. The rows must still be there and equal: nothing checks the promise.
 */
export type Column =
  | { type: 'float64'; values: Float64Array; nulls?: Uint8Array; constant?: true }
  | { type: 'int64'; values: BigInt64Array; nulls?: Uint8Array; constant?: true }
  | { type: 'bool'; values: Uint8Array; nulls?: Uint8Array; constant?: true }
  | { type: 'string'; values: string[]; nulls?: Uint8Array; constant?: true }
  | { type: 'bytes'; values: Uint8Array[]; nulls?: Uint8Array; constant?: true };

/** A scalar SQL value as the engine holds it in a row. */
export type Scalar = null | boolean | number | bigint | string | Uint8Array;

export type FunctionKind = 'scalar' | 'aggregate';

/** What the rule compiler knows about an argument when a rule is created. */
export interface ArgInfo {
  type: ValueType;
  literal?: Scalar; // present when the argument is a literal in the SQL
}

/** A plugin function as the engine resolves it by name. */
export interface PluginFunction {
  readonly name: string;
  readonly plugin: string;
  readonly kind: FunctionKind;
  readonly minArgs: number;
  readonly maxArgs: number; // -1: variadic
  readonly argTypes: readonly ValueType[];
  readonly literalArgs: readonly boolean[];
  readonly resultType: ResultType;
  readonly stateful: boolean;
  /** Checks arity, types, literal arguments and the plugin's own validate hook. Throws StreamplugError. */
  validate(args: readonly ArgInfo[]): void;
  /** One instance per call site per rule: owns the per-rule state. */
  instantiate(ruleId: string): FunctionInstance;
}

export interface FunctionInstance {
  /** Scalar function over a batch: every column has nrows rows; returns nrows rows. Throws StreamplugError(E_FUNCTION_FAILED). */
  callBatch(args: readonly Column[], nrows: number): Column;
  /** Aggregate over groups: rows of group g are [offsets[g], offsets[g+1]); returns one row per group. */
  callGroups(args: readonly Column[], nrows: number, groupOffsets: Uint32Array): Column;
  /** Convenience single-row call (scalar path). */
  call(...args: Scalar[]): Scalar;
  /**
   * The hot path for fixed-width types: a reusable frame whose argument and result arrays are views
   * over native memory (no allocation per call). Fill `args[i][0..n)`, call `run(n)`, read `result`.
   * Throws E_ARG_TYPE for string/bytes signatures.
   */
  prepare(capacity: number): BatchFrame;
  /**
   * A copy of the instance's per-rule state, for a checkpoint: for a `.so` function every key it
   * stored with state_put and its bytes; for a `.node` function each `ctx.state` entry as UTF-8 JSON
   * (its values must be JSON-able). Throws E_INSTANCE_CLOSED / E_PLUGIN_NOT_LOADED. Both plugin
   * flavours have it; optional only so hand-made instances (tests) need not: the engine then
   * treats the instance as stateless.
   */
  exportState?(): Record<string, Uint8Array>;
  /**
   * Replaces the state with one exportState() returned (same function, maybe another process), so
   * the next call continues where that instance stopped. Throws E_BAD_REQUEST on a malformed state.
   */
  importState?(state: Record<string, Uint8Array>): StateImport | void;
  /** Ends the instance: the plugin's close hook runs, state is dropped. Idempotent. */
  close(): void;
}

/**
 * What importState did with a state stamped by another state version of the plugin (contract 1.3,
 * `.so` plugins): `restored` (same version), `migrated` (the plugin's migrate_state hook rewrote
 * it) or `dropped` (no hook, or the hook failed; the instance starts empty). The host has already
 * logged `message` under the plugin's name.
 */
export interface StateImport {
  outcome: 'restored' | 'migrated' | 'dropped';
  from: number;
  to: number;
  message?: string;
}

export type FixedArray = Float64Array | BigInt64Array | Uint8Array;

export interface BatchFrame {
  readonly capacity: number;
  readonly args: FixedArray[];
  /**
   * One null mask per argument (1 = null); zero by default. Lazy in `.so` frames: mask i is made on
   * the first read of argNulls[i], and until then run() hands the plugin `nulls == NULL` for it
   * without reading it, so leave the masks of columns that have no nulls unread. Once read, a
   * mask is checked over [0, nrows) at every run. Elements are read-only.
   */
  readonly argNulls: Uint8Array[];
  readonly result: FixedArray;
  readonly resultNulls: Uint8Array;
  /** Calls the plugin once for rows [0, nrows). Throws StreamplugError(E_FUNCTION_FAILED). */
  run(nrows: number): void;
  /** Benchmark floor: calls the plugin `iterations` times in a C loop, no JS crossing; returns total ns. */
  timeNative(nrows: number, iterations: number): number;
  /**
   * Marks argument `argIndex` constant (`on`) or not: the caller promises every row of it in
   * [0, nrows) holds the same value at each run(), so the plugin sees `is_constant = 1` and may
   * read row 0 only (fill the whole array anyway: a plugin may read every row). Not checked.
   * Throws E_BAD_REQUEST for an index outside the frame's arguments.
   */
  setConstant(argIndex: number, on: boolean): void;
  close(): void;
}

export interface LoadedPluginInfo {
  name: string;
  version: string;
  file: string;
  flavour: 'so' | 'node';
  /** The oldest host contract the plugin needs ("1.0"). */
  contract: string;
  /** `.so`: the header it was built with ("1.2"; from the descriptor's size before 1.2). */
  header?: string;
  build: { compiler: string; arch: string; libc: string };
  functions: string[];
  /** How the registry loaded it (set by PluginRegistry.load). */
  isolation?: Isolation;
}

/** Where a plugin's code runs: in the host process (fast, trusted), or in a worker process of its own. */
export type Isolation = 'in-process' | 'process';

/**
 * A plugin crashed. In-process: read from the crash journal at start (the host died with it).
 * Isolated: its worker died. `quarantine: true` asks the manager to quarantine the plugin (the
 * in-process journal always does; the worker supervisor after N crashes in M minutes).
 */
export interface PluginCrashEvent {
  /** Install name (or descriptor name when no install record matches). */
  plugin: string;
  type?: string;
  hook?: string;
  rule?: string;
  signal?: string;
  detail: string;
  quarantine: boolean;
}
