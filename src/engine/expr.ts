/**
 * Compiles expressions into column-wise evaluators: each takes a Frame (a batch of rows, or of groups)
 * and returns one value per row/group. Plugin scalars are called once per frame through callBatch,
 * plugin aggregates once per frame through callGroups.
 */
import { StreamplugError } from '../errors.js';
import type { ArgInfo, Column, FunctionInstance, PluginFunction, Scalar, ValueType } from '../plugins/types.js';
import type { Expr, StreamField, FieldType } from './ast.js';
import { AGGREGATES, lookupBuiltin, SCALARS, WINDOW_FUNCS, type Row } from './builtins.js';
import type { Pos } from './lexer.js';
import { compare, equals, evalError, fromColumn, isNull, num, short, toColumn, toText, truthy, typeName } from './values.js';

/** Resolves plugin functions by name; the plugin registry satisfies it. */
export interface FunctionResolver {
  getFunction(name: string): PluginFunction | undefined;
}

/**
 * What an evaluator runs over. `rows` has `n` entries: input rows, or one representative row per group.
 * When grouped, `group.rows` holds every input row ordered by group and group g is
 * rows [offsets[g], offsets[g+1]).
 */
export interface Frame {
  rows: Row[];
  n: number;
  group?: { rows: Row[]; offsets: Uint32Array };
  window?: { start: number; end: number };
  now: number;
  /** Output columns by select position, for ORDER BY on aliases. */
  projected?: unknown[][];
}

export type Eval = (f: Frame) => unknown[];

export interface Scope {
  ruleId: string;
  stream: string;
  alias?: string;
  schema: StreamField[] | null;
  functions?: FunctionResolver;
  /** Plugin instances created while compiling; the rule closes them. */
  instances: FunctionInstance[];
  /** The clause being compiled, for messages. */
  clause: string;
  aggregatesAllowed: boolean;
  inAggregate?: boolean;
  /** HAVING: select aliases are inlined. */
  aliasExprs?: Map<string, Expr>;
  /** ORDER BY: select aliases read the projected column. */
  aliasColumns?: Map<string, number>;
}

export function semanticError(message: string, pos?: Pos): StreamplugError {
  const at = pos ? ` (line ${pos.line}, column ${pos.column})` : '';
  return new StreamplugError('E_SQL_SEMANTIC', message + at, pos ? { line: pos.line, column: pos.column, offset: pos.offset } : {});
}

const fill = (n: number, v: unknown): unknown[] => new Array(n).fill(v);

/** A frame holding only the selected rows (and, when grouped, only the selected groups' input rows). */
export function subFrame(f: Frame, idx: number[]): Frame {
  const rows = idx.map((i) => f.rows[i]);
  const out: Frame = { rows, n: idx.length, window: f.window, now: f.now };
  if (f.group) {
    const inner: Row[] = [];
    const offsets = new Uint32Array(idx.length + 1);
    idx.forEach((g, k) => {
      for (let i = f.group!.offsets[g]; i < f.group!.offsets[g + 1]; i++) inner.push(f.group!.rows[i]);
      offsets[k + 1] = inner.length;
    });
    out.group = { rows: inner, offsets };
  }
  if (f.projected) out.projected = f.projected.map((c) => idx.map((i) => c[i]));
  return out;
}

/** The frame an aggregate's arguments are evaluated over: every input row of every group. */
function innerFrame(f: Frame, pos: Pos): Frame {
  if (!f.group) throw semanticError('an aggregate function was evaluated outside a group', pos);
  return { rows: f.group.rows, n: f.group.rows.length, window: f.window, now: f.now };
}

export function isAggregateCall(e: Expr, scope: Pick<Scope, 'functions'>): boolean {
  if (e.kind !== 'call') return false;
  const b = lookupBuiltin(e.name);
  if (b) return b.kind === 'aggregate';
  return resolvePlugin(e.name, scope)?.kind === 'aggregate';
}

/** True when the expression contains an aggregate call outside any nested aggregate. */
export function containsAggregate(e: Expr, scope: Pick<Scope, 'functions'>): boolean {
  if (isAggregateCall(e, scope)) return true;
  return childExprs(e).some((c) => containsAggregate(c, scope));
}

function childExprs(e: Expr): Expr[] {
  switch (e.kind) {
    case 'member': return [e.object];
    case 'index': return [e.object, e.index];
    case 'unary': return [e.operand];
    case 'binary': return [e.left, e.right];
    case 'like': return [e.operand, e.pattern];
    case 'in': return [e.operand, ...e.list];
    case 'between': return [e.operand, e.low, e.high];
    case 'isnull': return [e.operand];
    case 'case': return [...(e.operand ? [e.operand] : []), ...e.whens.flatMap((w) => [w.when, w.then]), ...(e.else ? [e.else] : [])];
    case 'call': return e.args;
    default: return [];
  }
}

function resolvePlugin(name: string, scope: Pick<Scope, 'functions'>): PluginFunction | undefined {
  return scope.functions?.getFunction(name);
}

/** The column type an expression will have, as far as the SQL says (for plugin validate()). */
export function staticType(e: Expr, scope: Scope): ValueType {
  switch (e.kind) {
    case 'literal':
      if (typeof e.value === 'number') return Number.isInteger(e.value) ? 'int64' : 'float64';
      if (typeof e.value === 'string') return 'string';
      if (typeof e.value === 'boolean') return 'bool';
      return 'any';
    case 'field': {
      const f = scope.schema?.find((x) => x.name === e.name);
      return f ? fieldValueType(f.type) : 'any';
    }
    case 'like': case 'in': case 'between': case 'isnull': return 'bool';
    case 'unary': return e.op === 'NOT' ? 'bool' : staticType(e.operand, scope);
    case 'binary': {
      if (['=', '!=', '<', '<=', '>', '>=', 'AND', 'OR'].includes(e.op)) return 'bool';
      if (e.op === '||') return 'string';
      const l = staticType(e.left, scope);
      const r = staticType(e.right, scope);
      if (l === 'int64' && r === 'int64' && e.op !== '/') return 'int64';
      if ((l === 'int64' || l === 'float64') && (r === 'int64' || r === 'float64')) return 'float64';
      return 'any';
    }
    case 'call': {
      const b = lookupBuiltin(e.name);
      if (b) return b.type ?? 'any';
      const p = resolvePlugin(e.name, scope);
      if (!p) return 'any';
      if (p.resultType === 'like-arg0') return e.args[0] ? staticType(e.args[0], scope) : 'any';
      return p.resultType;
    }
    default:
      return 'any';
  }
}

function fieldValueType(t: FieldType): ValueType {
  switch (t.type) {
    case 'bigint': return 'int64';
    case 'float': return 'float64';
    case 'string': return 'string';
    case 'boolean': return 'bool';
    case 'bytea': return 'bytes';
    default: return 'any';
  }
}

/** Column-wise map with null propagation. */
function map1(a: unknown[], fn: (x: unknown) => unknown): unknown[] {
  const out = new Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = isNull(a[i]) ? null : fn(a[i]);
  return out;
}
function map2(a: unknown[], b: unknown[], fn: (x: unknown, y: unknown) => unknown): unknown[] {
  const out = new Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = isNull(a[i]) || isNull(b[i]) ? null : fn(a[i], b[i]);
  return out;
}

function arith(op: string, x: unknown, y: unknown): unknown {
  if (typeof x === 'bigint' && typeof y === 'bigint') {
    switch (op) {
      case '+': return x + y;
      case '-': return x - y;
      case '*': return x * y;
      case '/':
        if (y === 0n) throw evalError('division by zero; guard the divisor with CASE or WHERE', {});
        return x / y;
      case '%':
        if (y === 0n) throw evalError('modulo by zero; guard the divisor with CASE or WHERE', {});
        return x % y;
    }
  }
  const where = `operator ${op}`;
  if (op === '+' && typeof x === 'string' && typeof y === 'string') return x + y;
  const a = num(x, where);
  const b = num(y, where);
  switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    case '/':
      if (b === 0) throw evalError('division by zero; guard the divisor with CASE or WHERE', {});
      return a / b;
    default:
      if (b === 0) throw evalError('modulo by zero; guard the divisor with CASE or WHERE', {});
      return a % b;
  }
}

function bitop(op: string, x: unknown, y: unknown): unknown {
  const toBig = (v: unknown) => {
    if (typeof v === 'bigint') return v;
    const n = num(v, `operator ${op}`);
    if (!Number.isInteger(n)) throw evalError(`operator ${op} expects integers but found ${n}`, {});
    return BigInt(n);
  };
  const a = toBig(x);
  const b = toBig(y);
  const r = op === '&' ? a & b : op === '|' ? a | b : a ^ b;
  return Number.isSafeInteger(Number(r)) ? Number(r) : r;
}

const likeCache = new Map<string, RegExp>();
/** SQL LIKE: % any run, _ one character, \ escapes. */
export function likeRegex(pattern: string): RegExp {
  let r = likeCache.get(pattern);
  if (r) return r;
  let src = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\' && i + 1 < pattern.length) src += pattern[++i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else if (c === '%') src += '[\\s\\S]*';
    else if (c === '_') src += '[\\s\\S]';
    else src += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  r = new RegExp(src + '$');
  if (likeCache.size > 1000) likeCache.clear();
  likeCache.set(pattern, r);
  return r;
}

function member(v: unknown, name: string): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Date)) return (v as Row)[name] ?? null;
  if (typeof v === 'string') {
    // JSON text from a schemaless source: look inside
    try {
      const o = JSON.parse(v);
      if (o && typeof o === 'object') return o[name] ?? null;
    } catch {
      /* not JSON */
    }
  }
  return null;
}

function index(v: unknown, i: unknown): unknown {
  if (Array.isArray(v)) {
    const k = num(i, 'array index');
    if (!Number.isInteger(k)) throw evalError(`array index must be an integer, found ${k}`, {});
    return v[k < 0 ? v.length + k : k] ?? null;
  }
  if (typeof i === 'string') return member(v, i);
  return null;
}

export function compileExpr(e: Expr, scope: Scope): Eval {
  switch (e.kind) {
    case 'literal': {
      const v = e.value;
      return (f) => fill(f.n, v);
    }
    case 'star':
      throw semanticError(`'*' is only allowed as a select field or inside count(*)/collect(*)`, e.pos);
    case 'field':
      return compileField(e.name, e.pos, scope);
    case 'member': {
      // stream.field / alias.field resolve to the field; otherwise struct access
      const o = e.object;
      if (o.kind === 'field' && (o.name === scope.stream || o.name === scope.alias) && !scope.schema?.some((x) => x.name === o.name))
        return compileField(e.name, e.pos, scope, true);
      const obj = compileExpr(e.object, scope);
      const name = e.name;
      return (f) => map1(obj(f), (v) => member(v, name));
    }
    case 'index': {
      const obj = compileExpr(e.object, scope);
      const idx = compileExpr(e.index, scope);
      return (f) => map2(obj(f), idx(f), index);
    }
    case 'unary': {
      const a = compileExpr(e.operand, scope);
      if (e.op === 'NOT')
        return (f) => map1(a(f), (v) => {
          if (typeof v !== 'boolean') throw evalError(`NOT expects a boolean but found ${typeName(v)} ${short(v)}`, {});
          return !v;
        });
      if (e.op === '+') return (f) => map1(a(f), (v) => num(v, 'unary +'));
      return (f) => map1(a(f), (v) => (typeof v === 'bigint' ? -v : -num(v, 'unary -')));
    }
    case 'binary':
      return compileBinary(e.op, compileExpr(e.left, scope), compileExpr(e.right, scope));
    case 'like': {
      const a = compileExpr(e.operand, scope);
      const p = compileExpr(e.pattern, scope);
      const not = e.not;
      return (f) => map2(a(f), p(f), (x, pat) => likeRegex(toText(pat)).test(toText(x)) !== not);
    }
    case 'in': {
      const a = compileExpr(e.operand, scope);
      const list = e.list.map((x) => compileExpr(x, scope));
      const not = e.not;
      return (f) => {
        const va = a(f);
        const vl = list.map((l) => l(f));
        return va.map((v, i) => (isNull(v) ? null : vl.some((c) => equals(v, c[i])) !== not));
      };
    }
    case 'between': {
      const a = compileExpr(e.operand, scope);
      const lo = compileExpr(e.low, scope);
      const hi = compileExpr(e.high, scope);
      const not = e.not;
      return (f) => {
        const va = a(f);
        const vl = lo(f);
        const vh = hi(f);
        return va.map((v, i) => {
          if (isNull(v) || isNull(vl[i]) || isNull(vh[i])) return null;
          const c1 = compare(v, vl[i]);
          const c2 = compare(v, vh[i]);
          if (c1 === undefined || c2 === undefined) return null;
          return (c1 >= 0 && c2 <= 0) !== not;
        });
      };
    }
    case 'isnull': {
      const a = compileExpr(e.operand, scope);
      const not = e.not;
      return (f) => a(f).map((v) => isNull(v) !== not);
    }
    case 'case':
      return compileCase(e, scope);
    case 'call':
      return compileCall(e, scope);
  }
}

function compileField(name: string, pos: Pos, scope: Scope, qualified = false): Eval {
  if (!qualified && scope.aliasColumns?.has(name)) {
    const k = scope.aliasColumns.get(name)!;
    return (f) => f.projected![k];
  }
  if (!qualified && scope.aliasExprs?.has(name)) {
    const inner = scope.aliasExprs.get(name)!;
    return compileExpr(inner, { ...scope, aliasExprs: undefined });
  }
  if (scope.schema && !scope.schema.some((x) => x.name === name)) {
    const known = scope.schema.map((x) => x.name).join(', ');
    throw semanticError(`unknown field ${name} in ${scope.clause}: stream ${scope.stream} has ${known || 'no fields'}; fix the name or the stream definition`, pos);
  }
  return (f) => {
    const out = new Array(f.n);
    for (let i = 0; i < f.n; i++) out[i] = f.rows[i][name] ?? null;
    return out;
  };
}

function compileBinary(op: string, l: Eval, r: Eval): Eval {
  switch (op) {
    case 'AND':
    case 'OR': {
      const isAnd = op === 'AND';
      return (f) => {
        const a = l(f);
        const b = r(f);
        return a.map((x, i) => {
          const y = b[i];
          for (const v of [x, y]) if (!isNull(v) && typeof v !== 'boolean') throw evalError(`${op} expects booleans but found ${typeName(v)} ${short(v)}`, {});
          if (isAnd) return x === false || y === false ? false : isNull(x) || isNull(y) ? null : true;
          return x === true || y === true ? true : isNull(x) || isNull(y) ? null : false;
        });
      };
    }
    case '=':
      return (f) => map2(l(f), r(f), (x, y) => equals(x, y));
    case '!=':
      return (f) => map2(l(f), r(f), (x, y) => !equals(x, y));
    case '<': case '<=': case '>': case '>=':
      return (f) =>
        map2(l(f), r(f), (x, y) => {
          // values of kinds that do not order (text vs number) compare as unknown, like a null
          const c = compare(x, y);
          if (c === undefined) return null;
          return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
        });
    case '||':
      return (f) => map2(l(f), r(f), (x, y) => toText(x) + toText(y));
    case '&': case '|': case '^':
      return (f) => map2(l(f), r(f), (x, y) => bitop(op, x, y));
    default:
      return (f) => map2(l(f), r(f), (x, y) => arith(op, x, y));
  }
}

/** CASE evaluates each branch only over the rows that reach it, so a guarded division never runs on a zero. */
function compileCase(e: Extract<Expr, { kind: 'case' }>, scope: Scope): Eval {
  const operand = e.operand ? compileExpr(e.operand, scope) : undefined;
  const whens = e.whens.map((w) => ({ when: compileExpr(w.when, scope), then: compileExpr(w.then, scope) }));
  const otherwise = e.else ? compileExpr(e.else, scope) : undefined;
  return (f) => {
    const out: unknown[] = fill(f.n, null);
    let pending = Array.from({ length: f.n }, (_, i) => i);
    let frame = f;
    let opVals = operand ? operand(f) : undefined;
    for (const w of whens) {
      if (pending.length === 0) break;
      const cond = w.when(frame);
      const hit: number[] = [];
      const miss: number[] = [];
      cond.forEach((c, k) => {
        const ok = opVals ? !isNull(opVals[k]) && !isNull(c) && equals(opVals[k], c) : truthy(c);
        (ok ? hit : miss).push(k);
      });
      if (hit.length) {
        const vals = w.then(hit.length === frame.n ? frame : subFrame(frame, hit));
        hit.forEach((k, j) => (out[pending[k]] = vals[j]));
      }
      if (miss.length !== frame.n) {
        frame = subFrame(frame, miss);
        if (opVals) opVals = miss.map((k) => opVals![k]);
        pending = miss.map((k) => pending[k]);
      }
    }
    if (otherwise && pending.length) {
      const vals = otherwise(frame);
      pending.forEach((p, j) => (out[p] = vals[j]));
    }
    return out;
  };
}

function literalOf(e: Expr): Scalar | undefined {
  if (e.kind === 'literal') return e.value;
  if (e.kind === 'unary' && e.op === '-' && e.operand.kind === 'literal' && typeof e.operand.value === 'number') return -e.operand.value;
  return undefined;
}

function arityError(name: string, min: number, max: number, found: number, pos: Pos): StreamplugError {
  const want = max < 0 ? `at least ${min}` : min === max ? `${min}` : `${min} to ${max}`;
  return new StreamplugError('E_ARITY', `function ${name} takes ${want} argument(s) but was given ${found} (line ${pos.line}, column ${pos.column}); fix the call`, {
    function: name, expected: want, found, line: pos.line, column: pos.column, offset: pos.offset,
  });
}

function compileCall(e: Extract<Expr, { kind: 'call' }>, scope: Scope): Eval {
  const lname = e.name.toLowerCase();
  if (WINDOW_FUNCS.has(lname)) {
    if (e.args.length) throw arityError(lname, 0, 0, e.args.length, e.pos);
    const key = lname === 'window_start' ? 'start' : 'end';
    return (f) => {
      if (!f.window) return fill(f.n, null);
      return fill(f.n, f.window[key]);
    };
  }
  const builtin = lookupBuiltin(e.name);
  const plugin = builtin ? undefined : scope.functions?.getFunction(e.name);
  if (!builtin && !plugin)
    throw new StreamplugError('E_UNKNOWN_FUNCTION', `unknown function ${e.name} (line ${e.pos.line}, column ${e.pos.column}): not a built-in and no loaded plugin provides it; install the plugin or fix the name`, {
      function: e.name, line: e.pos.line, column: e.pos.column, offset: e.pos.offset,
    });
  const isAgg = builtin ? builtin.kind === 'aggregate' : plugin!.kind === 'aggregate';
  if (isAgg) {
    if (scope.inAggregate) throw semanticError(`aggregate ${e.name} is nested inside another aggregate; aggregate the rows once`, e.pos);
    if (!scope.aggregatesAllowed) throw semanticError(`aggregate ${e.name} is not allowed in ${scope.clause}; use it in SELECT, HAVING or ORDER BY`, e.pos);
  }
  const argScope: Scope = isAgg ? { ...scope, inAggregate: true, aggregatesAllowed: false, aliasColumns: undefined, aliasExprs: undefined } : scope;
  const star = e.args.length === 1 && e.args[0].kind === 'star';

  if (builtin) {
    if (star && !(builtin.kind === 'aggregate' && builtin.star)) throw semanticError(`${e.name}(*) is not allowed; pass a column`, e.pos);
    if (!star && (e.args.length < builtin.min || (builtin.max >= 0 && e.args.length > builtin.max))) throw arityError(lname, builtin.min, builtin.max, e.args.length, e.pos);
    for (const k of builtin.literal ?? [])
      if (k < e.args.length && literalOf(e.args[k]) === undefined)
        throw new StreamplugError('E_ARG_LITERAL', `argument ${k + 1} of ${lname} must be a literal (line ${e.pos.line}, column ${e.pos.column}); write a constant such as "bigint"`, { function: lname, argument: k + 1 });
    const args = star ? [] : e.args.map((a) => compileExpr(a, argScope));
    if (builtin.kind === 'scalar') {
      const fn = builtin.fn;
      const nulls = builtin.nulls;
      return (f) => {
        const cols = args.map((a) => a(f));
        const out = new Array(f.n);
        const env = { now: f.now };
        const row = new Array(cols.length);
        for (let i = 0; i < f.n; i++) {
          let hasNull = false;
          for (let k = 0; k < cols.length; k++) {
            row[k] = cols[k][i];
            if (isNull(row[k])) hasNull = true;
          }
          out[i] = hasNull && !nulls ? null : (fn(row.slice(), env) ?? null);
        }
        return out;
      };
    }
    const reduce = builtin.reduce;
    return (f) => {
      const inner = innerFrame(f, e.pos);
      const cols = args.map((a) => a(inner));
      const offs = f.group!.offsets;
      const out = new Array(f.n);
      for (let g = 0; g < f.n; g++) out[g] = reduce(cols, offs[g], offs[g + 1], inner.rows) ?? null;
      return out;
    };
  }

  // plugin function: validated now, called per frame
  const fn = plugin!;
  if (star) throw semanticError(`${e.name}(*) is not allowed for plugin functions; pass a column`, e.pos);
  const infos: ArgInfo[] = e.args.map((a) => {
    const lit = literalOf(a);
    return lit === undefined ? { type: staticType(a, scope) } : { type: staticType(a, scope), literal: lit };
  });
  fn.validate(infos);
  const args = e.args.map((a) => compileExpr(a, argScope));
  const declared = e.args.map((_, k): ValueType => fn.argTypes[Math.min(k, fn.argTypes.length - 1)] ?? 'any');
  const instance = fn.instantiate(scope.ruleId);
  scope.instances.push(instance);
  const where = `function ${fn.name}`;
  // A literal argument is the same value in every row: marked constant, a plugin reads row 0 only.
  const constant = infos.map((a) => a.literal !== undefined);
  const column = (values: unknown[], k: number): Column => {
    const col = toColumn(values, declared[k], where);
    return constant[k] ? { ...col, constant: true } : col;
  };
  if (fn.kind === 'scalar') {
    return (f) => {
      if (f.n === 0) return [];
      const cols = args.map((a, k) => column(a(f), k));
      return fromColumn(instance.callBatch(cols, f.n), f.n, where);
    };
  }
  return (f) => {
    if (f.n === 0) return [];
    const inner = innerFrame(f, e.pos);
    const cols = args.map((a, k) => column(a(inner), k));
    return fromColumn(instance.callGroups(cols, inner.n, f.group!.offsets), f.n, where);
  };
}

export { SCALARS, AGGREGATES };
