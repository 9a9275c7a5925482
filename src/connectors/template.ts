/**
 * dataTemplate: a small subset of Go's text/template, the language eKuiper sinks use.
 *
 * Supported (see docs/connectors.md for examples):
 *   {{.}} {{.a.b}} {{$}} {{$.a}} {{$x}} {{$x.a}}    values; objects/arrays print as JSON
 *   {{json .}} {{toJson .a}} {{.a | json}}            functions, with `|` pipelines
 *   {{range .}}…{{end}}  {{range $i, $e := .}}…{{else}}…{{end}}
 *   {{if .a}}…{{else if .b}}…{{else}}…{{end}}
 *   {{- trim -}} markers, string/number/true/false/nil literals, (parenthesised) calls
 * Functions: json toJson len index base64 eq ne lt le gt ge and or not printf(%v %s %d %f only).
 * Missing fields print as empty text (Go prints "<no value>").
 */
import { StreamplugError } from '../errors.js';

type Expr =
  | { k: 'dot'; path: string[] }
  | { k: 'var'; name: string; path: string[] }
  | { k: 'lit'; v: unknown }
  | { k: 'call'; fn: string; args: Expr[] };

type Node =
  | { k: 'text'; s: string }
  | { k: 'out'; e: Expr }
  | { k: 'if'; cond: Expr; then: Node[]; else: Node[] }
  | { k: 'range'; e: Expr; idx?: string; elem?: string; body: Node[]; else: Node[] };

function parseError(src: string, why: string): StreamplugError {
  return new StreamplugError('E_CONNECTOR_CONFIG', `dataTemplate ${JSON.stringify(src.length > 60 ? src.slice(0, 60) + '…' : src)}: ${why}; fix the template`, { template: src });
}

// ---- lexing --------------------------------------------------------------------------------

type Piece = { text: string } | { action: string };

function split(src: string): Piece[] {
  const out: Piece[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (src[start] === '-' && /\s/.test(src[start + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      start++;
    }
    if (text) out.push({ text });
    const close = findClose(src, start);
    if (close < 0) throw parseError(src, `unclosed action at offset ${open}`);
    let body = src.slice(start, close);
    i = close + 2;
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      const m = /^\s*/.exec(src.slice(i));
      i += m ? m[0].length : 0;
    }
    out.push({ action: body.trim() });
  }
  return out;
}

function findClose(src: string, from: number): number {
  let q: string | null = null;
  for (let j = from; j < src.length; j++) {
    const c = src[j];
    if (q) {
      if (c === '\\' && q === '"') j++;
      else if (c === q) q = null;
    } else if (c === '"' || c === '`') q = c;
    else if (c === '}' && src[j + 1] === '}') return j;
  }
  return -1;
}

function tokens(src: string, action: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|:=|[|,()]|[^\s|,()]+)/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(action))) {
    out.push(m[1]);
    last = re.lastIndex;
  }
  if (action.slice(last).trim()) throw parseError(src, `cannot read ${JSON.stringify(action.slice(last))}`);
  return out;
}

// ---- parsing -------------------------------------------------------------------------------

const FUNCS = new Set(['json', 'toJson', 'len', 'index', 'base64', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or', 'not', 'printf']);

class ExprParser {
  private i = 0;
  constructor(private readonly src: string, private readonly t: string[]) {}

  done(): boolean {
    return this.i >= this.t.length;
  }
  peek(): string | undefined {
    return this.t[this.i];
  }
  next(): string {
    const x = this.t[this.i++];
    if (x === undefined) throw parseError(this.src, 'action ends too early');
    return x;
  }

  pipeline(): Expr {
    let e = this.command();
    while (this.peek() === '|') {
      this.i++;
      const c = this.command();
      if (c.k !== 'call') throw parseError(this.src, 'only a function can follow "|"');
      e = { k: 'call', fn: c.fn, args: [...c.args, e] };
    }
    return e;
  }

  private command(): Expr {
    const head = this.peek();
    if (head !== undefined && FUNCS.has(head)) {
      this.i++;
      const args: Expr[] = [];
      while (!this.done() && this.peek() !== '|' && this.peek() !== ')') args.push(this.operand());
      return { k: 'call', fn: head, args };
    }
    return this.operand();
  }

  private operand(): Expr {
    const t = this.next();
    if (t === '(') {
      const e = this.pipeline();
      if (this.next() !== ')') throw parseError(this.src, 'missing ")"');
      return e;
    }
    if (t === '.') return { k: 'dot', path: [] };
    if (t.startsWith('.')) return { k: 'dot', path: fieldPath(this.src, t.slice(1)) };
    if (t.startsWith('$')) {
      const [name, ...rest] = t.split('.');
      return { k: 'var', name, path: rest.length ? fieldPath(this.src, rest.join('.')) : [] };
    }
    if (t.startsWith('"')) return { k: 'lit', v: JSON.parse(t) };
    if (t.startsWith('`')) return { k: 'lit', v: t.slice(1, -1) };
    if (t === 'true' || t === 'false') return { k: 'lit', v: t === 'true' };
    if (t === 'nil') return { k: 'lit', v: null };
    if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t)) return { k: 'lit', v: Number(t) };
    if (FUNCS.has(t)) return { k: 'call', fn: t, args: [] };
    throw parseError(this.src, `unknown word ${JSON.stringify(t)}`);
  }
}

function fieldPath(src: string, s: string): string[] {
  const parts = s.split('.');
  if (parts.some((p) => p === '')) throw parseError(src, `bad field path ".${s}"`);
  return parts;
}

interface Frame {
  kind: 'root' | 'if' | 'range';
  node?: Extract<Node, { k: 'if' | 'range' }>;
  list: Node[];
  /** `else if` opens nested ifs that one `{{end}}` closes together. */
  chained?: boolean;
}

export function parseTemplate(src: string): Node[] {
  const root: Node[] = [];
  const stack: Frame[] = [{ kind: 'root', list: root }];
  const top = () => stack[stack.length - 1];
  for (const p of split(src)) {
    if ('text' in p) {
      top().list.push({ k: 'text', s: p.text });
      continue;
    }
    if (p.action.startsWith('/*')) continue; // comment
    const t = tokens(src, p.action);
    if (t.length === 0) throw parseError(src, 'empty action');
    const word = t[0];
    if (word === 'end') {
      let f = stack.pop();
      while (f?.chained) f = stack.pop();
      if (!f || f.kind === 'root') throw parseError(src, 'unexpected {{end}}');
      continue;
    }
    if (word === 'else') {
      const f = top();
      if (!f.node) throw parseError(src, 'unexpected {{else}}');
      f.list = f.node.else;
      if (t[1] === 'if') {
        const cp = new ExprParser(src, t.slice(2));
        const node: Node = { k: 'if', cond: cp.pipeline(), then: [], else: [] };
        if (!cp.done()) throw parseError(src, `extra words in {{${p.action}}}`);
        f.list.push(node);
        stack.push({ kind: 'if', node, list: node.then, chained: true });
      } else if (t.length > 1) throw parseError(src, `extra words in {{${p.action}}}`);
      continue;
    }
    if (word === 'if') {
      const cp = new ExprParser(src, t.slice(1));
      const node: Node = { k: 'if', cond: cp.pipeline(), then: [], else: [] };
      if (!cp.done()) throw parseError(src, `extra words in {{${p.action}}}`);
      top().list.push(node);
      stack.push({ kind: 'if', node, list: node.then });
      continue;
    }
    if (word === 'range') {
      let rest = t.slice(1);
      let idx: string | undefined;
      let elem: string | undefined;
      const decl = rest.indexOf(':=');
      if (decl >= 0) {
        const vars = rest.slice(0, decl).filter((x) => x !== ',');
        if (vars.length < 1 || vars.length > 2 || !vars.every((v) => /^\$\w+$/.test(v))) throw parseError(src, 'range declares one or two $variables');
        [idx, elem] = vars.length === 2 ? vars : [undefined, vars[0]];
        rest = rest.slice(decl + 1);
      }
      const cp = new ExprParser(src, rest);
      const node: Node = { k: 'range', e: cp.pipeline(), idx, elem, body: [], else: [] };
      if (!cp.done()) throw parseError(src, `extra words in {{${p.action}}}`);
      top().list.push(node);
      stack.push({ kind: 'range', node, list: node.body });
      continue;
    }
    const cp = new ExprParser(src, t);
    const e = cp.pipeline();
    if (!cp.done()) throw parseError(src, `extra words in {{${p.action}}}`);
    top().list.push({ k: 'out', e });
  }
  if (stack.length !== 1) throw parseError(src, `missing {{end}}`);
  return root;
}

// ---- rendering -----------------------------------------------------------------------------

/** JSON that also carries bigint (as a number literal) and bytes (as base64). */
export function toJson(v: unknown): string {
  const s = JSON.stringify(v, (_k, x) => {
    if (typeof x === 'bigint') return `\u0000big:${x}`;
    if (x instanceof Uint8Array) return Buffer.from(x).toString('base64');
    return x;
  });
  return s === undefined ? 'null' : s.replace(/"\\u0000big:(-?\d+)"/g, '$1');
}

function print(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return toJson(v);
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '' || v === 0n) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object' && !(v instanceof Uint8Array)) return Object.keys(v as object).length > 0;
  return true;
}

function walk(v: unknown, path: string[]): unknown {
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

type Scope = { dot: unknown; vars: Map<string, unknown> };

function cmp(a: unknown, b: unknown): number {
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    const x = BigInt(a as number), y = BigInt(b as number);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new Error(`cannot compare ${typeof a} with ${typeof b}`);
}

function call(fn: string, a: unknown[]): unknown {
  switch (fn) {
    case 'json':
    case 'toJson':
      return toJson(a[0]);
    case 'len':
      if (typeof a[0] === 'string' || Array.isArray(a[0])) return a[0].length;
      if (a[0] && typeof a[0] === 'object') return Object.keys(a[0]).length;
      return 0;
    case 'index':
      return a.slice(1).reduce((v, k) => walk(v, [String(k)]), a[0]);
    case 'base64':
      return Buffer.from(a[0] instanceof Uint8Array ? a[0] : print(a[0])).toString('base64');
    case 'eq':
      return a.slice(1).some((b) => b === a[0] || (a[0] != null && b != null && typeof a[0] !== 'object' && cmp(a[0], b) === 0));
    case 'ne':
      return !(a[0] === a[1] || (a[0] != null && a[1] != null && typeof a[0] !== 'object' && cmp(a[0], a[1]) === 0));
    case 'lt':
      return cmp(a[0], a[1]) < 0;
    case 'le':
      return cmp(a[0], a[1]) <= 0;
    case 'gt':
      return cmp(a[0], a[1]) > 0;
    case 'ge':
      return cmp(a[0], a[1]) >= 0;
    case 'and':
      return a.find((x) => !truthy(x)) ?? a[a.length - 1];
    case 'or':
      return a.find((x) => truthy(x)) ?? a[a.length - 1];
    case 'not':
      return !truthy(a[0]);
    case 'printf': {
      let n = 1;
      return String(a[0]).replace(/%([vsdf%])/g, (_m, c: string) => {
        if (c === '%') return '%';
        const x = a[n++];
        if (c === 'd') return String(Math.trunc(Number(x)));
        if (c === 'f') return Number(x).toFixed(6);
        return print(x);
      });
    }
  }
  throw new Error(`unknown function ${fn}`);
}

function evalExpr(e: Expr, s: Scope): unknown {
  switch (e.k) {
    case 'lit':
      return e.v;
    case 'dot':
      return walk(s.dot, e.path);
    case 'var':
      if (!s.vars.has(e.name)) throw new Error(`undefined variable ${e.name}`);
      return walk(s.vars.get(e.name), e.path);
    case 'call':
      return call(e.fn, e.args.map((x) => evalExpr(x, s)));
  }
}

function renderNodes(nodes: Node[], s: Scope, out: string[]): void {
  for (const n of nodes) {
    if (n.k === 'text') out.push(n.s);
    else if (n.k === 'out') out.push(print(evalExpr(n.e, s)));
    else if (n.k === 'if') renderNodes(truthy(evalExpr(n.cond, s)) ? n.then : n.else, s, out);
    else {
      const v = evalExpr(n.e, s);
      const entries: [unknown, unknown][] = Array.isArray(v)
        ? v.map((x, i) => [i, x])
        : v && typeof v === 'object' && !(v instanceof Uint8Array)
          ? Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]])
          : [];
      if (entries.length === 0) renderNodes(n.else, s, out);
      for (const [k, x] of entries) {
        const vars = new Map(s.vars);
        if (n.idx) vars.set(n.idx, k);
        if (n.elem) vars.set(n.elem, x);
        renderNodes(n.body, { dot: x, vars }, out);
      }
    }
  }
}

export interface Template {
  readonly source: string;
  /** Throws StreamplugError(E_SINK_FAILED) when the data does not fit the template. */
  render(data: unknown): string;
}

/** Parses once (throws E_CONNECTOR_CONFIG on a syntax error); render per message. */
export function compileTemplate(source: string): Template {
  const nodes = parseTemplate(source);
  return {
    source,
    render(data: unknown): string {
      const out: string[] = [];
      try {
        renderNodes(nodes, { dot: data, vars: new Map([['$', data]]) }, out);
      } catch (e) {
        throw new StreamplugError('E_SINK_FAILED', `dataTemplate could not render a message: ${(e as Error).message}; check the template against the rule's output fields`, { template: source });
      }
      return out.join('');
    },
  };
}
