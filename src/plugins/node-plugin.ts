/**
 * A `.node` plugin: a Node-API addon whose exports are
 *
 *   { streamplug: { contract: [1, 0], name, version },   contract may also be the text '1.0'
 *     init?(host),       host = { log(level, message) }; throwing refuses the load
 *     deinit?(),         on unload
 *     functions: [NodeFunctionDef, …] }
 *
 * (plugins/textnode is the sample). Node never unloads an addon, so unloading only forgets it.
 * Loaded with RTLD_NOW so a missing symbol refuses the load instead of killing the process at the
 * first call.
 */
import os from 'node:os';
import { StreamplugError } from '../errors.js';
import type { PluginHandle } from './handle.js';
import { hostAddon, type PluginLogLine } from './native-addon.js';
import { FunctionInstanceBase } from './instance-base.js';
import { checkArgInfos, coerceArgs, resolveResultType } from './signature.js';
import type { ArgInfo, BatchFrame, Column, FunctionInstance, FunctionKind, PluginFunction, ResultType, ValueType } from './types.js';

/** What a `.node` plugin's call hook sees: its rule and per-instance state. */
export interface NodeCallContext {
  readonly ruleId: string;
  readonly state: Map<string, unknown>;
}

export interface NodeFunctionDef {
  name: string;
  kind: FunctionKind;
  minArgs: number;
  maxArgs: number;
  argTypes: ValueType[];
  literalArgs?: boolean[];
  resultType: ResultType;
  stateful?: boolean;
  /** Returns a reason to refuse the rule, or nothing. */
  validate?(args: ArgInfo[]): string | undefined | void;
  /** Aggregates also get the group offsets: rows of group g are [groupOffsets[g], groupOffsets[g+1]). */
  call(args: Column[], nrows: number, ctx: NodeCallContext, groupOffsets?: Uint32Array): Column;
  close?(ctx: NodeCallContext): void;
}

/** Node's arch names as plugin.h's SP_BUILD_ARCH spells them, so both flavours report alike. */
const ARCH_NAMES: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'ia32', arm: 'arm', riscv64: 'riscv64' };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

const VALUE_TYPES = ['any', 'bool', 'int64', 'float64', 'string', 'bytes'];

function badDescriptor(file: string, what: string): StreamplugError {
  return new StreamplugError(
    'E_BAD_DESCRIPTOR',
    `${file}: ${what}; a .node plugin exports { streamplug: { contract: [1, 0], name, version }, functions: [...] }`,
    { file },
  );
}

function checkDef(file: string, def: NodeFunctionDef, i: number): void {
  const where = `function #${i}${typeof def?.name === 'string' ? ` (${def.name})` : ''}`;
  if (typeof def !== 'object' || def === null) throw badDescriptor(file, `${where} is not an object`);
  if (typeof def.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(def.name)) throw badDescriptor(file, `${where}: name is not an SQL identifier`);
  if (def.kind !== 'scalar' && def.kind !== 'aggregate') throw badDescriptor(file, `${where}: kind must be 'scalar' or 'aggregate'`);
  if (!Number.isInteger(def.minArgs) || def.minArgs < 0 || !Number.isInteger(def.maxArgs) || (def.maxArgs !== -1 && def.maxArgs < def.minArgs)) {
    throw badDescriptor(file, `${where}: arity must satisfy 0 <= minArgs <= maxArgs or maxArgs = -1`);
  }
  if (!Array.isArray(def.argTypes) || def.argTypes.some((t) => !VALUE_TYPES.includes(t))) {
    throw badDescriptor(file, `${where}: argTypes must list types among ${VALUE_TYPES.join(', ')}`);
  }
  if (def.resultType !== 'like-arg0' && (!VALUE_TYPES.includes(def.resultType) || (def.resultType as string) === 'any')) {
    throw badDescriptor(file, `${where}: resultType must be a concrete type or 'like-arg0'`);
  }
  if (typeof def.call !== 'function') throw badDescriptor(file, `${where}: call is not a function`);
}

function checkResult(fn: NodeFunction, out: unknown, type: ValueType, rows: number): Column {
  const col = out as Column;
  if (typeof col !== 'object' || col === null || col.type !== type || !col.values || col.values.length < rows) {
    throw new StreamplugError(
      'E_BAD_RESULT',
      `${fn.name}() (plugin ${fn.plugin}) returned ${col?.type ?? typeof out} with ${col?.values?.length ?? 0} rows, expected a ${type} column of ${rows} rows; fix the plugin's call`,
    );
  }
  return col;
}

class NodeFunction implements PluginFunction {
  readonly name: string;
  readonly kind: FunctionKind;
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly argTypes: readonly ValueType[];
  readonly literalArgs: readonly boolean[];
  readonly resultType: ResultType;
  readonly stateful: boolean;
  loaded = true;
  readonly live = new Set<NodeFunctionInstance>();

  constructor(
    readonly plugin: string,
    readonly def: NodeFunctionDef,
  ) {
    this.name = def.name;
    this.kind = def.kind;
    this.minArgs = def.minArgs;
    this.maxArgs = def.maxArgs;
    this.argTypes = [...def.argTypes];
    this.literalArgs = [...(def.literalArgs ?? [])];
    this.resultType = def.resultType;
    this.stateful = def.stateful === true;
  }

  validate(args: readonly ArgInfo[]): void {
    checkArgInfos(this, args);
    const reason = this.def.validate?.(args.map((a) => ({ ...a })));
    if (typeof reason === 'string') {
      throw new StreamplugError('E_VALIDATE_REFUSED', `function ${this.name} (plugin ${this.plugin}) validate failed: ${reason}`);
    }
  }

  instantiate(ruleId: string): FunctionInstance {
    const instance = new NodeFunctionInstance(this, { ruleId, state: new Map() });
    this.live.add(instance);
    return instance;
  }
}

class NodeFunctionInstance extends FunctionInstanceBase {
  private closed = false;
  constructor(
    protected override readonly fn: NodeFunction,
    private readonly ctx: NodeCallContext,
  ) {
    super(fn);
  }

  private ensureUsable(): void {
    if (!this.fn.loaded) throw new StreamplugError('E_PLUGIN_NOT_LOADED', `plugin ${this.fn.plugin} was unloaded; its function instances are gone`);
    if (this.closed) throw new StreamplugError('E_INSTANCE_CLOSED', `this instance of ${this.fn.name} was closed; instantiate the function again`);
  }

  /** Each ctx.state entry as UTF-8 JSON: a checkpoint keeps what JSON keeps. */
  exportState(): Record<string, Uint8Array> {
    this.ensureUsable();
    const out: Record<string, Uint8Array> = {};
    for (const [key, value] of this.ctx.state) {
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch {
        // a cycle or a bigint: reported below
      }
      if (text === undefined) {
        throw new StreamplugError(
          'E_BAD_REQUEST',
          `${this.fn.name}() (plugin ${this.fn.plugin}, rule ${this.ctx.ruleId}) keeps state "${key}" that JSON cannot hold; a checkpoint needs JSON-able ctx.state values (no bigint, function or cycle)`,
        );
      }
      out[key] = encoder.encode(text);
    }
    return out;
  }

  importState(state: Record<string, Uint8Array>): void {
    this.ensureUsable();
    const entries: [string, unknown][] = [];
    for (const [key, bytes] of Object.entries(state ?? {})) {
      try {
        if (!(bytes instanceof Uint8Array)) throw new Error('not a Uint8Array');
        entries.push([key, JSON.parse(decoder.decode(bytes))]);
      } catch (err) {
        throw new StreamplugError('E_BAD_REQUEST', `importState: state "${key}" of ${this.fn.name}() is not UTF-8 JSON bytes (${(err as Error).message}); pass what exportState returned`);
      }
    }
    this.ctx.state.clear();
    for (const [key, value] of entries) this.ctx.state.set(key, value);
  }

  protected run(args: readonly Column[], nrows: number, groups: Uint32Array | null): Column {
    this.ensureUsable();
    // coerceArgs may convert a column (int64 -> float64): keep the caller's constant flag on it.
    const cols = coerceArgs(this.fn, args, nrows).map((c, i) => (args[i].constant && !c.constant ? { ...c, constant: true as const } : c));
    const type = resolveResultType(this.fn, cols);
    let out: unknown;
    try {
      out = groups ? this.fn.def.call(cols, nrows, this.ctx, groups) : this.fn.def.call(cols, nrows, this.ctx);
    } catch (err) {
      throw new StreamplugError('E_FUNCTION_FAILED', `function ${this.fn.name} (plugin ${this.fn.plugin}, rule ${this.ctx.ruleId}) call failed: ${(err as Error)?.message ?? err}`);
    }
    return checkResult(this.fn, out, type, groups ? groups.length - 1 : nrows);
  }

  prepare(): BatchFrame {
    throw new StreamplugError('E_ARG_TYPE', `${this.fn.name}() comes from a .node plugin: frames exist for .so functions only; use callBatch`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fn.live.delete(this);
    if (this.fn.loaded) this.fn.def.close?.(this.ctx);
    this.ctx.state.clear();
  }
}

type NodeExports = {
  streamplug?: { contract?: unknown; name?: unknown; version?: unknown; functions?: unknown };
  functions?: unknown;
  init?: (host: { log(level: number | string, message: string): void }) => void;
  deinit?: () => void;
};

function contractOf(value: unknown): [number, number] | undefined {
  const parts = Array.isArray(value) ? value : typeof value === 'string' ? value.split('.').map(Number) : [];
  return parts.length === 2 && parts.every((n) => Number.isInteger(n)) ? [parts[0], parts[1]] : undefined;
}

/** Log levels as the C contract numbers them (SP_LOG_*), by name or number; unknown ones log as info. */
const LOG_LEVELS: Record<string, number> = { debug: 20, info: 30, warn: 40, warning: 40, error: 50 };
export function logLevel(level: unknown): number {
  if (typeof level === 'number' && Number.isFinite(level)) return level;
  if (typeof level === 'string') return LOG_LEVELS[level.toLowerCase()] ?? (Number.isFinite(Number(level)) && level.trim() !== '' ? Number(level) : 30);
  return 30;
}

/**
 * Loads `file` (absolute path). `admit` may refuse it by throwing before its init runs; `log`
 * receives what the plugin logs through host.log.
 */
export function loadNodePlugin(
  file: string,
  admit: (name: string, functions: readonly string[]) => void,
  log: (line: PluginLogLine) => void,
): PluginHandle {
  const module = { exports: {} as NodeExports };
  try {
    process.dlopen(module, file, os.constants.dlopen.RTLD_NOW);
  } catch (err) {
    const message = (err as Error).message;
    throw new StreamplugError(
      message.includes('undefined symbol') ? 'E_UNDEFINED_SYMBOL' : 'E_DLOPEN',
      `loading ${file} failed: ${message}; run \`streamplug check\` on the file for the reason`,
      { file },
    );
  }
  const exported = module.exports;
  const d = exported.streamplug;
  if (typeof d !== 'object' || d === null) throw badDescriptor(file, 'its exports have no streamplug object');
  const host = hostAddon().hostInfo();
  const contract = contractOf(d.contract);
  if (!contract) throw badDescriptor(file, `contract is ${JSON.stringify(d.contract)}, expected [major, minor]`);
  const contractText = contract.join('.');
  if (contract[0] !== host.contractMajor) {
    throw new StreamplugError('E_CONTRACT_MAJOR', `${file}: plugin built for contract ${contractText}, this host speaks ${host.contractMajor}.${host.contractMinor}; rebuild the plugin`, { file });
  }
  if (contract[1] > host.contractMinor) {
    throw new StreamplugError('E_CONTRACT_MINOR', `${file}: plugin needs contract ${contractText}, this host offers up to ${host.contractMajor}.${host.contractMinor}; upgrade streamplug`, { file });
  }
  if (typeof d.name !== 'string' || !/^[A-Za-z0-9_-]+$/.test(d.name)) throw badDescriptor(file, 'name is missing or not ^[A-Za-z0-9_-]+$');
  if (typeof d.version !== 'string' || d.version === '') throw badDescriptor(file, 'version is missing');
  const list = exported.functions ?? d.functions;
  if (!Array.isArray(list)) throw badDescriptor(file, 'functions is not an array');
  const defs = list as NodeFunctionDef[];
  defs.forEach((def, i) => checkDef(file, def, i));
  const name = d.name;
  admit(name, defs.map((def) => def.name));
  if (typeof exported.init === 'function') {
    try {
      exported.init({ log: (level, message) => log({ plugin: name, rule: '', level: logLevel(level), message: String(message) }) });
    } catch (err) {
      throw new StreamplugError('E_INIT_FAILED', `${file}: plugin ${name} refused to start: ${(err as Error)?.message ?? err}; fix what the plugin reports and load it again`, { file });
    }
  }
  const functions = defs.map((def) => new NodeFunction(name, def));
  return {
    info: {
      name,
      version: d.version,
      file,
      flavour: 'node',
      contract: contractText,
      build: { compiler: '', arch: ARCH_NAMES[process.arch] ?? process.arch, libc: '' },
      functions: functions.map((f) => f.name),
    },
    functions,
    memory: () => undefined,
    openInstances: () => functions.reduce((n, f) => n + f.live.size, 0),
    unload: () => {
      let closedInstances = 0;
      for (const f of functions) {
        for (const instance of [...f.live]) {
          instance.close();
          closedInstances++;
        }
        f.loaded = false;
      }
      if (typeof exported.deinit === 'function') exported.deinit();
      return { name, closedInstances, stillMapped: true };
    },
  };
}
