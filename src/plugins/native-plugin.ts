/**
 * A `.so` plugin: opened and validated by the addon, then each function wrapped as a
 * PluginFunction whose instances own one sp_ctx each.
 */
import { fromNative, literalText, toNative } from './columns.js';
import type { PluginHandle } from './handle.js';
import { hostAddon, type NativeFrame, type NativeFunctionDef, type NativeInstance, type NativeLibrary } from './native-addon.js';
import { FunctionInstanceBase } from './instance-base.js';
import { StreamplugError } from '../errors.js';
import { argType, checkArgInfos, checkArity, coerceArgs, resolveResultType } from './signature.js';
import { SP_ARG_LITERAL, SP_FUNCTION_STATEFUL, kindName, resultTypeName, typeCode, valueTypeName } from './sp-types.js';
import type {
  ArgInfo,
  StateImport,
  BatchFrame,
  Column,
  FunctionInstance,
  FunctionKind,
  PluginFunction,
  ResultType,
  Scalar,
  ValueType,
} from './types.js';

class NativeFunction implements PluginFunction {
  readonly name: string;
  readonly kind: FunctionKind;
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly argTypes: readonly ValueType[];
  readonly literalArgs: readonly boolean[];
  readonly resultType: ResultType;
  readonly stateful: boolean;
  readonly live = new Set<NativeFunctionInstance>();

  constructor(
    readonly plugin: string,
    private readonly lib: NativeLibrary,
    private readonly index: number,
    private readonly def: NativeFunctionDef,
  ) {
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
    this.lib.validate(
      this.index,
      args.map((a) => typeCode(a.type)),
      args.map((a) => (a.literal === undefined ? null : literalText(a.literal))),
    );
  }

  instantiate(ruleId: string): FunctionInstance {
    const instance = new NativeFunctionInstance(this, this.lib.instance(this.index, ruleId) as NativeInstanceWithEntry);
    this.live.add(instance);
    return instance;
  }
}

/** The addon's frame with setConstant (native/host/frame_wrap.cc). */
interface NativeFrameWithConstant extends NativeFrame {
  setConstant(argIndex: number, on: boolean): void;
}

/** The addon's instance with its scalar entry (native/host/instance_wrap.cc) and constant-aware frames. */
interface NativeInstanceWithEntry extends NativeInstance {
  frame(capacity: number, argTypes: number[], resultType: number): NativeFrameWithConstant;
  /**
   * FunctionInstance.call for `self` as one native function: scalars in, scalar out. Every call it
   * cannot convert exactly (errors, odd types) goes to `generic`, run on `self` (held weakly).
   */
  scalarEntry(self: object, generic: (...args: Scalar[]) => Scalar): (...args: Scalar[]) => Scalar;
}

const genericCall = FunctionInstanceBase.prototype.call;

class NativeFunctionInstance extends FunctionInstanceBase {
  constructor(
    protected override readonly fn: NativeFunction,
    private readonly native: NativeInstanceWithEntry,
  ) {
    super(fn);
    // The hot scalar path: `instance.call(x, k)` is the native function itself, one crossing.
    this.call = native.scalarEntry(this, genericCall);
  }

  protected run(args: readonly Column[], nrows: number, groupOffsets: Uint32Array | null): Column {
    const cols = coerceArgs(this.fn, args, nrows);
    const type = resolveResultType(this.fn, cols);
    const result = this.native.call(
      // coerceArgs may convert a column (int64 -> float64): the caller's constant flag still holds.
      cols.map((c, i) => toNative(c, nrows, args[i].constant === true)),
      nrows,
      groupOffsets,
      typeCode(type),
    );
    return fromNative(type, result);
  }

  /**
   * `types` gives the argument types when the signature leaves them open ('any'); by default a
   * frame has minArgs arguments and 'any' becomes float64. Aggregates see the frame as one group.
   */
  prepare(capacity: number, types?: readonly ValueType[]): BatchFrame {
    const argTypes = types ?? Array.from({ length: this.fn.minArgs }, (_, i) => argType(this.fn, i));
    checkArity(this.fn, argTypes.length);
    argTypes.forEach((t, i) => {
      const declared = argType(this.fn, i);
      // A frame hands the plugin its arrays as they are: no widening, so types must match exactly.
      if (declared !== 'any' && declared !== t) {
        throw new StreamplugError('E_ARG_TYPE', `${this.fn.name}() argument ${i + 1} is declared ${declared}, the frame asks for ${t}`);
      }
    });
    const concrete = argTypes.map((t) => (t === 'any' ? 'float64' : t));
    const resultType = resolveResultType(this.fn, concrete.map((type) => ({ type })));
    return this.native.frame(capacity, concrete.map(typeCode), typeCode(resultType));
  }

  exportState(): Record<string, Uint8Array> {
    return this.native.exportState();
  }

  importState(state: Record<string, Uint8Array>): StateImport {
    return this.native.importState(state);
  }

  close(): void {
    this.fn.live.delete(this);
    this.native.close();
  }
}

/** Default of RegistryOptions.loadTimeoutMs: how long dlopen + constructors, then init, may take. */
export const DEFAULT_LOAD_TIMEOUT_MS = 10_000;

/**
 * Settles like `work`, or rejects with E_LOAD_TIMEOUT after `ms`. The thread behind `work` cannot
 * be stopped: it is abandoned, and whatever it opens stays mapped, unused, until the host restarts.
 */
function withLoadTimeout<T>(work: Promise<T>, ms: number, file: string, step: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new StreamplugError(
          'E_LOAD_TIMEOUT',
          `${file}: ${step} did not finish within ${ms} ms (loadTimeoutMs); the plugin is marked failed and its loading thread abandoned ` +
            `(the file stays mapped until the host restarts). Fix the plugin's constructors or init, or raise loadTimeoutMs`,
          { file, step, timeoutMs: ms },
        ),
      );
    }, ms);
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

export interface NativeLoadOptions {
  /** Names the file in the crash journal until its descriptor is read (the install name). */
  label?: string;
  timeoutMs?: number;
}

/**
 * Opens and checks `file` (absolute path), lets `admit` refuse it by throwing (name clashes) before
 * any plugin hook runs, then initialises it. dlopen (with the plugin's constructors) and init run
 * off the JavaScript thread, each bounded by `timeoutMs`. Rejects with a StreamplugError; nothing
 * stays loaded on failure (except a load abandoned after its timeout).
 */
export async function loadNativePlugin(
  file: string,
  admit: (name: string, functions: readonly string[]) => void,
  opts: NativeLoadOptions = {},
): Promise<PluginHandle> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
  const lib = await withLoadTimeout(hostAddon().openAsync(file, opts.label), timeoutMs, file, 'dlopen (and the constructors)');
  let description;
  try {
    description = lib.describe();
    admit(description.name, description.functions.map((f) => f.name));
  } catch (err) {
    lib.close();
    throw err;
  }
  try {
    await withLoadTimeout(lib.initAsync(), timeoutMs, file, `init of plugin ${description.name}`);
  } catch (err) {
    // A timed-out init still runs: closing now would unmap code under it. Leave it abandoned.
    if ((err as StreamplugError).code !== 'E_LOAD_TIMEOUT') lib.close();
    throw err;
  }
  const functions = description.functions.map((def, i) => new NativeFunction(description.name, lib, i, def));
  return {
    info: {
      name: description.name,
      version: description.version,
      file,
      flavour: 'so',
      contract: `${description.contractMajor}.${description.contractMinor}`,
      header: `${description.contractMajor}.${description.headerMinor}`,
      build: { compiler: description.compiler, arch: description.arch, libc: description.libc },
      functions: functions.map((f) => f.name),
    },
    functions,
    memory: () => lib.memory(),
    openInstances: () => functions.reduce((n, f) => n + f.live.size, 0),
    unload: () => {
      for (const f of functions) f.live.clear(); // the addon closes their ctxs (close hooks) below
      return { name: description.name, ...lib.close() };
    },
  };
}
