/** Columns and scalars: the engine's shapes, the addon's tuples, and single-row conversions. */
import { StreamplugError } from '../errors.js';
import type { NativeColumn, NativeResult } from './native-addon.js';
import { typeCode } from './sp-types.js';
import type { Column, Scalar, ValueType } from './types.js';

/**
 * Packs strings or byte strings into offsets + data, as plugin.h lays out STRING / BYTES columns:
 * sizes first, then each value encoded straight into one buffer (no per-row Buffer, no concat copy).
 */
function pack(values: readonly (string | Uint8Array)[], nrows: number): { offsets: Uint32Array; data: Buffer } {
  const offsets = new Uint32Array(nrows + 1);
  let total = 0;
  for (let i = 0; i < nrows; i++) {
    const v = values[i] ?? '';
    total += typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.byteLength;
    offsets[i + 1] = total;
  }
  const data = Buffer.allocUnsafe(total);
  for (let i = 0; i < nrows; i++) {
    const v = values[i] ?? '';
    if (typeof v === 'string') data.write(v, offsets[i], 'utf8');
    else data.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), offsets[i]);
  }
  return { offsets, data };
}

/** The addon's tuple for `col`; `constant` (default: the column's own flag) becomes is_constant. */
export function toNative(col: Column, nrows: number, constant = col.constant === true): NativeColumn {
  const code = typeCode(col.type);
  if (col.type === 'string' || col.type === 'bytes') {
    const { offsets, data } = pack(col.values, nrows);
    return [code, undefined, offsets, data, col.nulls, constant];
  }
  return [code, col.values, undefined, undefined, col.nulls, constant];
}

export function fromNative(type: Exclude<ValueType, 'any'>, result: NativeResult): Column {
  return { type, values: result.values, nulls: result.nulls } as Column;
}

/** One row of a column as a scalar; null when the row is null. */
export function scalarAt(col: Column, row: number): Scalar {
  if (col.nulls && col.nulls[row] !== 0) return null;
  if (col.type === 'bool') return col.values[row] !== 0;
  return col.values[row];
}

/** A one-row column for a scalar, typed as the argument is declared where the value allows it. */
export function columnOf(value: Scalar, declared: ValueType): Column {
  const nulls = value === null ? Uint8Array.of(1) : undefined;
  const as = value === null ? (declared === 'any' ? 'float64' : declared) : undefined;
  if (as === 'float64' || (typeof value === 'number' && declared !== 'int64') || (typeof value === 'bigint' && declared === 'float64')) {
    return { type: 'float64', values: Float64Array.of(value === null ? 0 : Number(value)), nulls };
  }
  if (as === 'int64' || typeof value === 'bigint' || typeof value === 'number') {
    if (typeof value === 'number' && !Number.isInteger(value)) {
      throw new StreamplugError('E_ARG_TYPE', `${value} is not an integer, expected int64`);
    }
    return { type: 'int64', values: BigInt64Array.of(value === null ? 0n : BigInt(value as number | bigint)), nulls };
  }
  if (as === 'bool' || typeof value === 'boolean') return { type: 'bool', values: Uint8Array.of(value ? 1 : 0), nulls };
  if (as === 'string' || typeof value === 'string') return { type: 'string', values: [value === null ? '' : (value as string)], nulls };
  return { type: 'bytes', values: [value === null ? new Uint8Array(0) : (value as Uint8Array)], nulls };
}

/** The text a literal has in sp_arg_info.literal_text. */
export function literalText(value: Scalar): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  return String(value);
}
