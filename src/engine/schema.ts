/**
 * A typed stream's schema applied to each arriving row, the way eKuiper's JSON decoder applies it:
 * fields the schema does not name are left out, a number for a string field becomes its text, BIGINT
 * values become integers (so arithmetic on them stays integer), and a value of the wrong type (text
 * for a number, a number with a fraction for a BIGINT) makes that row an error — the other rows of the
 * batch or window go on.
 */
import type { FieldType, StreamField } from './ast.js';
import type { Row } from './builtins.js';
import { evalError, isNull, typeName } from './values.js';

const GO_TYPE: Record<string, string> = { bigint: 'int64', float: 'float64', string: 'string', boolean: 'bool', datetime: 'datetime', bytea: 'bytea', array: 'array', struct: 'struct' };

/** eKuiper's words: `field size type mismatch: cannot convert string(red) to int64`. */
function wrong(name: string, v: unknown, t: FieldType): Error {
  const goKind = typeof v === 'string' ? 'string' : typeof v === 'boolean' ? 'bool' : typeof v === 'number' ? (Number.isInteger(v) ? 'int64' : 'float64') : typeof v === 'bigint' ? 'int64' : Array.isArray(v) ? '[]interface {}' : 'map[string]interface {}';
  const shown = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return evalError(`field ${name} type mismatch: cannot convert ${goKind}(${shown}) to ${GO_TYPE[t.type]}`, { field: name, found: typeName(v), expected: t.type, kind: jsonKind(v) });
}

function jsonKind(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'bigint') return 'number';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  return typeof v;
}

function coerce(name: string, v: unknown, t: FieldType): unknown {
  if (isNull(v)) return null;
  switch (t.type) {
    case 'bigint':
      if (typeof v === 'bigint') return v;
      if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
      if (typeof v === 'boolean') return v ? 1n : 0n;
      throw wrong(name, v, t);
    case 'float':
      if (typeof v === 'number') return v;
      if (typeof v === 'bigint') return Number(v);
      if (typeof v === 'boolean') return v ? 1 : 0;
      throw wrong(name, v, t);
    case 'string':
      if (typeof v === 'string') return v;
      if (typeof v === 'number' || typeof v === 'bigint') return String(v);
      throw wrong(name, v, t);
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (typeof v === 'string') {
        const s = v.toLowerCase();
        if (['true', 't', '1'].includes(s)) return true;
        if (['false', 'f', '0'].includes(s)) return false;
      }
      if (typeof v === 'number') return v !== 0;
      throw wrong(name, v, t);
    case 'datetime':
      if (typeof v === 'string' || typeof v === 'number' || v instanceof Date) return v;
      if (typeof v === 'bigint') return Number(v);
      throw wrong(name, v, t);
    case 'bytea':
      if (v instanceof Uint8Array) return v;
      if (typeof v === 'string') return new Uint8Array(Buffer.from(v, 'base64'));
      throw wrong(name, v, t);
    case 'array': {
      if (!Array.isArray(v)) throw wrong(name, v, t);
      return v.map((x, i) => coerce(`${name}[${i}]`, x, t.items));
    }
    case 'struct': {
      if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array || v instanceof Date) throw wrong(name, v, t);
      return coerceRow(v as Row, t.fields, name + '.');
    }
  }
}

/** A new row holding the schema's fields, converted; throws E_EVAL for a value of the wrong type. */
export function coerceRow(row: Row, fields: StreamField[], prefix = ''): Row {
  const out: Row = {};
  for (const f of fields) {
    // the schema's name, or a key of the row that differs only in case (eKuiper matches names so)
    let key: string | undefined = Object.hasOwn(row, f.name) ? f.name : undefined;
    if (key === undefined) {
      const lower = f.name.toLowerCase();
      key = Object.keys(row).find((k) => k.toLowerCase() === lower);
      if (key === undefined) continue;
    }
    out[f.name] = coerce(prefix + f.name, row[key], f.type);
  }
  return out;
}
