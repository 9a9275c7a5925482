/** The numbers of plugin.h's sp_type and kinds, and their names in src/plugins/types.ts. */
import { StreamplugError } from '../errors.js';
import type { FunctionKind, ResultType, ValueType } from './types.js';

const TYPE_NAMES: Record<number, ValueType> = { 0: 'any', 1: 'bool', 2: 'int64', 3: 'float64', 4: 'string', 5: 'bytes' };
const TYPE_CODES: Record<ValueType, number> = { any: 0, bool: 1, int64: 2, float64: 3, string: 4, bytes: 5 };
export const SP_TYPE_LIKE_ARG0 = 0x100;
export const SP_ARG_LITERAL = 0x1;
export const SP_FUNCTION_STATEFUL = 0x1;

export function valueTypeName(code: number): ValueType {
  const name = TYPE_NAMES[code];
  if (name === undefined) throw new StreamplugError('E_BAD_DESCRIPTOR', `sp_type ${code} is not a known type (0..5)`);
  return name;
}

export function resultTypeName(code: number): ResultType {
  return code === SP_TYPE_LIKE_ARG0 ? 'like-arg0' : (valueTypeName(code) as ResultType);
}

export function typeCode(type: ValueType): number {
  return TYPE_CODES[type];
}

export function kindName(code: number): FunctionKind {
  return code === 2 ? 'aggregate' : 'scalar';
}
