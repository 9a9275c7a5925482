/**
 * An isolated `.so` plugin (isolation "process"): the same PluginHandle, PluginFunction,
 * FunctionInstance and BatchFrame the engine knows, served by a worker process over shared memory.
 * Columns are laid out in the shared arena (one copy of each column from JS into it, none per
 * row); frames live there for good, so a frame's run(n) is one round trip and no copy at all.
 */
import { StreamplugError } from '../../errors.js';
import type { PluginHandle } from '../handle.js';
import { FunctionInstanceBase } from '../instance-base.js';
import { literalText } from '../columns.js';
import { argType, checkArgInfos, checkArity, coerceArgs, resolveResultType } from '../signature.js';
import { SP_ARG_LITERAL, SP_FUNCTION_STATEFUL, kindName, resultTypeName, typeCode, valueTypeName } from '../sp-types.js';
import type { ArgInfo, BatchFrame, Column, FixedArray, FunctionInstance, FunctionKind, LoadedPluginInfo, PluginFunction, ResultType, ValueType } from '../types.js';
import { CALL_BLOCK_WORDS, CB, COLUMN_REF_WORDS, CR, OP, SLOT, STATUS } from './protocol.js';
import { IsolatedWorker, type IsolationOptions, type WorkerDescription, type WorkerHooks } from './worker.js';

type Def = WorkerDescription['functions'][number];
const WIDTH: Record<string, number> = { bool: 1, int64: 8, float64: 8 };
const pad = (n: number): number => Math.ceil(n / 64) * 64;

function fixedView(buffer: ArrayBuffer, type: string, at: number, n: number): FixedArray {
  if (type === 'float64') return new Float64Array(buffer, at, n);
  if (type === 'int64') return new BigInt64Array(buffer, at, n);
  return new Uint8Array(buffer, at, n);
}

/** Throws the error a failed response stands for, as the in-process host would. */
function throwStatus(worker: IsolatedWorker, status: number, pluginCode: 'E_FUNCTION_FAILED' | 'E_VALIDATE_REFUSED'): void {
  if (status === STATUS.ok) return;
  const message = worker.message();
  throw new StreamplugError(status === STATUS.pluginError ? pluginCode : 'E_BAD_REQUEST', message || `the isolated worker answered status ${status}`);
}

class IsolatedFunction implements PluginFunction {
  readonly name: string;
  readonly kind: FunctionKind;
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly argTypes: readonly ValueType[];
  readonly literalArgs: readonly boolean[];
  readonly resultType: ResultType;
  readonly stateful: boolean;
  readonly live = new Set<IsolatedInstance>();

  constructor(readonly plugin: string, readonly worker: IsolatedWorker, readonly index: number, private readonly def: Def, private readonly nextId: () => number) {
    this.name = def.name;
    this.kind = kindName(def.kind);
    this.minArgs = def.minArgs;
    this.maxArgs = def.maxArgs;
    this.argTypes = def.argTypes.map(valueTypeName);
    this.literalArgs = def.argFlags.map((f) => (f & SP_ARG_LITERAL) !== 0);
    this.resultType = resultTypeName(def.resultType);
    this.stateful = (def.flags & SP_FUNCTION_STATEFUL) !== 0;
  }

  validate(args: readonly ArgInfo[]): void {
    checkArgInfos(this, args);
    if (!this.def.hasValidate) return;
    const parts = args.map((a) => Buffer.from(a.literal === undefined ? '' : literalText(a.literal), 'utf8'));
    const size = 4 + parts.reduce((n, p) => n + 12 + Math.ceil(p.length / 4) * 4, 0);
    const w = this.worker;
    const at = w.temp(size);
    try {
      const view = new DataView(w.channel.buffer, at, size);
      view.setUint32(0, args.length, true);
      let p = 4;
      args.forEach((a, i) => {
        view.setUint32(p, typeCode(a.type), true);
        view.setUint32(p + 4, a.literal === undefined ? 0 : 1, true);
        view.setUint32(p + 8, parts[i].length, true);
        w.bytes.set(parts[i], at + p + 12);
        p += 12 + Math.ceil(parts[i].length / 4) * 4;
      });
      throwStatus(w, w.request(OP.validate, 0, [this.index, at, size], { hook: `validate (${this.name})` }), 'E_VALIDATE_REFUSED');
    } finally {
      w.arena.release(at);
    }
  }

  instantiate(ruleId: string): FunctionInstance {
    const id = this.nextId();
    this.worker.instantiate(id, this.index, ruleId);
    const instance = new IsolatedInstance(this, id, ruleId);
    this.live.add(instance);
    return instance;
  }
}

class IsolatedInstance extends FunctionInstanceBase {
  private scratch = -1;
  private fast?: { dispose(): void };
  private scratchBytes = 0;
  private closed = false;
  private readonly ctx: { hook: string; rule: string };

  constructor(protected override readonly fn: IsolatedFunction, readonly id: number, readonly rule: string) {
    super(fn);
    this.ctx = { hook: `call (${fn.name})`, rule };
    // As in-process, `instance.call` works detached from the instance.
    const generic = FunctionInstanceBase.prototype.call;
    const fast = (this.fast = this.scalarFastPath());
    this.call = fast
      ? (...args) => {
          if (args.length === fast.args.length && args.every((a) => typeof a === 'number')) {
            for (let i = 0; i < args.length; i++) fast.args[i][0] = args[i] as number;
            fast.run(1);
            return fast.nulls[0] !== 0 ? null : fast.result[0];
          }
          return generic.apply(this, args);
        }
      : (...args) => generic.apply(this, args);
  }

  /**
   * The one-row hot path for a scalar function over float64 arguments and a float64 result (the
   * common numeric case): a one-row frame in the arena, made at the first call, so `call(x, k)`
   * writes two doubles and rings once instead of laying out columns. Every other call (other
   * types, nulls, arity errors) takes the generic path, which gives the same answers.
   */
  private scalarFastPath(): { args: Float64Array[]; result: Float64Array; nulls: Uint8Array; run(n: number): void; dispose(): void } | undefined {
    const fn = this.fn;
    if (fn.kind !== 'scalar' || fn.minArgs < 1 || fn.minArgs !== fn.maxArgs) return undefined;
    for (let i = 0; i < fn.minArgs; i++) {
      const t = argType(fn, i);
      if (t !== 'float64' && t !== 'any') return undefined;
    }
    const result = resolveResultType(fn, Array.from({ length: fn.minArgs }, () => ({ type: 'float64' as const })));
    if (result !== 'float64') return undefined;
    let frame: BatchFrame | undefined;
    const get = (): BatchFrame => (frame ??= this.prepare(1, Array.from({ length: fn.minArgs }, () => 'float64' as const)));
    return {
      get args() {
        return get().args as Float64Array[];
      },
      get result() {
        return get().result as Float64Array;
      },
      get nulls() {
        return get().resultNulls;
      },
      run: (n) => get().run(n),
      dispose: () => frame?.close(),
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private usable(): IsolatedWorker {
    if (this.closed) throw new StreamplugError('E_INSTANCE_CLOSED', `this instance of ${this.fn.name} was closed; instantiate the function again`);
    return this.fn.worker;
  }

  /** Per-instance arena space reused across calls (grown when a batch needs more). */
  private space(bytes: number): number {
    const w = this.fn.worker;
    if (bytes > this.scratchBytes) {
      if (this.scratch >= 0) w.arena.release(this.scratch);
      this.scratch = -1;
      this.scratchBytes = 0;
      this.scratch = w.temp(bytes);
      this.scratchBytes = bytes;
    }
    return this.scratch;
  }

  protected run(args: readonly Column[], nrows: number, groupOffsets: Uint32Array | null): Column {
    const w = this.usable();
    const cols = coerceArgs(this.fn, args, nrows);
    const type = resolveResultType(this.fn, cols);
    const nout = groupOffsets ? groupOffsets.length - 1 : nrows;
    // Encode strings once, to know the sizes.
    const packed = cols.map((c) => (c.type === 'string' || c.type === 'bytes' ? c.values.slice(0, nrows).map((v) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v)) : undefined));
    const headBytes = 4 * (CALL_BLOCK_WORDS + COLUMN_REF_WORDS * Math.max(cols.length, 1));
    let size = pad(headBytes);
    const colBytes = cols.map((c, i) => {
      const p = packed[i];
      const values = p ? pad(4 * (nrows + 1)) + pad(p.reduce((n, b) => n + b.byteLength, 0)) : pad(WIDTH[c.type] * nrows);
      return values + (c.nulls ? pad(nrows) : 0);
    });
    size += colBytes.reduce((a, b) => a + b, 0);
    const groupsAt = size;
    if (groupOffsets) size += pad(4 * groupOffsets.length);
    const resultAt = size;
    const width = WIDTH[type] ?? 0;
    size += pad(width * nout) + pad(nout);
    const outAt = size;
    const strings = width === 0;
    // String results: a first guess of 32 bytes a row; the worker asks for more when needed.
    const outCapacity = strings ? pad(4 * (nout + 1) + 32 * nout) : 0;
    size += outCapacity;

    const base = this.space(size);
    const buf = w.channel.buffer;
    const words = new Uint32Array(buf, base, headBytes / 4);
    words.fill(0);
    words[CB.nargs] = cols.length;
    words[CB.resultType] = typeCode(type);
    let at = base + pad(headBytes);
    cols.forEach((c, i) => {
      const ref = CALL_BLOCK_WORDS + COLUMN_REF_WORDS * i;
      words[ref + CR.type] = typeCode(c.type);
      // coerceArgs may convert a column: the caller's constant flag still holds.
      words[ref + CR.isConstant] = args[i].constant === true ? 1 : 0;
      const p = packed[i];
      if (p) {
        const offsets = new Uint32Array(buf, at, nrows + 1);
        let total = 0;
        offsets[0] = 0;
        for (let r = 0; r < nrows; r++) offsets[r + 1] = total += p[r]?.byteLength ?? 0;
        words[ref + CR.offsets] = at;
        at += pad(4 * (nrows + 1));
        let d = at;
        for (let r = 0; r < nrows; r++) {
          const b = p[r];
          if (b) w.bytes.set(b, d);
          d += b?.byteLength ?? 0;
        }
        words[ref + CR.data] = at;
        at += pad(total);
      } else {
        const values = (c as { values: FixedArray }).values;
        const bytes = WIDTH[c.type] * nrows;
        w.bytes.set(new Uint8Array(values.buffer, values.byteOffset, bytes), at);
        words[ref + CR.values] = at;
        at += pad(bytes);
      }
      if (c.nulls) {
        w.bytes.set(c.nulls.subarray(0, nrows), at);
        words[ref + CR.nulls] = at;
        at += pad(nrows);
      }
    });
    if (groupOffsets) {
      new Uint32Array(buf, base + groupsAt, groupOffsets.length).set(groupOffsets);
      words[CB.groupOffsets] = base + groupsAt;
      words[CB.ngroups] = nout;
    }
    words[CB.resultValues] = base + resultAt;
    words[CB.resultNulls] = base + resultAt + pad(width * nout);
    words[CB.out] = base + outAt;
    words[CB.outCapacity] = outCapacity;

    let status = w.call(this.id, base, nrows, this.ctx);
    let out = base + outAt;
    let extra = -1;
    try {
      if (status === STATUS.needSpace) {
        const need = w.slots[SLOT.r0];
        extra = w.temp(need);
        out = extra;
        status = w.request(OP.fetchResult, 0, [extra, need], this.ctx);
      }
      throwStatus(w, status, 'E_FUNCTION_FAILED');
      const nullsAt = base + resultAt + pad(width * nout);
      const mask = new Uint8Array(buf, nullsAt, nout);
      const nulls = mask.some((b) => b !== 0) ? mask.slice() : undefined;
      if (!strings) {
        const values = fixedView(buf, type, base + resultAt, nout).slice();
        return (nulls ? { type, values, nulls } : { type, values }) as Column;
      }
      const offsets = new Uint32Array(buf, out, nout + 1);
      const dataAt = out + 4 * (nout + 1);
      const all = Buffer.from(buf);
      const values =
        type === 'string'
          ? Array.from({ length: nout }, (_, r) => all.toString('utf8', dataAt + offsets[r], dataAt + offsets[r + 1]))
          : Array.from({ length: nout }, (_, r) => Buffer.from(all.subarray(dataAt + offsets[r], dataAt + offsets[r + 1])));
      return (nulls ? { type, values, nulls } : { type, values }) as Column;
    } finally {
      if (extra >= 0) w.arena.release(extra);
    }
  }

  prepare(capacity: number, types?: readonly ValueType[]): BatchFrame {
    const w = this.usable();
    const argTypes = types ?? Array.from({ length: this.fn.minArgs }, (_, i) => argType(this.fn, i));
    checkArity(this.fn, argTypes.length);
    argTypes.forEach((t, i) => {
      const declared = argType(this.fn, i);
      if (declared !== 'any' && declared !== t) {
        throw new StreamplugError('E_ARG_TYPE', `${this.fn.name}() argument ${i + 1} is declared ${declared}, the frame asks for ${t}`);
      }
    });
    const concrete = argTypes.map((t) => (t === 'any' ? 'float64' : t));
    for (const t of concrete) {
      if (!(t in WIDTH)) throw new StreamplugError('E_ARG_TYPE', `${this.fn.name}(): frames take fixed-width arguments only (bool, int64, float64), not ${t}`);
    }
    const resultType = resolveResultType(this.fn, concrete.map((type) => ({ type })));
    if (!(resultType in WIDTH)) throw new StreamplugError('E_ARG_TYPE', `${this.fn.name}(): frames need a fixed-width result, not ${resultType}`);
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 0xffffffff) {
      throw new StreamplugError('E_BAD_REQUEST', `frame capacity must be 1..${0xffffffff}, got ${capacity}`);
    }
    return new IsolatedFrame(this.fn, w, this, this.ctx, capacity, concrete, resultType);
  }

  exportState(): Record<string, Uint8Array> {
    const w = this.usable();
    let capacity = 4096;
    for (;;) {
      const at = w.temp(capacity);
      try {
        const status = w.request(OP.exportState, this.id, [at, capacity], { hook: 'exportState', rule: this.rule });
        if (status === STATUS.needSpace) {
          capacity = w.slots[SLOT.r0];
          continue;
        }
        throwStatus(w, status, 'E_FUNCTION_FAILED');
        const view = new DataView(w.channel.buffer, at, w.slots[SLOT.r0]);
        const out: Record<string, Uint8Array> = {};
        let p = 4;
        const n = view.getUint32(0, true);
        for (let i = 0; i < n; i++) {
          const klen = view.getUint32(p, true);
          const key = Buffer.from(w.channel.buffer, at + p + 4, klen).toString('utf8');
          p += 4 + Math.ceil(klen / 4) * 4;
          const vlen = view.getUint32(p, true);
          out[key] = new Uint8Array(w.channel.buffer.slice(at + p + 4, at + p + 4 + vlen));
          p += 4 + Math.ceil(vlen / 4) * 4;
        }
        return out;
      } finally {
        w.arena.release(at);
      }
    }
  }

  importState(state: Record<string, Uint8Array>): void {
    const w = this.usable();
    const entries = Object.entries(state ?? {});
    for (const [k, v] of entries) {
      if (!(v instanceof Uint8Array) || k.includes('\0')) {
        throw new StreamplugError('E_BAD_REQUEST', `importState: state key ${k} must map to a Uint8Array (and hold no NUL); pass what exportState returned`);
      }
    }
    const parts = entries.map(([k, v]) => [Buffer.from(k, 'utf8'), v] as const);
    const size = 4 + parts.reduce((n, [k, v]) => n + 8 + Math.ceil(k.length / 4) * 4 + Math.ceil(v.byteLength / 4) * 4, 0);
    const at = w.temp(size);
    try {
      const view = new DataView(w.channel.buffer, at, size);
      view.setUint32(0, parts.length, true);
      let p = 4;
      for (const [k, v] of parts) {
        view.setUint32(p, k.length, true);
        w.bytes.set(k, at + p + 4);
        p += 4 + Math.ceil(k.length / 4) * 4;
        view.setUint32(p, v.byteLength, true);
        w.bytes.set(v, at + p + 4);
        p += 4 + Math.ceil(v.byteLength / 4) * 4;
      }
      throwStatus(w, w.request(OP.importState, this.id, [at, size], { hook: 'importState', rule: this.rule }), 'E_FUNCTION_FAILED');
    } finally {
      w.arena.release(at);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fn.live.delete(this);
    const w = this.fn.worker;
    w.instances.delete(this.id);
    if (this.scratch >= 0) w.arena.release(this.scratch);
    this.scratch = -1;
    this.fast?.dispose();
    try {
      if (w.status().state === 'ready') w.request(OP.close, this.id, [], { hook: `close (${this.fn.name})`, rule: this.rule });
    } catch {
      // a worker that dies in a close hook is reported by the supervisor; the instance is gone either way
    }
  }
}

/** A frame in the shared arena: the call block and every column are written once, run(n) rings. */
class IsolatedFrame implements BatchFrame {
  readonly args: FixedArray[];
  readonly argNulls: Uint8Array[];
  readonly result: FixedArray;
  readonly resultNulls: Uint8Array;
  private block: number;
  private readonly words: Uint32Array;

  constructor(
    private readonly fn: IsolatedFunction,
    private readonly worker: IsolatedWorker,
    private readonly instance: IsolatedInstance,
    private readonly ctx: { hook: string; rule: string },
    readonly capacity: number,
    argTypes: readonly string[],
    resultType: string,
  ) {
    const head = pad(4 * (CALL_BLOCK_WORDS + COLUMN_REF_WORDS * Math.max(argTypes.length, 1)));
    const nout = fn.kind === 'aggregate' ? 1 : capacity;
    const sizes = argTypes.map((t) => pad(WIDTH[t] * capacity) + pad(capacity));
    const total = head + sizes.reduce((a, b) => a + b, 0) + pad(WIDTH[resultType] * capacity) + pad(capacity);
    this.block = worker.temp(total);
    const buf = worker.channel.buffer;
    worker.bytes.fill(0, this.block, this.block + total);
    this.words = new Uint32Array(buf, this.block, head / 4);
    this.words[CB.nargs] = argTypes.length;
    this.words[CB.resultType] = typeCode(resultType as ValueType);
    let at = this.block + head;
    this.args = [];
    this.argNulls = [];
    argTypes.forEach((t, i) => {
      const ref = CALL_BLOCK_WORDS + COLUMN_REF_WORDS * i;
      this.words[ref + CR.type] = typeCode(t as ValueType);
      this.words[ref + CR.values] = at;
      this.args.push(fixedView(buf, t, at, capacity));
      at += pad(WIDTH[t] * capacity);
      // Lazy, as in-process frames: until JS reads argNulls[i] the worker gets offset 0 and hands
      // the plugin NULL without scanning the mask; once read, it checks the mask at every run.
      // After the first read the element is a plain read-only value, as in-process.
      const nullsAt = at;
      const words = this.words;
      const masks = this.argNulls;
      Object.defineProperty(masks, i, {
        enumerable: true,
        configurable: true,
        get(this: unknown) {
          if (this !== masks) {
            throw new StreamplugError('E_BAD_REQUEST', "an argNulls getter was called on something else than a frame's argNulls; read frame.argNulls[i]");
          }
          const made = Object.getOwnPropertyDescriptor(masks, i)?.value as Uint8Array | undefined;
          if (made) return made;
          const mask = new Uint8Array(buf, nullsAt, capacity);
          words[ref + CR.nulls] = nullsAt;
          Object.defineProperty(masks, i, { value: mask, enumerable: true, writable: false, configurable: false });
          return mask;
        },
      });
      at += pad(capacity);
    });
    this.words[CB.resultValues] = at;
    this.result = fixedView(buf, resultType, at, Math.max(nout, capacity));
    at += pad(WIDTH[resultType] * capacity);
    this.words[CB.resultNulls] = at;
    this.resultNulls = new Uint8Array(buf, at, capacity);
    this.run = this.run.bind(this); // works extracted from the frame, as in-process
  }

  run(nrows: number): void {
    if (this.block < 0) throw new StreamplugError('E_INSTANCE_CLOSED', 'this frame was closed; prepare a new one');
    if (this.instance.isClosed) throw new StreamplugError('E_INSTANCE_CLOSED', `the instance of ${this.fn.name} behind this frame was closed`);
    if (!Number.isInteger(nrows) || nrows < 0 || nrows > this.capacity) {
      throw new StreamplugError('E_BAD_REQUEST', `run(nrows): nrows must be 0..${this.capacity} (the frame's capacity)`);
    }
    const status = this.worker.call(this.instance.id, this.block, nrows, this.ctx);
    if (status !== STATUS.ok) throwStatus(this.worker, status, 'E_FUNCTION_FAILED');
  }

  /** No C loop to time across a process boundary: `iterations` round trips, timed here. */
  timeNative(nrows: number, iterations: number): number {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) this.run(nrows);
    return Number(process.hrtime.bigint() - t0);
  }

  setConstant(argIndex: number, on: boolean): void {
    if (!Number.isInteger(argIndex) || argIndex < 0 || argIndex >= this.args.length || typeof on !== 'boolean') {
      throw new StreamplugError('E_BAD_REQUEST', `setConstant(argIndex, on): argIndex must be 0..${this.args.length - 1} (the frame's arguments) and on a boolean`);
    }
    this.words[CALL_BLOCK_WORDS + COLUMN_REF_WORDS * argIndex + CR.isConstant] = on ? 1 : 0;
  }

  close(): void {
    if (this.block < 0) return;
    this.worker.arena.release(this.block);
    this.block = -1;
  }
}

/**
 * Starts `file` (absolute, already through the pre-load check) in a worker of its own. `admit`
 * refuses it by throwing (name clashes) once the worker described it; the worker is stopped then.
 */
export async function loadIsolatedPlugin(
  file: string,
  admit: (name: string, functions: readonly string[]) => void,
  options: IsolationOptions,
  hooks: WorkerHooks,
): Promise<PluginHandle & { isolated: IsolatedWorker }> {
  const worker = await IsolatedWorker.start(file, options, hooks);
  const d = worker.description;
  try {
    admit(d.name, d.functions.map((f) => f.name));
  } catch (err) {
    worker.stop();
    throw err;
  }
  let ids = 0;
  const functions = d.functions.map((def, i) => new IsolatedFunction(d.name, worker, i, def, () => ++ids));
  const info: LoadedPluginInfo = {
    name: d.name,
    version: d.version,
    file,
    flavour: 'so',
    contract: `${d.contractMajor}.${d.contractMinor}`,
    build: { compiler: d.compiler, arch: d.arch, libc: d.libc },
    functions: functions.map((f) => f.name),
  };
  return {
    info,
    functions,
    isolated: worker,
    memory: () => undefined,
    worker: () => worker.status(),
    openInstances: () => functions.reduce((n, f) => n + f.live.size, 0),
    unload: () => {
      const closedInstances = functions.reduce((n, f) => n + f.live.size, 0);
      for (const f of functions) f.live.clear();
      worker.stop(); // the worker closes its ctxs (close hooks) and runs deinit
      return { name: d.name, closedInstances, stillMapped: false };
    },
  };
}
