/**
 * A small JSONPath for json_path_query/json_path_exists: $, .name, ['name'], [n] (negative from the end),
 * [*], .*, ..name (recursive descent), [start:end] slices and simple filters [?(@.a > 1)].
 */
import { StreamplugError } from '../errors.js';
import { compare, equals } from './values.js';

type Step =
  | { k: 'name'; name: string }
  | { k: 'index'; index: number }
  | { k: 'wild' }
  | { k: 'slice'; start?: number; end?: number }
  | { k: 'desc'; name: string | null }
  | { k: 'filter'; path: Step[]; op?: string; value?: unknown };

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
      } else if (/^(['"]).*\1$/.test(inner)) steps.push({ k: 'name', name: inner.slice(1, -1) });
      else if (inner.startsWith('?(') && inner.endsWith(')')) steps.push(parseFilter(path, inner.slice(2, -1).trim()));
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

function parseFilter(path: string, f: string): Step {
  const m = /^(@[^\s=!<>]*)\s*(==|!=|<=|>=|<|>)\s*(.+)$/.exec(f);
  if (!m) return { k: 'filter', path: parsePath(f, true) };
  let value: unknown;
  const raw = m[3].trim();
  if (/^(['"]).*\1$/.test(raw)) value = raw.slice(1, -1);
  else if (raw === 'true' || raw === 'false') value = raw === 'true';
  else if (raw === 'null') value = null;
  else if (!Number.isNaN(Number(raw))) value = Number(raw);
  else throw bad(path, `filter value ${raw} is not a literal`);
  return { k: 'filter', path: parsePath(m[1], true), op: m[2], value };
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
          for (const c of children(v)) {
            const found = apply(s.path, c);
            if (found.length === 0) continue;
            if (s.op === undefined) next.push(c);
            else {
              const x = found[0];
              const cmp = compare(x, s.value);
              const ok =
                s.op === '==' ? equals(x, s.value)
                : s.op === '!=' ? !equals(x, s.value)
                : cmp === undefined ? false
                : s.op === '<' ? cmp < 0 : s.op === '<=' ? cmp <= 0 : s.op === '>' ? cmp > 0 : cmp >= 0;
              if (ok) next.push(c);
            }
          }
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
