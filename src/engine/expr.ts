/**
 * Compiles expressions into column-wise evaluators: each takes a Frame (a batch of rows, or of groups)
 * and returns one value per row/group. Plugin scalars are called once per frame through callBatch,
 * plugin aggregates once per frame through callGroups.
 */
import { StreamplugError, isStreamplugError } from '../errors.js';
import type { ArgInfo, Column, FunctionInstance, PluginFunction, Scalar, ValueType } from '../plugins/types.js';
import type { Expr, StreamField, FieldType } from './ast.js';
import { AGGREGATES, lookupBuiltin, SCALARS, WINDOW_FUNCS, type Row } from './builtins.js';
import { ANALYTIC_FUNCS, compileAnalytic, type AnalyticRegistry } from './analytic.js';
import { rowMeta, rowTime } from './meta.js';
import { joinPart } from './join.js';
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
  /** Output columns by select position, for ORDER BY and later select fields that name an alias. */
  projected?: unknown[][];
  /** True when the frame is one window's rows (row_number counts within it). */
  windowed?: boolean;
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
  /** Analytic call sites (lag, latest, changed_col, acc_*…): evaluated on every row before WHERE. */
  analytics?: AnalyticRegistry;
  /** Every select alias and its expression: an analytic function's arguments may name any of them. */
  allAliases?: Map<string, Expr>;
  /** The rule itself, for rule_id(), rule_start(), last_hit_*() and last_agg_hit_*(). */
  rule?: RuleInfo;
  /** A join: each qualifier (stream/table name or alias) and its schema; `q.field` reads that part of a joined row. */
  sources?: Map<string, StreamField[] | null>;
}

/** What a rule tells its SQL about itself: its start, and how often (and when last) it was hit. */
export interface RuleInfo {
  start: number;
  hits: { count: number; time: number };
  aggHits: { count: number; time: number };
}

export function semanticError(message: string, pos?: Pos): StreamplugError {
  const at = pos ? ` (line ${pos.line}, column ${pos.column})` : '';
  return new StreamplugError('E_SQL_SEMANTIC', message + at, pos ? { line: pos.line, column: pos.column, offset: pos.offset } : {});
}

const fill = (n: number, v: unknown): unknown[] => new Array(n).fill(v);

/** Functions that read the rule, not the row. */
const RULE_FUNCS: Record<string, (r: RuleInfo, id: string) => unknown> = {
  rule_id: (_r, id) => id,
  rule_start: (r) => r.start,
  last_hit_count: (r) => r.hits.count,
  last_hit_time: (r) => r.hits.time,
  last_agg_hit_count: (r) => r.aggHits.count,
  last_agg_hit_time: (r) => r.aggHits.time,
};

/** True when the SQL reads the rule's hit counters: rows then go one by one so each sees the count before it. */
export function usesHits(e: Expr): boolean {
  if (e.kind === 'call' && /^last_(agg_)?hit_(count|time)$/i.test(e.name)) return true;
  return childExprs(e).some(usesHits);
}

/** A frame holding only the selected rows (and, when grouped, only the selected groups' input rows). */
export function subFrame(f: Frame, idx: number[]): Frame {
  const rows = idx.map((i) => f.rows[i]);
  const out: Frame = { rows, n: idx.length, window: f.window, now: f.now, windowed: f.windowed };
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
  return { rows: f.group.rows, n: f.group.rows.length, window: f.window, now: f.now, windowed: f.windowed };
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
    case 'slice': return [e.object, ...(e.start ? [e.start] : []), ...(e.end ? [e.end] : [])];
    case 'unary': return [e.operand];
    case 'binary': return [e.left, e.right];
    case 'like': return [e.operand, e.pattern];
    case 'in': return [e.operand, ...e.list];
    case 'between': return [e.operand, e.low, e.high];
    case 'isnull': return [e.operand];
    case 'case': return [...(e.operand ? [e.operand] : []), ...e.whens.flatMap((w) => [w.when, w.then]), ...(e.else ? [e.else] : [])];
    case 'call': return [...e.args, ...(e.over ? [...e.over.partitionBy, ...(e.over.when ? [e.over.when] : [])] : [])];
    default: return [];
  }
}

export { childExprs };

function resolvePlugin(name: string, scope: Pick<Scope, 'functions'>): PluginFunction | undefined {
  return scope.functions?.getFunction(name);
}

/** The column type an expression will have, as far as the SQL says (for plugin validate()). */
export function staticType(e: Expr, scope: Scope): ValueType {
  switch (e.kind) {
    case 'literal':
      if (typeof e.value === 'number') return e.int ? 'int64' : 'float64';
      if (typeof e.value === 'string') return 'string';
      if (typeof e.value === 'boolean') return 'bool';
      return 'any';
    case 'field': {
      const f = schemaField(scope.schema, e.name);
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
/** Comparison: a null on either side gives false, as eKuiper's SimpleDataEval does. */
function cmp2(a: unknown[], b: unknown[], fn: (x: unknown, y: unknown) => unknown): unknown[] {
  const out = new Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = isNull(a[i]) || isNull(b[i]) ? false : fn(a[i], b[i]);
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
/**
 * LIKE exactly as eKuiper compiles it: `%` → `.*`, `_` → `.`, except right after a backslash; then every
 * backslash is doubled. So `\_` matches a backslash followed by `_` (eKuiper's test expects "str\_ng" to
 * match the text `str\_ng`, not `str_ng`), and other characters keep their regular-expression meaning
 * (`.` matches any character). Matched against the whole text.
 */
export function likeRegex(pattern: string): RegExp {
  let r = likeCache.get(pattern);
  if (r) return r;
  let src = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\' && (pattern[i + 1] === '%' || pattern[i + 1] === '_')) {
      src += '\\\\' + pattern[++i];
    } else if (c === '%') src += '.*';
    else if (c === '_') src += '.';
    else if (c === '\\') src += '\\\\';
    else src += c;
  }
  try {
    r = new RegExp('^(?:' + src + ')$', 'u');
  } catch {
    r = new RegExp('^(?:' + src.replace(/[.*+?^${}()|[\]]/g, (m) => (m === '.' ? '.' : '\\' + m)) + ')$');
  }
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
    const k = Math.trunc(num(i, 'array index'));
    const at = k < 0 ? v.length + k : k;
    if (at < 0 || at >= v.length) throw evalError(`array index ${k} is out of range for an array of ${v.length}; guard it with cardinality()`, { index: k, length: v.length });
    return v[at] ?? null;
  }
  if (typeof i === 'string') return member(v, i);
  return null;
}

/** a[start:end] as eKuiper: bounds default to the ends, negative ones count from the end, end exclusive; out of range is an error. */
function slice(v: unknown, lo: unknown, hi: unknown): unknown {
  if (isNull(v)) return null;
  if (!Array.isArray(v)) throw evalError(`a slice [start:end] needs an array but found ${typeName(v)} ${short(v)}`, {});
  const n = v.length;
  const out = (what: string, k: number) => evalError(`${what} is out of index: ${k} of ${n}`, { index: k, length: n });
  let a = isNull(lo) ? 0 : Math.trunc(num(lo, 'slice start'));
  if (a < 0) {
    if (a + n < 0) throw out('start value', a);
    a += n;
  } else if (a >= n) throw out('start value', a);
  let b = n;
  if (!isNull(hi)) {
    b = Math.trunc(num(hi, 'slice end'));
    if (b < 0) {
      if (b + n < 0) throw out('end value', b);
      b += n;
    } else if (b > n) throw out('end value', b);
    else if (a >= b) throw evalError(`start cannot be greater than end. start:${a}  end:${b}`, {});
  }
  return v.slice(a, b);
}

export function compileExpr(e: Expr, scope: Scope): Eval {
  switch (e.kind) {
    case 'literal': {
      // integer literals are BIGINTs: 32 / 72 is 0, as in eKuiper
      const v = e.int && typeof e.value === 'number' && Number.isSafeInteger(e.value) ? BigInt(e.value) : e.value;
      return (f) => fill(f.n, v);
    }
    case 'star':
      throw semanticError(`'*' is only allowed as a select field or inside count(*)/collect(*)`, e.pos);
    case 'field':
      return compileField(e.name, e.pos, scope);
    case 'member': {
      // stream.field / alias.field resolve to the field; otherwise struct access
      const o = e.object;
      if (o.kind === 'field' && scope.sources?.has(o.name) && !scope.aliasExprs?.has(o.name))
        return compileQualified(e.name, o.name, scope.sources.get(o.name)!, e.pos, scope);
      if (o.kind === 'field' && (o.name === scope.stream || o.name === scope.alias) && !schemaField(scope.schema, o.name))
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
    case 'slice': {
      const obj = compileExpr(e.object, scope);
      const lo = e.start ? compileExpr(e.start, scope) : undefined;
      const hi = e.end ? compileExpr(e.end, scope) : undefined;
      return (f) => {
        const vo = obj(f);
        const vl = lo?.(f);
        const vh = hi?.(f);
        return vo.map((v, i) => slice(v, vl?.[i], vh?.[i]));
      };
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
      return (f) =>
        cmp2(a(f), p(f), (x, pat) => {
          if (typeof x !== 'string') throw evalError(`LIKE expects text on its left but found ${typeName(x)} ${short(x)}; cast(x, "string") converts`, {});
          if (typeof pat !== 'string') throw evalError(`LIKE expects a text pattern but found ${typeName(pat)} ${short(pat)}`, {});
          return likeRegex(pat).test(x) !== not;
        });
    }
    case 'in': {
      const a = compileExpr(e.operand, scope);
      const list = e.list.map((x) => compileExpr(x, scope));
      const not = e.not;
      // eKuiper: `x IN arr` (or a one-item list whose value is an array) tests membership in that array;
      // a null x gives false for IN and NOT IN alike; a null set gives false for IN, true for NOT IN.
      const arrayForm = e.array === true || (e.list.length === 1 && e.list[0].kind !== 'literal');
      return (f) => {
        const va = a(f);
        const vl = list.map((l) => l(f));
        return va.map((v, i) => {
          let set: unknown[] = vl.map((c) => c[i]);
          if (arrayForm) {
            const only = vl[0][i];
            if (Array.isArray(only)) set = only;
            else if (e.array) return not; // not an array: an empty set
          }
          if (isNull(v)) return false;
          return set.some((c) => !isNull(c) && equals(v, c)) !== not;
        });
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
          // eKuiper: a null operand or bound gives false (NOT BETWEEN too)
          if (isNull(v) || isNull(vl[i]) || isNull(vh[i])) return false;
          const c1 = compare(v, vl[i]);
          const c2 = compare(v, vh[i]);
          if (c1 === undefined || c2 === undefined) throw evalError(`BETWEEN cannot compare ${typeName(v)} ${short(v)} with ${typeName(vl[i])} and ${typeName(vh[i])}`, {});
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
    const rest = new Map(scope.aliasExprs);
    rest.delete(name); // `SELECT a + 1 AS a`: inside, a is the column again
    const all = scope.allAliases && new Map(scope.allAliases);
    all?.delete(name);
    return compileExpr(inner, { ...scope, aliasExprs: rest, allAliases: all });
  }
  let key = name;
  if (scope.schema) {
    const field = schemaField(scope.schema, name);
    if (!field) {
      const known = scope.schema.map((x) => x.name).join(', ');
      throw semanticError(`unknown field ${name} in ${scope.clause}: stream ${scope.stream} has ${known || 'no fields'}; fix the name or the stream definition`, pos);
    }
    key = field.name;
  }
  return (f) => {
    const out = new Array(f.n);
    for (let i = 0; i < f.n; i++) out[i] = fieldOf(f.rows[i], key);
    return out;
  };
}

/** `q.field` in a join: the field of part q of a joined row (null when an outer join left q out). */
function compileQualified(name: string, qualifier: string, schema: StreamField[] | null, pos: Pos, scope: Scope): Eval {
  let key = name;
  if (schema) {
    const field = schemaField(schema, name);
    if (!field) {
      const known = schema.map((x) => x.name).join(', ');
      throw semanticError(`unknown field ${qualifier}.${name} in ${scope.clause}: ${qualifier} has ${known || 'no fields'}; fix the name or the definition`, pos);
    }
    key = field.name;
  }
  return (f) => {
    const out = new Array(f.n);
    for (let i = 0; i < f.n; i++) {
      const row = f.rows[i];
      const part = joinPart(row, qualifier);
      out[i] = part === undefined ? fieldOf(row, key) : part === null ? null : fieldOf(part, key);
    }
    return out;
  };
}

/** The schema field of that name: an exact match first, then one that differs only in case (eKuiper). */
export function schemaField(schema: StreamField[] | null | undefined, name: string): StreamField | undefined {
  if (!schema) return undefined;
  return schema.find((x) => x.name === name) ?? schema.find((x) => x.name.toLowerCase() === name.toLowerCase());
}

/** A row's field: the exact key, or else a key that differs only in case, as eKuiper's Message.Value does. */
export function fieldOf(row: Row, name: string): unknown {
  const v = row[name];
  if (v !== undefined) return v;
  if (Object.hasOwn(row, name)) return null;
  const lower = name.toLowerCase();
  for (const k in row) if (k.toLowerCase() === lower) return row[k] ?? null;
  return null;
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
          // eKuiper: false AND x is false, true OR x is true; otherwise a null operand makes the result false
          if (isAnd) return x === false ? false : isNull(x) || isNull(y) ? false : y;
          return x === true ? true : isNull(x) || isNull(y) ? false : y;
        });
      };
    }
    // eKuiper: a comparison with a null operand is false, not unknown
    case '=':
      return (f) => cmp2(l(f), r(f), (x, y) => equals(x, y));
    case '!=':
      return (f) => cmp2(l(f), r(f), (x, y) => !equals(x, y));
    case '<': case '<=': case '>': case '>=':
      return (f) =>
        cmp2(l(f), r(f), (x, y) => {
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
  if (ANALYTIC_FUNCS.has(lname)) {
    if (!scope.analytics) throw semanticError(`analytic function ${e.name} is not allowed in ${scope.clause}; use it in SELECT or WHERE`, e.pos);
    return compileAnalytic(e, scope, scope.analytics);
  }
  if (e.over) throw semanticError(`OVER (…) is only for analytic functions (lag, latest, changed_col, had_changed, acc_*), not ${e.name}`, e.pos);
  if (lname === 'meta' || lname === 'mqtt') {
    // meta(topic), meta(*): what the source told about the row (the MQTT topic)
    if (e.args.length !== 1) throw arityError(lname, 1, 1, e.args.length, e.pos);
    const a = e.args[0];
    const key = a.kind === 'field' ? a.name : a.kind === 'literal' && typeof a.value === 'string' ? a.value : a.kind === 'star' ? '*' : undefined;
    if (key === undefined) throw semanticError('meta() takes a key name such as meta(topic), or meta(*)', e.pos);
    return (f) => f.rows.slice(0, f.n).map((r) => {
      const m = rowMeta(r);
      if (key === '*') return m ? { ...m } : null;
      return m?.[key] ?? null;
    });
  }
  if (lname === 'event_time') {
    if (e.args.length) throw arityError(lname, 0, 0, e.args.length, e.pos);
    // in a window's aggregate result it is the window's end (eKuiper)
    return (f) => (f.group && f.window ? fill(f.n, f.window.end) : f.rows.slice(0, f.n).map((r) => rowTime(r) ?? f.now));
  }
  const info = RULE_FUNCS[lname];
  if (info) {
    if (e.args.length) throw arityError(lname, 0, 0, e.args.length, e.pos);
    const rule = scope.rule;
    return (f) => fill(f.n, rule ? info(rule, scope.ruleId) : null);
  }
  if (lname === 'row_number') {
    if (e.args.length) throw arityError(lname, 0, 0, e.args.length, e.pos);
    // numbers the rows of a window; without a window each row is its own input, so it is 1
    return (f) => Array.from({ length: f.n }, (_, i) => (f.windowed ? i + 1 : 1));
  }
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
    if (builtin.kind === 'scalar' && builtin.validate) {
      try {
        builtin.validate(e.args.map(literalOf));
      } catch (err) {
        if (isStreamplugError(err)) throw new StreamplugError(err.code, `${lname} (line ${e.pos.line}, column ${e.pos.column}): ${err.message}`, { ...err.details, function: lname });
        throw err;
      }
    }
    if (builtin.kind === 'scalar') {
      const fn = builtin.fn;
      const nulls = builtin.nulls;
      const onNull = builtin.onNull ?? null;
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
          out[i] = hasNull && !nulls ? onNull : (fn(row.slice(), env) ?? null);
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
