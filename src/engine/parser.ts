/**
 * Recursive-descent parser for streamplug's SQL: eKuiper's stream DDL and rule SELECT.
 * Errors are E_SQL_SYNTAX with {line, column, offset} and say what was expected and what was found.
 */
import { describeToken, syntaxError, tokenize, type Pos, type Token } from './lexer.js';
import type {
  BinaryOp,
  CreateStreamStatement,
  Expr,
  FieldType,
  SelectField,
  SelectStatement,
  Statement,
  StreamField,
  TimeUnit,
  WindowSpec,
  JoinClause,
} from './ast.js';

/** Words that end an expression or a clause: never taken as an alias without AS. */
const RESERVED = new Set([
  'SELECT', 'FROM', 'WHERE', 'GROUP', 'BY', 'HAVING', 'ORDER', 'LIMIT', 'AS', 'AND', 'OR', 'NOT', 'LIKE', 'IN',
  'BETWEEN', 'IS', 'NULL', 'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'ASC', 'DESC', 'TRUE', 'FALSE', 'WITH', 'OVER',
]);
/** Words that start a join after FROM: never taken as the FROM alias without AS. */
const JOIN_WORDS = new Set(['JOIN', 'INNER', 'LEFT', 'RIGHT', 'FULL', 'CROSS', 'ON']);
const WINDOWS = new Set(['TUMBLINGWINDOW', 'HOPPINGWINDOW', 'SLIDINGWINDOW', 'SESSIONWINDOW', 'COUNTWINDOW']);
const UNITS = new Set(['MS', 'SS', 'MI', 'HH', 'DD']);
const SIMPLE_TYPES = new Set(['BIGINT', 'FLOAT', 'STRING', 'DATETIME', 'BOOLEAN', 'BYTEA']);

export function parseStatement(sql: string): Statement {
  return new Parser(sql).statement();
}

/** Parses a single expression (used by tests and by callers that store expressions alone). */
export function parseExpression(sql: string): Expr {
  const p = new Parser(sql);
  const e = p.expr();
  p.expectEnd();
  return e;
}

class Parser {
  private readonly toks: Token[];
  private i = 0;
  constructor(private readonly src: string) {
    this.toks = tokenize(src);
  }

  // ---- token helpers
  private get t(): Token {
    return this.toks[this.i];
  }
  private peek(k = 1): Token {
    return this.toks[Math.min(this.i + k, this.toks.length - 1)];
  }
  private next(): Token {
    const t = this.t;
    if (t.kind !== 'eof') this.i++;
    return t;
  }
  private isKw(word: string, t: Token = this.t): boolean {
    return t.kind === 'ident' && t.upper === word;
  }
  private isOp(op: string, t: Token = this.t): boolean {
    return t.kind === 'op' && t.text === op;
  }
  private acceptKw(word: string): boolean {
    if (this.isKw(word)) {
      this.i++;
      return true;
    }
    return false;
  }
  private acceptOp(op: string): boolean {
    if (this.isOp(op)) {
      this.i++;
      return true;
    }
    return false;
  }
  private fail(expected: string, t: Token = this.t): never {
    throw syntaxError(`expected ${expected} but found ${describeToken(t)}`, t);
  }
  private expectKw(word: string): Token {
    if (!this.isKw(word)) this.fail(word);
    return this.next();
  }
  private expectOp(op: string): Token {
    if (!this.isOp(op)) this.fail(`'${op}'`);
    return this.next();
  }
  private name(what: string): Token {
    const t = this.t;
    if (t.kind === 'qident' || (t.kind === 'ident' && !RESERVED.has(t.upper))) return this.next();
    return this.fail(what);
  }
  private integer(what: string): number {
    const t = this.t;
    if (t.kind !== 'number' || !/^[0-9]+$/.test(t.text)) this.fail(what);
    this.next();
    return Number(t.text);
  }
  expectEnd(): void {
    this.acceptOp(';');
    if (this.t.kind !== 'eof') this.fail('end of statement');
  }

  // ---- statements
  statement(): Statement {
    let s: Statement;
    if (this.isKw('SELECT')) s = this.select();
    else if (this.acceptKw('CREATE')) s = this.createStream();
    else if (this.acceptKw('DROP')) {
      if (this.acceptKw('TABLE')) s = { kind: 'dropTable', name: this.name('table name').text };
      else {
        this.expectKw('STREAM');
        s = { kind: 'dropStream', name: this.name('stream name').text };
      }
    } else if (this.acceptKw('SHOW')) {
      if (this.acceptKw('TABLES')) s = { kind: 'showTables' };
      else {
        this.expectKw('STREAMS');
        s = { kind: 'showStreams' };
      }
    } else if (this.acceptKw('DESCRIBE')) {
      if (this.acceptKw('TABLE')) s = { kind: 'describeTable', name: this.name('table name').text };
      else {
        this.expectKw('STREAM');
        s = { kind: 'describeStream', name: this.name('stream name').text };
      }
    } else this.fail('SELECT, CREATE STREAM|TABLE, DROP STREAM|TABLE, SHOW STREAMS|TABLES or DESCRIBE STREAM|TABLE');
    this.expectEnd();
    return s;
  }

  private createStream(): CreateStreamStatement {
    const table = this.acceptKw('TABLE');
    if (!table) this.expectKw('STREAM');
    const name = this.name(table ? 'table name' : 'stream name').text;
    this.expectOp('(');
    let fields: StreamField[] | null = null;
    if (!this.acceptOp(')')) {
      fields = this.fieldList();
      this.expectOp(')');
    }
    const options: Record<string, string> = {};
    if (this.acceptKw('WITH')) {
      this.expectOp('(');
      do {
        const key = this.t;
        if (key.kind !== 'ident') this.fail('option name such as DATASOURCE');
        this.next();
        this.expectOp('=');
        const v = this.t;
        if (v.kind === 'string' || v.kind === 'number' || v.kind === 'ident') options[key.upper] = this.next().text;
        else this.fail(`a value for ${key.text}, like "value"`);
      } while (this.acceptOp(','));
      this.expectOp(')');
    }
    return table ? { kind: 'createStream', name, fields, options, table } : { kind: 'createStream', name, fields, options };
  }

  private fieldList(): StreamField[] {
    const fields: StreamField[] = [];
    do {
      const n = this.name('field name').text;
      fields.push({ name: n, type: this.fieldType() });
    } while (this.acceptOp(','));
    return fields;
  }

  private fieldType(): FieldType {
    const t = this.t;
    if (t.kind !== 'ident') this.fail('a field type (bigint, float, string, datetime, boolean, bytea, array, struct)');
    if (SIMPLE_TYPES.has(t.upper)) {
      this.next();
      return { type: t.text.toLowerCase() as 'bigint' };
    }
    if (t.upper === 'ARRAY') {
      this.next();
      this.expectOp('(');
      const items = this.fieldType();
      this.expectOp(')');
      return { type: 'array', items };
    }
    if (t.upper === 'STRUCT') {
      this.next();
      this.expectOp('(');
      const fields = this.fieldList();
      this.expectOp(')');
      return { type: 'struct', fields };
    }
    return this.fail('a field type (bigint, float, string, datetime, boolean, bytea, array, struct)');
  }

  private select(): SelectStatement {
    this.expectKw('SELECT');
    const fields: SelectField[] = [];
    do fields.push(this.selectField());
    while (this.acceptOp(','));
    if (!this.isKw('FROM')) this.fail(fields.length ? "',' or FROM" : 'FROM');
    this.next();
    const ft = this.name('stream name');
    const from: SelectStatement['from'] = { name: ft.text, pos: ft };
    const alias = (): string | undefined => {
      if (this.acceptKw('AS')) return this.name('stream alias').text;
      if (this.t.kind === 'qident' || (this.t.kind === 'ident' && !RESERVED.has(this.t.upper) && !JOIN_WORDS.has(this.t.upper))) return this.next().text;
      return undefined;
    };
    const fa = alias();
    if (fa !== undefined) from.alias = fa;
    const stmt: SelectStatement = { kind: 'select', fields, from, joins: [], groupBy: [], orderBy: [] };
    for (;;) {
      const jt = this.t;
      let type: JoinClause['type'] | undefined;
      if (this.acceptKw('JOIN')) type = 'inner';
      else if (this.isKw('INNER') || this.isKw('CROSS')) {
        type = this.next().upper === 'INNER' ? 'inner' : 'cross';
        this.expectKw('JOIN');
      } else if (this.isKw('LEFT') || this.isKw('RIGHT') || this.isKw('FULL')) {
        type = this.next().upper.toLowerCase() as 'left';
        this.acceptKw('OUTER');
        this.expectKw('JOIN');
      }
      if (!type) break;
      const jn = this.name('stream or table name after JOIN');
      const join: JoinClause = { type, name: jn.text, pos: jt };
      const ja = alias();
      if (ja !== undefined) join.alias = ja;
      if (this.acceptKw('ON')) {
        if (type === 'cross') throw syntaxError('CROSS JOIN takes no ON condition: drop ON or use INNER JOIN', jt);
        join.on = this.expr();
      }
      stmt.joins.push(join);
    }
    if (this.acceptKw('WHERE')) stmt.where = this.expr();
    if (this.acceptKw('GROUP')) {
      this.expectKw('BY');
      do {
        const t = this.t;
        if (t.kind === 'ident' && WINDOWS.has(t.upper) && this.isOp('(', this.peek())) {
          if (stmt.window) throw syntaxError('a second window in GROUP BY: expected at most one window function', t);
          stmt.window = this.window();
          // FILTER (WHERE …) and OVER (WHEN …), in either order
          for (let k = 0; k < 2; k++) {
            if (!stmt.windowFilter && this.isKw('FILTER') && this.isOp('(', this.peek())) {
              this.next();
              this.next();
              this.expectKw('WHERE');
              stmt.windowFilter = this.expr();
              this.expectOp(')');
            }
            if (!stmt.windowTrigger && this.isKw('OVER') && this.isOp('(', this.peek())) {
              this.next();
              this.next();
              this.expectKw('WHEN');
              stmt.windowTrigger = this.expr();
              this.expectOp(')');
            }
          }
        } else stmt.groupBy.push(this.expr());
      } while (this.acceptOp(','));
    }
    if (this.acceptKw('HAVING')) stmt.having = this.expr();
    if (this.acceptKw('ORDER')) {
      this.expectKw('BY');
      do {
        const expr = this.expr();
        let desc = false;
        if (this.acceptKw('DESC')) desc = true;
        else this.acceptKw('ASC');
        stmt.orderBy.push({ expr, desc });
      } while (this.acceptOp(','));
    }
    if (this.acceptKw('LIMIT')) stmt.limit = this.integer('a row count after LIMIT');
    return stmt;
  }

  private selectField(): SelectField {
    const start = this.t;
    if (this.isOp('*')) {
      this.next();
      const f: SelectField = { expr: { kind: 'star', pos: start }, text: '*' };
      if (this.isKw('EXCEPT') && this.isOp('(', this.peek())) {
        this.next();
        this.next();
        f.except = [];
        do f.except.push(this.name('a column name in EXCEPT').text);
        while (this.acceptOp(','));
        this.expectOp(')');
      }
      if (this.isKw('REPLACE') && this.isOp('(', this.peek())) {
        this.next();
        this.next();
        f.replace = [];
        do {
          const expr = this.expr();
          this.expectKw('AS');
          f.replace.push({ expr, alias: this.name('a column name after AS').text });
        } while (this.acceptOp(','));
        this.expectOp(')');
      }
      return f;
    }
    const expr = this.expr();
    const text = this.src.slice(start.offset, this.toks[this.i - 1].end);
    let alias: string | undefined;
    if (this.acceptKw('AS')) alias = this.name('an alias after AS').text;
    else if (this.t.kind === 'qident' || (this.t.kind === 'ident' && !RESERVED.has(this.t.upper) && this.t.upper !== 'INVISIBLE')) alias = this.next().text;
    if (alias !== undefined && this.acceptKw('INVISIBLE')) return { expr, alias, text, invisible: true };
    return { expr, alias, text };
  }

  private window(): WindowSpec {
    const t = this.next();
    const pos: Pos = t;
    this.expectOp('(');
    const unit = (): TimeUnit => {
      const u = this.t;
      if (u.kind !== 'ident' || !UNITS.has(u.upper)) this.fail('a time unit (ms, ss, mi, hh, dd)');
      this.next();
      this.expectOp(',');
      return u.upper as TimeUnit;
    };
    const num = (what: string): number => {
      const at = this.t;
      const n = this.integer(what);
      if (n <= 0) throw syntaxError(`${what} must be greater than 0, found ${n}`, at);
      return n;
    };
    let w: WindowSpec;
    switch (t.upper) {
      case 'TUMBLINGWINDOW': {
        const u = unit();
        w = { type: 'tumbling', unit: u, size: num('window size') , pos };
        break;
      }
      case 'HOPPINGWINDOW': {
        const u = unit();
        const size = num('window size');
        this.expectOp(',');
        w = { type: 'hopping', unit: u, size, hop: num('hop size'), pos };
        break;
      }
      case 'SLIDINGWINDOW': {
        const u = unit();
        w = { type: 'sliding', unit: u, size: num('window size'), pos };
        if (this.acceptOp(',')) w.delay = num('delay');
        break;
      }
      case 'SESSIONWINDOW': {
        // eKuiper order: SESSIONWINDOW(unit, maxDuration, timeout)
        const u = unit();
        const maxDuration = num('max duration');
        this.expectOp(',');
        w = { type: 'session', unit: u, maxDuration, timeout: num('timeout'), pos };
        break;
      }
      default: {
        const size = num('window row count');
        const hop = this.acceptOp(',') ? num('hop row count') : undefined;
        w = { type: 'count', size, hop, pos };
      }
    }
    this.expectOp(')');
    return w;
  }

  // ---- expressions, lowest precedence first
  expr(): Expr {
    let left = this.and();
    while (this.isKw('OR')) {
      const op = this.next();
      left = { kind: 'binary', op: 'OR', left, right: this.and(), pos: op };
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.isKw('AND')) {
      const op = this.next();
      left = { kind: 'binary', op: 'AND', left, right: this.not(), pos: op };
    }
    return left;
  }

  private not(): Expr {
    if (this.isKw('NOT')) {
      const op = this.next();
      return { kind: 'unary', op: 'NOT', operand: this.not(), pos: op };
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const left = this.bitOr();
    const t = this.t;
    const CMP: Record<string, BinaryOp> = { '=': '=', '!=': '!=', '<>': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };
    if (t.kind === 'op' && CMP[t.text]) {
      this.next();
      return { kind: 'binary', op: CMP[t.text], left, right: this.bitOr(), pos: t };
    }
    if (this.isKw('IS')) {
      this.next();
      const not = this.acceptKw('NOT');
      this.expectKw('NULL');
      return { kind: 'isnull', not, operand: left, pos: t };
    }
    let not = false;
    if (this.isKw('NOT') && (this.isKw('LIKE', this.peek()) || this.isKw('IN', this.peek()) || this.isKw('BETWEEN', this.peek()))) {
      this.next();
      not = true;
    }
    if (this.acceptKw('LIKE')) return { kind: 'like', not, operand: left, pattern: this.bitOr(), pos: t };
    if (this.acceptKw('IN')) {
      if (!this.isOp('(')) return { kind: 'in', not, operand: left, list: [this.bitOr()], array: true, pos: t };
      this.expectOp('(');
      const list: Expr[] = [];
      do list.push(this.expr());
      while (this.acceptOp(','));
      this.expectOp(')');
      return { kind: 'in', not, operand: left, list, pos: t };
    }
    if (this.acceptKw('BETWEEN')) {
      const low = this.bitOr();
      this.expectKw('AND');
      return { kind: 'between', not, operand: left, low, high: this.bitOr(), pos: t };
    }
    return left;
  }

  private binaryLevel(ops: string[], nextLevel: () => Expr): Expr {
    let left = nextLevel();
    while (this.t.kind === 'op' && ops.includes(this.t.text)) {
      const op = this.next();
      left = { kind: 'binary', op: op.text as BinaryOp, left, right: nextLevel(), pos: op };
    }
    return left;
  }
  private bitOr = (): Expr => this.binaryLevel(['|'], this.bitXor);
  private bitXor = (): Expr => this.binaryLevel(['^'], this.bitAnd);
  private bitAnd = (): Expr => this.binaryLevel(['&'], this.additive);
  private additive = (): Expr => this.binaryLevel(['+', '-', '||'], this.multiplicative);
  private multiplicative = (): Expr => this.binaryLevel(['*', '/', '%'], this.unary);

  private unary = (): Expr => {
    if (this.isOp('-') || this.isOp('+')) {
      const op = this.next();
      const operand = this.unary();
      if (op.text === '-' && operand.kind === 'literal' && typeof operand.value === 'number')
        return { kind: 'literal', value: -operand.value, int: operand.int, pos: op };
      return { kind: 'unary', op: op.text as '-' | '+', operand, pos: op };
    }
    return this.postfix();
  };

  private postfix(): Expr {
    let e = this.primary();
    for (;;) {
      const t = this.t;
      if (this.isOp('.') || this.isOp('->')) {
        this.next();
        const n = this.t;
        if (n.kind !== 'ident' && n.kind !== 'qident') this.fail(`a field name after '${t.text}'`);
        this.next();
        e = { kind: 'member', object: e, name: n.text, pos: t };
      } else if (this.isOp('[')) {
        this.next();
        // a[i], or a slice a[start:end] with either bound left out
        const start = this.isOp(':') ? undefined : this.expr();
        if (this.acceptOp(':')) {
          const end = this.isOp(']') ? undefined : this.expr();
          this.expectOp(']');
          e = { kind: 'slice', object: e, start, end, pos: t };
          continue;
        }
        this.expectOp(']');
        e = { kind: 'index', object: e, index: start!, pos: t };
      } else return e;
    }
  }

  private primary(): Expr {
    const t = this.t;
    switch (t.kind) {
      case 'number':
        this.next();
        return /^[0-9]+$/.test(t.text) ? { kind: 'literal', value: Number(t.text), int: true, pos: t } : { kind: 'literal', value: Number(t.text), pos: t };
      case 'string':
        this.next();
        return { kind: 'literal', value: t.text, pos: t };
      case 'qident':
        this.next();
        return { kind: 'field', name: t.text, pos: t };
      case 'op':
        if (t.text === '(') {
          this.next();
          const e = this.expr();
          this.expectOp(')');
          return e;
        }
        break;
      case 'ident': {
        if (t.upper === 'TRUE' || t.upper === 'FALSE') {
          this.next();
          return { kind: 'literal', value: t.upper === 'TRUE', pos: t };
        }
        if (t.upper === 'NULL') {
          this.next();
          return { kind: 'literal', value: null, pos: t };
        }
        if (t.upper === 'CASE') return this.caseExpr();
        if (RESERVED.has(t.upper)) break;
        this.next();
        if (this.isOp('(')) return this.call(t);
        return { kind: 'field', name: t.text, pos: t };
      }
    }
    return this.fail('an expression (field, literal, function call or parenthesis)');
  }

  private call(nameTok: Token): Expr {
    this.expectOp('(');
    const args: Expr[] = [];
    if (!this.isOp(')')) {
      do {
        if (this.isOp('*')) args.push({ kind: 'star', pos: this.next() });
        else args.push(this.expr());
      } while (this.acceptOp(','));
    }
    if (!this.isOp(')')) this.fail("',' or ')' in the argument list");
    this.next();
    const call: Expr = { kind: 'call', name: nameTok.text, args, pos: nameTok };
    if (this.isKw('OVER') && this.isOp('(', this.peek())) {
      this.next();
      this.next();
      const over: { partitionBy: Expr[]; when?: Expr } = { partitionBy: [] };
      if (this.acceptKw('PARTITION')) {
        this.expectKw('BY');
        do over.partitionBy.push(this.expr());
        while (this.acceptOp(','));
      }
      if (this.acceptKw('WHEN')) over.when = this.expr();
      this.expectOp(')');
      call.over = over;
    }
    return call;
  }

  private caseExpr(): Expr {
    const pos = this.next();
    const operand = this.isKw('WHEN') ? undefined : this.expr();
    const whens: { when: Expr; then: Expr }[] = [];
    while (this.acceptKw('WHEN')) {
      const when = this.expr();
      this.expectKw('THEN');
      whens.push({ when, then: this.expr() });
    }
    if (whens.length === 0) this.fail('WHEN');
    const e: Expr = { kind: 'case', operand, whens, pos };
    if (this.acceptKw('ELSE')) e.else = this.expr();
    if (!this.isKw('END')) this.fail(e.else ? 'END' : 'WHEN, ELSE or END');
    this.next();
    return e;
  }
}
