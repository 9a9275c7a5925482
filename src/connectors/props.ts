/**
 * Typed reads of connector properties. Keys match case-insensitively because stream options arrive
 * upper-case from SQL (`CONF_KEY`, `FORMAT`) while sink properties are camelCase in rule JSON.
 */
import { StreamplugError } from '../errors.js';
import type { Props } from './types.js';

function lookup(props: Props, name: string): unknown {
  if (name in props) return props[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(props)) if (k.toLowerCase() === lower) return props[k];
  return undefined;
}

function bad(where: string, name: string, found: unknown, expected: string): StreamplugError {
  return new StreamplugError(
    'E_CONNECTOR_CONFIG',
    `${where}: property "${name}" is ${JSON.stringify(found)}, expected ${expected}; fix the property and retry`,
    { connector: where, property: name, found, expected },
  );
}

export class PropReader {
  constructor(readonly where: string, readonly props: Props) {}

  has(name: string): boolean {
    const v = lookup(this.props, name);
    return v !== undefined && v !== null && v !== '';
  }

  raw(name: string): unknown {
    return lookup(this.props, name);
  }

  string(name: string): string | undefined;
  string(name: string, dflt: string): string;
  string(name: string, dflt?: string): string | undefined {
    const v = lookup(this.props, name);
    if (v === undefined || v === null || v === '') return dflt;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw bad(this.where, name, v, 'a string');
  }

  requireString(name: string): string {
    const v = this.string(name);
    if (v === undefined) throw bad(this.where, name, v, 'a non-empty string');
    return v;
  }

  number(name: string): number | undefined;
  number(name: string, dflt: number): number;
  number(name: string, dflt?: number): number | undefined {
    const v = lookup(this.props, name);
    if (v === undefined || v === null || v === '') return dflt;
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw bad(this.where, name, v, 'a number');
    return n;
  }

  /** A non-negative integer. */
  count(name: string, dflt: number): number {
    const n = this.number(name, dflt);
    if (!Number.isInteger(n) || n < 0) throw bad(this.where, name, n, 'a non-negative integer');
    return n;
  }

  bool(name: string, dflt: boolean): boolean {
    const v = lookup(this.props, name);
    if (v === undefined || v === null || v === '') return dflt;
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 1) return true;
    if (v === 'false' || v === 0) return false;
    throw bad(this.where, name, v, 'true or false');
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], dflt: T): T {
    const v = this.string(name, dflt);
    const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
    if (!hit) throw bad(this.where, name, v, `one of ${allowed.join(', ')}`);
    return hit;
  }

  /** A string→string map given as an object or as a JSON object string. */
  stringMap(name: string): Record<string, string> {
    let v = lookup(this.props, name);
    if (v === undefined || v === null || v === '') return {};
    if (typeof v === 'string') {
      try {
        v = JSON.parse(v);
      } catch {
        throw bad(this.where, name, v, 'an object of strings');
      }
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(this.where, name, v, 'an object of strings');
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'string' ? x : String(x);
    return out;
  }

  fail(name: string, found: unknown, expected: string): StreamplugError {
    return bad(this.where, name, found, expected);
  }
}
