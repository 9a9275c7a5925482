/**
 * What the engine may pass to a plugin function: arity, argument types and literal arguments,
 * checked once when a rule is created (validate) and again per batch for types (coerceArgs).
 * Shared by native (.so) and Node-API (.node) functions so both refuse alike.
 */
import { StreamplugError } from '../errors.js';
import type { ArgInfo, Column, PluginFunction, ResultType, ValueType } from './types.js';

type Signature = Pick<PluginFunction, 'name' | 'plugin' | 'minArgs' | 'maxArgs' | 'argTypes' | 'literalArgs' | 'resultType'>;

/** Declared type of argument i: extra (variadic or optional) arguments take the last declared type. */
export function argType(fn: Signature, i: number): ValueType {
  if (fn.argTypes.length === 0) return 'any';
  return fn.argTypes[Math.min(i, fn.argTypes.length - 1)];
}

function literalRequired(fn: Signature, i: number): boolean {
  return i < fn.literalArgs.length && fn.literalArgs[i];
}

function arityText(fn: Signature): string {
  if (fn.maxArgs === -1) return `at least ${fn.minArgs}`;
  return fn.minArgs === fn.maxArgs ? `${fn.minArgs}` : `${fn.minArgs} to ${fn.maxArgs}`;
}

/** Whether a value of type `actual` may be passed where `declared` is expected (int64 widens to float64). */
export function accepts(declared: ValueType, actual: ValueType): boolean {
  return declared === 'any' || actual === 'any' || declared === actual || (declared === 'float64' && actual === 'int64');
}

export function checkArity(fn: Signature, n: number): void {
  if (n < fn.minArgs || (fn.maxArgs !== -1 && n > fn.maxArgs)) {
    throw new StreamplugError(
      'E_ARITY',
      `${fn.name}() takes ${arityText(fn)} argument(s), got ${n}; fix the call in the rule's SQL`,
      { function: fn.name, plugin: fn.plugin, found: n, min: fn.minArgs, max: fn.maxArgs },
    );
  }
}

/** Arity, types and SP_ARG_LITERAL; the plugin's own validate hook runs after this. */
export function checkArgInfos(fn: Signature, args: readonly ArgInfo[]): void {
  checkArity(fn, args.length);
  args.forEach((arg, i) => {
    const declared = argType(fn, i);
    if (!accepts(declared, arg.type)) {
      throw new StreamplugError(
        'E_ARG_TYPE',
        `${fn.name}() argument ${i + 1} is ${arg.type}, expected ${declared}; cast it or pass another column`,
        { function: fn.name, plugin: fn.plugin, argument: i + 1, found: arg.type, expected: declared },
      );
    }
    if (literalRequired(fn, i) && arg.literal === undefined) {
      throw new StreamplugError(
        'E_ARG_LITERAL',
        `${fn.name}() argument ${i + 1} must be a literal in the SQL, got an expression; write the value itself`,
        { function: fn.name, plugin: fn.plugin, argument: i + 1 },
      );
    }
  });
}

/** Checks the columns of one batch against the signature, widening int64 to float64 where declared. */
export function coerceArgs(fn: Signature, args: readonly Column[], nrows: number): Column[] {
  checkArity(fn, args.length);
  return args.map((col, i) => {
    const declared = argType(fn, i);
    if (col.values.length < nrows) {
      throw new StreamplugError(
        'E_BAD_REQUEST',
        `${fn.name}() argument ${i + 1} has ${col.values.length} rows, the batch has ${nrows}`,
      );
    }
    if (declared === 'float64' && col.type === 'int64') {
      return { type: 'float64', values: Float64Array.from(col.values, Number), nulls: col.nulls };
    }
    if (!accepts(declared, col.type)) {
      throw new StreamplugError(
        'E_ARG_TYPE',
        `${fn.name}() argument ${i + 1} is a ${col.type} column, expected ${declared}`,
        { function: fn.name, plugin: fn.plugin, argument: i + 1, found: col.type, expected: declared },
      );
    }
    return col;
  });
}

/** The concrete result type of a call (like-arg0 resolved against the first argument as passed). */
export function resolveResultType(fn: Signature, args: readonly { type: ValueType }[]): Exclude<ValueType, 'any'> {
  if (fn.resultType !== 'like-arg0') return fn.resultType as Exclude<ResultType, 'like-arg0'>;
  const first = args[0]?.type;
  if (first === undefined || first === 'any') {
    throw new StreamplugError('E_ARG_TYPE', `${fn.name}() returns the type of its first argument, which is unknown here`);
  }
  return first;
}

export function checkGroupOffsets(fn: Signature, nrows: number, offsets: Uint32Array): void {
  let ok = offsets.length >= 1 && offsets[0] === 0 && offsets[offsets.length - 1] === nrows;
  for (let g = 1; ok && g < offsets.length; g++) ok = offsets[g - 1] <= offsets[g];
  if (!ok) {
    throw new StreamplugError(
      'E_BAD_REQUEST',
      `${fn.name}(): group offsets must rise from 0 to nrows (${nrows}), got [${Array.from(offsets.slice(0, 8)).join(', ')}${offsets.length > 8 ? ', …' : ''}]`,
    );
  }
}
