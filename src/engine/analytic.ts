/**
 * eKuiper's analytic functions: lag, latest, changed_col, changed_cols, had_changed and acc_sum /
 * acc_count / acc_avg / acc_min / acc_max, with `OVER (PARTITION BY … WHEN …)`.
 *
 * They keep state for the life of the rule and, as in eKuiper, see every input row before WHERE: the
 * rule runs each call site over the whole pushed batch (column-wise arguments, then one step per row
 * in arrival order) and stores the result per row; the call in the SQL reads it back wherever it sits
 * (SELECT, WHERE, a window's rows). A call whose arguments hold an aggregate (changed_cols("t", true,
 * avg(x))) steps once per group of the result instead.
 */
import { StreamplugError } from '../errors.js';
import type { Expr } from './ast.js';
import type { Row } from './builtins.js';
import type { Eval, Frame, Scope } from './expr.js';
import { compileExpr, containsAggregate, semanticError } from './expr.js';
import { evalError, isNull, num, stableKey, truthy } from './values.js';

export const ANALYTIC_FUNCS = new Set(['lag', 'latest', 'changed_col', 'changed_cols', 'had_changed', 'acc_sum', 'acc_count', 'acc_avg', 'acc_min', 'acc_max']);

/** Several output columns from one select field (changed_cols): the projection spreads them into the row. */
export class ResultCols {
  constructor(readonly cols: Record<string, unknown>) {}
}

type State = { v?: unknown; ring?: unknown[]; last?: Map<string, string>; acc?: Acc };
interface Acc {
  started: boolean;
  sum: number;
  count: number;
  min?: number;
  max?: number;
}

interface Site {
  index: number;
  args: Eval[];
  partition: Eval[];
  when?: Eval;
  step: Step;
  states: Map<string, State>;
}

/** args: the evaluated arguments of one row; names: output names of changed_cols' expressions. */
type Step = (args: unknown[], st: State, valid: boolean) => unknown;

/** The analytic call sites of one rule and the per-row results of the last rows they saw. */
export class AnalyticRegistry {
  readonly sites: Site[] = [];
  private readonly values = new WeakMap<Row, unknown[]>();

  get empty(): boolean {
    return this.sites.length === 0;
  }

  register(site: Omit<Site, 'index' | 'states'>): number {
    const index = this.sites.length;
    this.sites.push({ ...site, index, states: new Map() });
    return index;
  }

  /** Steps every site over the rows, in order, before any filter. */
  run(rows: Row[], now: number): void {
    if (this.sites.length === 0 || rows.length === 0) return;
    const f: Frame = { rows, n: rows.length, now };
    for (const site of this.sites) {
      const cols = site.args.map((a) => a(f));
      const keys = site.partition.map((p) => p(f));
      const when = site.when?.(f);
      for (let i = 0; i < rows.length; i++) {
        const key = keys.length ? keys.map((k) => stableKey(k[i])).join('\u0000') : '';
        let st = site.states.get(key);
        if (!st) site.states.set(key, (st = {}));
        const v = site.step(cols.map((c) => c[i]), st, when ? truthy(when[i]) : true);
        let slot = this.values.get(rows[i]);
        if (!slot) this.values.set(rows[i], (slot = []));
        slot[site.index] = v;
      }
    }
  }

  read(row: Row, index: number): unknown {
    return this.values.get(row)?.[index] ?? null;
  }
}

function arity(e: Extract<Expr, { kind: 'call' }>, min: number, max: number): void {
  const n = e.args.length;
  if (n < min || (max >= 0 && n > max)) {
    const want = max < 0 ? `at least ${min}` : min === max ? `${min}` : `${min} to ${max}`;
    throw new StreamplugError('E_ARITY', `function ${e.name} takes ${want} argument(s) but was given ${n} (line ${e.pos.line}, column ${e.pos.column}); fix the call`, { function: e.name, expected: want, found: n });
  }
}

const same = (a: unknown, b: string | undefined) => b !== undefined && stableKey(a) === b;

function outputName(e: Expr, k: number): string {
  if (e.kind === 'field' || e.kind === 'member' || e.kind === 'call') return e.name;
  return `kuiper_field_${k}`;
}

function bool(v: unknown, fn: string, what: string): boolean {
  if (typeof v !== 'boolean') throw evalError(`${fn}: ${what} must be true or false but found ${String(v)}`, {});
  return v;
}

function accStep(kind: string, conditional: boolean): Step {
  return (a, st, valid) => {
    const acc = (st.acc ??= { started: !conditional, sum: 0, count: 0 });
    if (conditional && !acc.started && a[1] === true) acc.started = true;
    if (valid && acc.started && !isNull(a[0])) {
      const x = kind === 'acc_count' ? 0 : num(a[0], kind);
      acc.count++;
      acc.sum += x;
      acc.min = acc.min === undefined ? x : Math.min(acc.min, x);
      acc.max = acc.max === undefined ? x : Math.max(acc.max, x);
    }
    const out =
      kind === 'acc_sum' ? acc.sum
      : kind === 'acc_count' ? acc.count
      : kind === 'acc_avg' ? (acc.count ? acc.sum / acc.count : 0)
      : kind === 'acc_min' ? (acc.min ?? 0)
      : (acc.max ?? 0);
    // the reset point: the row is still counted, the next one starts afresh
    if (conditional && a[2] === true) st.acc = { started: false, sum: 0, count: 0 };
    return out;
  };
}

function stepFor(e: Extract<Expr, { kind: 'call' }>, names: string[]): Step {
  const fn = e.name.toLowerCase();
  switch (fn) {
    case 'lag':
      arity(e, 1, 4);
      return (a, st, valid) => {
        const size = a.length > 1 ? Math.trunc(num(a[1], 'lag offset')) : 1;
        if (size < 0) throw evalError('lag: the offset must not be negative', {});
        const ignoreNull = a.length > 3 ? bool(a[3], 'lag', 'ignore null') : true;
        const ring = (st.ring ??= new Array(size).fill(a.length > 2 ? a[2] : null));
        if (size === 0) return a[0] ?? null;
        const out = ring[0];
        if (valid && (!ignoreNull || !isNull(a[0]))) {
          ring.shift();
          ring.push(a[0]);
        }
        return out ?? null;
      };
    case 'latest':
      arity(e, 1, 2);
      return (a, st, valid) => {
        if (valid && !isNull(a[0])) {
          st.v = a[0];
          return a[0];
        }
        return isNull(st.v) ? (a.length > 1 ? a[1] : null) : st.v;
      };
    case 'changed_col':
      arity(e, 2, 2);
      return (a, st, valid) => {
        const ignoreNull = bool(a[0], 'changed_col', 'the first argument (ignore null)');
        if (ignoreNull && isNull(a[1])) return null;
        if (!valid) return null;
        const k = stableKey(a[1]);
        if (!st.last?.has('v') || st.last.get('v') !== k) {
          (st.last ??= new Map()).set('v', k);
          return a[1];
        }
        return null;
      };
    case 'had_changed':
      arity(e, 2, -1);
      return (a, st, valid) => {
        if (!valid) return false;
        const ignoreNull = bool(a[0], 'had_changed', 'the first argument (ignore null)');
        const last = (st.last ??= new Map());
        let changed = false;
        const check = (key: string, v: unknown) => {
          if (ignoreNull && isNull(v)) return;
          if (!same(v, last.get(key))) {
            changed = true;
            last.set(key, stableKey(v));
          }
        };
        for (let i = 1; i < a.length; i++) {
          if (names[i] === '*' && a[i] && typeof a[i] === 'object') for (const [k, v] of Object.entries(a[i] as Row)) check('*' + k, v);
          else check(String(i), a[i]);
        }
        return changed;
      };
    case 'changed_cols':
      arity(e, 3, -1);
      return (a, st, valid) => {
        const prefix = a[0] === null || a[0] === undefined ? '' : String(a[0]);
        const ignoreNull = bool(a[1], 'changed_cols', 'the second argument (ignore null)');
        const out: Record<string, unknown> = {};
        if (!valid) return new ResultCols(out);
        const last = (st.last ??= new Map());
        const check = (name: string, v: unknown) => {
          if (ignoreNull && isNull(v)) return;
          if (!same(v, last.get(name))) {
            last.set(name, stableKey(v));
            out[prefix + name] = v;
          }
        };
        for (let i = 2; i < a.length; i++) {
          if (names[i] === '*' && a[i] && typeof a[i] === 'object') for (const [k, v] of Object.entries(a[i] as Row)) check(k, v);
          else check(names[i], a[i]);
        }
        return new ResultCols(out);
      };
    default:
      if (e.args.length !== 1 && e.args.length !== 3) arity(e, 1, e.args.length < 3 ? 1 : 3);
      return accStep(fn, e.args.length === 3);
  }
}

/** Compiles an analytic call: registers it with the rule (or, over aggregates, steps it per group). */
export function compileAnalytic(e: Extract<Expr, { kind: 'call' }>, scope: Scope, registry: AnalyticRegistry): Eval {
  const star = (x: Expr) => x.kind === 'star';
  const names = e.args.map((x, k) => (star(x) ? '*' : outputName(x, k)));
  const step = stepFor(e, names);
  const fn = e.name.toLowerCase();
  if (e.args.some(star) && fn !== 'had_changed' && fn !== 'changed_cols' && fn !== 'changed_col')
    throw semanticError(`${e.name}(*) is not allowed; only changed_col, changed_cols and had_changed take *`, e.pos);
  const lazy = e.args.some((x) => containsAggregate(x, scope));
  // arguments may name any select alias (lag(b) where b is itself lag(…) + 1): it is inlined
  const aliasExprs = new Map(scope.allAliases ?? scope.aliasExprs ?? []);
  const argScope: Scope = lazy ? scope : { ...scope, aggregatesAllowed: false, aliasColumns: undefined, aliasExprs };
  const compileArg = (x: Expr): Eval => (star(x) ? (f) => f.rows.slice(0, f.n) : compileExpr(x, argScope));
  const args = e.args.map(compileArg);
  const partition = (e.over?.partitionBy ?? []).map((x) => compileExpr(x, argScope));
  const when = e.over?.when ? compileExpr(e.over.when, argScope) : undefined;
  if (lazy) {
    const states = new Map<string, State>();
    return (f) => {
      const cols = args.map((a) => a(f));
      const keys = partition.map((p) => p(f));
      const w = when?.(f);
      const out = new Array(f.n);
      for (let i = 0; i < f.n; i++) {
        const key = keys.map((k) => stableKey(k[i])).join('\u0000');
        let st = states.get(key);
        if (!st) states.set(key, (st = {}));
        out[i] = step(cols.map((c) => c[i]), st, w ? truthy(w[i]) : true);
      }
      return out;
    };
  }
  const index = registry.register({ args, partition, when, step });
  return (f) => {
    const out = new Array(f.n);
    for (let i = 0; i < f.n; i++) out[i] = registry.read(f.rows[i], index);
    return out;
  };
}
