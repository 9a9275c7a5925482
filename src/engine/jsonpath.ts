/**
 * A small JSONPath for json_path_query/json_path_exists: $, .name, ['name'], [n] (negative from the end),
 * [*], .*, ..name (recursive descent), [start:end] slices and simple filters [?(@.a > 1)].
 */
import { StreamplugError } from '../errors.js';
import { compare, equals } from './values.js';

type Step =
  | { k: 'name'; name: string }
  | { k: 'index'; index: number }
  | { k: 'union'; keys: (string | number)[] }
  | { k: 'wild' }
  | { k: 'slice'; start?: number; end?: number }
  | { k: 'desc'; name: string | null }
  | { k: 'filter'; test: Test };

/** A filter's condition: comparisons and existence tests joined by && and ||. */
type Test =
  | { t: 'cmp'; path: Step[]; op?: string; value?: unknown }
  | { t: 'and' | 'or'; a: Test; b: Test }
  | { t: 'not'; a: Test };

const cache = new Map<string, Step[]>();

function bad(path: string, why: string): StreamplugError {
  return new StreamplugError('E_EVAL', `JSON path "${path}" is malformed: ${why}; expected something like $.a.b[0]`, { path });
}

function parsePath(path: string, relative = false): Step[] {
  const hit = cache.get(path);
  if (hit && !relative) return hit;
  let i = 0;
  const root = relative ? '@' : '$';
  if (path[i] !== root) throw bad(path, `it must start with ${root}`);
  i++;
  const steps: Step[] = [];
  const ident = () => {
    const m = /^[A-Za-z0-9_\-$]+/.exec(path.slice(i));
    if (!m) throw bad(path, `a name is expected at ${i}`);
    i += m[0].length;
    return m[0];
  };
  while (i < path.length) {
    if (path.startsWith('..', i)) {
      i += 2;
      if (path[i] === '*') {
        i++;
        steps.push({ k: 'desc', name: null });
      } else steps.push({ k: 'desc', name: ident() });
    } else if (path[i] === '.') {
      i++;
      if (path[i] === '*') {
        i++;
        steps.push({ k: 'wild' });
      } else steps.push({ k: 'name', name: ident() });
    } else if (path[i] === '[') {
      const close = findClose(path, i);
      const inner = path.slice(i + 1, close).trim();
      i = close + 1;
      if (inner === '*') steps.push({ k: 'wild' });
      else if (/^-?\d+$/.test(inner)) steps.push({ k: 'index', index: Number(inner) });
      else if (/^(-?\d+)?:(-?\d+)?$/.test(inner)) {
        const [a, b] = inner.split(':');
        steps.push({ k: 'slice', start: a ? Number(a) : undefined, end: b ? Number(b) : undefined });
      } else if (/^\s*(-?\d+|'[^']*'|"[^"]*")(\s*,\s*(-?\d+|'[^']*'|"[^"]*"))+\s*$/.test(inner))
        steps.push({ k: 'union', keys: inner.split(',').map((x) => x.trim()).map((x) => (/^-?\d+$/.test(x) ? Number(x) : x.slice(1, -1))) });
      else if (/^(['"]).*\1$/.test(inner)) steps.push({ k: 'name', name: inner.slice(1, -1) });
      else if (inner.startsWith('?')) steps.push({ k: 'filter', test: parseTest(path, stripParens(inner.slice(1).trim())) });
      else throw bad(path, `cannot read [${inner}]`);
    } else throw bad(path, `unexpected '${path[i]}' at ${i}`);
  }
  if (!relative) cache.set(path, steps);
  return steps;
}

function findClose(path: string, open: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let j = open; j < path.length; j++) {
    const c = path[j];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[') depth++;
    else if (c === ']' && --depth === 0) return j;
  }
  throw bad(path, "a '[' is never closed");
}

/** Drops parentheses around the whole text: `(@.a > 1)` → `@.a > 1`. */
function stripParens(f: string): string {
  while (f.startsWith('(') && matchingParen(f, 0) === f.length - 1) f = f.slice(1, -1).trim();
  return f;
}

function matchingParen(f: string, open: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let j = open; j < f.length; j++) {
    const c = f[j];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return j;
  }
  return -1;
}

/** Splits at the last top-level occurrence of op (outside quotes and parentheses). */
function splitTop(f: string, op: string): [string, string] | undefined {
  let depth = 0;
  let quote: string | null = null;
  let at = -1;
  for (let j = 0; j < f.length; j++) {
    const c = f[j];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (depth === 0 && f.startsWith(op, j)) at = j;
  }
  return at < 0 ? undefined : [f.slice(0, at).trim(), f.slice(at + op.length).trim()];
}

function parseTest(path: string, f: string): Test {
  f = stripParens(f.trim());
  for (const op of ['||', '&&'] as const) {
    const parts = splitTop(f, op);
    if (parts) return { t: op === '||' ? 'or' : 'and', a: parseTest(path, parts[0]), b: parseTest(path, parts[1]) };
  }
  if (f.startsWith('!')) return { t: 'not', a: parseTest(path, f.slice(1)) };
  return parseFilter(path, f);
}

function parseFilter(path: string, f: string): Test {
  const m = /^(@[^\s=!<>]*)\s*(==|!=|<=|>=|<|>)\s*(.+)$/.exec(f);
  if (!m) return { t: 'cmp', path: parsePath(f, true) };
  let value: unknown;
  const raw = m[3].trim();
  if (/^(['"]).*\1$/.test(raw)) value = raw.slice(1, -1);
  else if (raw === 'true' || raw === 'false') value = raw === 'true';
  else if (raw === 'null') value = null;
  else if (!Number.isNaN(Number(raw))) value = Number(raw);
  else throw bad(path, `filter value ${raw} is not a literal`);
  return { t: 'cmp', path: parsePath(m[1], true), op: m[2], value };
}

function passes(test: Test, c: unknown): boolean {
  switch (test.t) {
    case 'and': return passes(test.a, c) && passes(test.b, c);
    case 'or': return passes(test.a, c) || passes(test.b, c);
    case 'not': return !passes(test.a, c);
    case 'cmp': {
      const found = apply(test.path, c);
      if (found.length === 0) return false;
      if (test.op === undefined) return true;
      const x = found[0];
      const cmp = compare(x, test.value);
      return test.op === '==' ? equals(x, test.value)
        : test.op === '!=' ? !equals(x, test.value)
        : cmp === undefined ? false
        : test.op === '<' ? cmp < 0 : test.op === '<=' ? cmp <= 0 : test.op === '>' ? cmp > 0 : cmp >= 0;
    }
  }
}

function children(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (v && typeof v === 'object') return Object.values(v);
  return [];
}

function apply(steps: Step[], doc: unknown): unknown[] {
  let cur: unknown[] = [doc];
  for (const s of steps) {
    const next: unknown[] = [];
    for (const v of cur) {
      switch (s.k) {
        case 'name':
          if (v && typeof v === 'object' && !Array.isArray(v) && s.name in v) next.push((v as Record<string, unknown>)[s.name]);
          break;
        case 'index':
          if (Array.isArray(v)) {
            const i = s.index < 0 ? v.length + s.index : s.index;
            if (i >= 0 && i < v.length) next.push(v[i]);
          }
          break;
        case 'wild':
          next.push(...children(v));
          break;
        case 'union':
          for (const key of s.keys) {
            if (typeof key === 'number' && Array.isArray(v)) {
              const i = key < 0 ? v.length + key : key;
              if (i >= 0 && i < v.length) next.push(v[i]);
            } else if (typeof key === 'string' && v && typeof v === 'object' && !Array.isArray(v) && key in v) next.push((v as Record<string, unknown>)[key]);
          }
          break;
        case 'slice':
          if (Array.isArray(v)) next.push(...v.slice(s.start, s.end));
          break;
        case 'desc': {
          const walk = (x: unknown) => {
            if (x && typeof x === 'object') {
              if (s.name === null) next.push(...children(x));
              else if (!Array.isArray(x) && s.name in x) next.push((x as Record<string, unknown>)[s.name]);
              for (const c of children(x)) walk(c);
            }
          };
          walk(v);
          break;
        }
        case 'filter':
          for (const c of children(v)) if (passes(s.test, c)) next.push(c);
          break;
      }
    }
    cur = next;
  }
  return cur;
}

function isDefinite(steps: Step[]): boolean {
  return steps.every((s) => s.k === 'name' || s.k === 'index');
}

function asDoc(v: unknown): unknown {
  if (typeof v === 'string') {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  return v;
}

/** eKuiper's json_path_query: a definite path gives the value, otherwise the array of matches; null when nothing matches. */
export function jsonPathQuery(doc: unknown, path: string): unknown {
  const steps = parsePath(path);
  const found = apply(steps, asDoc(doc));
  if (isDefinite(steps)) return found.length ? found[0] : null;
  return found;
}

export function jsonPathQueryFirst(doc: unknown, path: string): unknown {
  const found = apply(parsePath(path), asDoc(doc));
  return found.length ? found[0] : null;
}

export function jsonPathExists(doc: unknown, path: string): boolean {
  return apply(parsePath(path), asDoc(doc)).length > 0;
}
