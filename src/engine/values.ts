/**
 * SQL values as the engine holds them (JS: null, boolean, number, bigint, string, Date, Uint8Array, arrays,
 * objects), their comparison and casting, and the conversion to and from plugin Columns.
 */
import { StreamplugError } from '../errors.js';
import type { Column, ValueType } from '../plugins/types.js';

export function isNull(v: unknown): v is null | undefined {
  return v === null || v === undefined;
}

export function typeName(v: unknown): string {
  if (isNull(v)) return 'null';
  if (v instanceof Date) return 'datetime';
  if (v instanceof Uint8Array) return 'bytea';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'bigint') return 'bigint';
  if (typeof v === 'number') return Number.isInteger(v) ? 'bigint' : 'float';
  if (typeof v === 'object') return 'struct';
  return typeof v;
}

export function evalError(message: string, details: Record<string, unknown> = {}): StreamplugError {
  return new StreamplugError('E_EVAL', message, details);
}

export function isNumeric(v: unknown): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

/** A number for arithmetic; throws E_EVAL naming the function/operator when v is not numeric. */
export function num(v: unknown, where: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw evalError(`${where} expects a number but found ${typeName(v)} ${short(v)}; cast the value or fix the data`, { found: typeName(v) });
}

export function str(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  throw evalError(`${where} expects a string but found ${typeName(v)} ${short(v)}; cast(x, "string") converts`, { found: typeName(v) });
}

export function short(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'bigint' ? String(v) : typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > 40 ? s.slice(0, 37) + '...' : s;
}

/** SQL truth: only `true` passes a WHERE/HAVING/WHEN. */
export function truthy(v: unknown): boolean {
  return v === true;
}

/** Ordering of two non-null values of comparable kinds; undefined when they cannot be compared. */
export function compare(a: unknown, b: unknown): number | undefined {
  if (isNumeric(a) && isNumeric(b)) {
    if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
    const x = Number(a);
    const y = Number(b);
    return x < y ? -1 : x > y ? 1 : x === y ? 0 : undefined;
  }
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (a instanceof Date || b instanceof Date) {
    const x = toEpochMs(a);
    const y = toEpochMs(b);
    if (x === undefined || y === undefined) return undefined;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return undefined;
}

export function equals(a: unknown, b: unknown): boolean {
  const c = compare(a, b);
  if (c !== undefined) return c === 0;
  if (typeof a === 'object' && typeof b === 'object') return stableKey(a) === stableKey(b);
  return false;
}

/** A string that identifies a value for grouping and deduplication (numbers and bigints of equal value agree). */
export function stableKey(v: unknown): string {
  if (isNull(v)) return 'n';
  if (typeof v === 'bigint') return 'd' + v.toString();
  if (typeof v === 'number') return 'd' + (Number.isInteger(v) ? BigInt(v).toString() : String(v));
  if (typeof v === 'string') return 's' + v;
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (v instanceof Date) return 'D' + v.getTime();
  if (v instanceof Uint8Array) return 'b' + Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return '[' + v.map(stableKey).join(',') + ']';
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return '{' + Object.keys(o).sort().map((k) => JSON.stringify(k) + ':' + stableKey(o[k])).join(',') + '}';
  }
  return String(v);
}

export function toEpochMs(v: unknown): number | undefined {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    // eKuiper reads "yyyy-MM-dd HH:mm:ss[.SSS]" and "yyyy-MM-dd" without a zone as UTC
    const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?$/.exec(v.trim());
    if (m) return Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), Number((m[7] ?? '0').slice(0, 3).padEnd(3, '0')));
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

/** A value as it leaves the engine: BIGINTs that fit become numbers again, inside arrays and structs too. */
export function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
  if (Array.isArray(v)) return v.some(needsPlain) ? v.map(plain) : v;
  if (v && typeof v === 'object' && !(v instanceof Date) && !(v instanceof Uint8Array)) {
    const o = v as Record<string, unknown>;
    let out: Record<string, unknown> | undefined;
    for (const k in o) {
      if (needsPlain(o[k])) {
        out ??= { ...o };
        out[k] = plain(o[k]);
      }
    }
    return out ?? o;
  }
  return v;
}

function needsPlain(v: unknown): boolean {
  if (typeof v === 'bigint') return true;
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (needsPlain(v[i])) return true;
    return false;
  }
  if (v instanceof Date || v instanceof Uint8Array) return false;
  const o = v as Record<string, unknown>;
  for (const k in o) if (needsPlain(o[k])) return true;
  return false;
}

/** eKuiper's cast(x, "type"): bigint, float, string, boolean, datetime, bytea. */
export function castValue(v: unknown, to: string): unknown {
  if (isNull(v)) return null;
  const fail = () => evalError(`cannot cast ${typeName(v)} ${short(v)} to ${to}; check the value`, { from: typeName(v), to });
  switch (to) {
    case 'bigint': {
      // a BIGINT, so that arithmetic on it stays integer (cast("5", "bigint") / 2 is 2); outputs turn it back into a number
      if (typeof v === 'bigint') return v;
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) throw fail();
        return BigInt(Math.trunc(v));
      }
      if (typeof v === 'boolean') return v ? 1n : 0n;
      if (v instanceof Date) return BigInt(v.getTime());
      if (typeof v === 'string') {
        const t = v.trim();
        if (/^[-+]?\d+$/.test(t)) return BigInt(t);
        const f = Number(t);
        if (t !== '' && Number.isFinite(f)) return BigInt(Math.trunc(f));
      }
      throw fail();
    }
    case 'float': {
      if (isNumeric(v)) return Number(v);
      if (typeof v === 'boolean') return v ? 1 : 0;
      if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
      throw fail();
    }
    case 'string':
      return toText(v);
    case 'boolean': {
      if (typeof v === 'boolean') return v;
      if (isNumeric(v)) return Number(v) !== 0;
      if (typeof v === 'string') {
        const t = v.trim().toLowerCase();
        if (['true', 't', '1'].includes(t)) return true;
        if (['false', 'f', '0'].includes(t)) return false;
      }
      throw fail();
    }
    case 'datetime': {
      const ms = toEpochMs(v);
      if (ms === undefined) throw fail();
      return new Date(ms);
    }
    case 'bytea': {
      if (v instanceof Uint8Array) return v;
      if (typeof v === 'string') return new Uint8Array(Buffer.from(v, 'base64'));
      throw fail();
    }
    default:
      throw new StreamplugError('E_SQL_SEMANTIC', `cast to unknown type "${to}"; expected bigint, float, string, boolean, datetime or bytea`, { to });
  }
}

export function toText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (typeof v === 'object' && v !== null) return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x));
  return String(v);
}

// ---- plugin columns

/** The column type for an argument: the declared type, or inferred from the values when the plugin takes 'any'. */
export function inferValueType(values: readonly unknown[]): Exclude<ValueType, 'any'> {
  let t: Exclude<ValueType, 'any'> | undefined;
  for (const v of values) {
    if (isNull(v)) continue;
    const k: Exclude<ValueType, 'any'> =
      typeof v === 'boolean' ? 'bool' : typeof v === 'bigint' ? 'int64' : typeof v === 'number' ? 'float64' : v instanceof Uint8Array ? 'bytes' : 'string';
    if (t === undefined) t = k;
    else if (t !== k) {
      if ((t === 'int64' && k === 'float64') || (t === 'float64' && k === 'int64')) t = 'float64';
      else return 'string';
    }
  }
  return t ?? 'float64';
}

export function toColumn(values: readonly unknown[], declared: ValueType, where: string): Column {
  const n = values.length;
  const type = declared === 'any' ? inferValueType(values) : declared;
  let nulls: Uint8Array | undefined;
  const markNull = (i: number) => {
    nulls ??= new Uint8Array(n);
    nulls[i] = 1;
  };
  switch (type) {
    case 'float64': {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (isNull(v)) markNull(i);
        else a[i] = typeof v === 'boolean' ? Number(v) : num(v, where);
      }
      return { type, values: a, nulls };
    }
    case 'int64': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (isNull(v)) markNull(i);
        else if (typeof v === 'bigint') a[i] = v;
        else if (typeof v === 'boolean') a[i] = v ? 1n : 0n;
        else a[i] = BigInt(Math.trunc(num(v, where)));
      }
      return { type, values: a, nulls };
    }
    case 'bool': {
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (isNull(v)) markNull(i);
        else if (typeof v === 'boolean') a[i] = v ? 1 : 0;
        else if (isNumeric(v)) a[i] = Number(v) !== 0 ? 1 : 0;
        else throw evalError(`${where} expects a boolean but found ${typeName(v)} ${short(v)}`, { found: typeName(v) });
      }
      return { type, values: a, nulls };
    }
    case 'string': {
      const a: string[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (isNull(v)) {
          markNull(i);
          a[i] = '';
        } else a[i] = toText(v);
      }
      return { type, values: a, nulls };
    }
    case 'bytes': {
      const a: Uint8Array[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (isNull(v)) {
          markNull(i);
          a[i] = new Uint8Array(0);
        } else if (v instanceof Uint8Array) a[i] = v;
        else if (typeof v === 'string') a[i] = new Uint8Array(Buffer.from(v, 'utf8'));
        else throw evalError(`${where} expects bytea but found ${typeName(v)} ${short(v)}`, { found: typeName(v) });
      }
      return { type, values: a, nulls };
    }
  }
}

/** Plugin results back to engine values: int64 becomes a number when it fits exactly, a bigint otherwise. */
export function fromColumn(col: Column, n: number, where: string): unknown[] {
  if (!col || col.values.length < n)
    throw evalError(`${where} returned ${col ? col.values.length : 'no'} rows for a batch of ${n}; the plugin must return one value per row`, { expected: n });
  const out: unknown[] = new Array(n);
  const nulls = col.nulls;
  for (let i = 0; i < n; i++) {
    if (nulls && nulls[i]) {
      out[i] = null;
      continue;
    }
    switch (col.type) {
      case 'int64': {
        const v = col.values[i];
        out[i] = v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
        break;
      }
      case 'bool':
        out[i] = col.values[i] !== 0;
        break;
      default:
        out[i] = col.values[i];
    }
  }
  return out;
}
