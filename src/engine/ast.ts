/** The parsed shapes of streamplug's SQL (eKuiper dialect). Every node keeps where it started. */
import type { Pos } from './lexer.js';

export type Expr =
  /** int: an integer literal (no '.' or exponent), evaluated as a BIGINT so integer arithmetic stays integer. */
  | { kind: 'literal'; value: null | boolean | number | string; int?: boolean; pos: Pos }
  | { kind: 'field'; name: string; stream?: string; pos: Pos }
  | { kind: 'star'; pos: Pos }
  | { kind: 'member'; object: Expr; name: string; pos: Pos }
  | { kind: 'index'; object: Expr; index: Expr; pos: Pos }
  /** a[start:end], either bound optional; end exclusive, negative counts from the end. */
  | { kind: 'slice'; object: Expr; start?: Expr; end?: Expr; pos: Pos }
  | { kind: 'unary'; op: '-' | '+' | 'NOT'; operand: Expr; pos: Pos }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr; pos: Pos }
  | { kind: 'like'; not: boolean; operand: Expr; pattern: Expr; pos: Pos }
  /** array: `x IN arrExpr` (no parentheses): the set is the array the expression gives. */
  | { kind: 'in'; not: boolean; operand: Expr; list: Expr[]; array?: boolean; pos: Pos }
  | { kind: 'between'; not: boolean; operand: Expr; low: Expr; high: Expr; pos: Pos }
  | { kind: 'isnull'; not: boolean; operand: Expr; pos: Pos }
  | { kind: 'case'; operand?: Expr; whens: { when: Expr; then: Expr }[]; else?: Expr; pos: Pos }
  | { kind: 'call'; name: string; args: Expr[]; over?: OverClause; pos: Pos };

/** `OVER (PARTITION BY k, … WHEN cond)` on an analytic function. */
export interface OverClause {
  partitionBy: Expr[];
  when?: Expr;
}

export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '=' | '!=' | '<' | '<=' | '>' | '>=' | 'AND' | 'OR' | '&' | '|' | '^' | '||';

export type TimeUnit = 'MS' | 'SS' | 'MI' | 'HH' | 'DD';

export type WindowSpec =
  | { type: 'tumbling'; unit: TimeUnit; size: number; pos: Pos }
  | { type: 'hopping'; unit: TimeUnit; size: number; hop: number; pos: Pos }
  | { type: 'sliding'; unit: TimeUnit; size: number; delay?: number; pos: Pos }
  | { type: 'session'; unit: TimeUnit; maxDuration: number; timeout: number; pos: Pos }
  | { type: 'count'; size: number; hop?: number; pos: Pos };

export interface SelectField {
  expr: Expr;
  alias?: string;
  /** `expr AS name INVISIBLE`: computed (later fields may name it) but not written. */
  invisible?: boolean;
  /** `* EXCEPT(a, b)`: columns left out of the star. */
  except?: string[];
  /** `* REPLACE(expr AS a, …)`: columns of the star replaced by expressions. */
  replace?: { expr: Expr; alias: string }[];
  /** The source text of the expression, for messages. */
  text: string;
}

/** `[INNER|LEFT|RIGHT|FULL|CROSS] JOIN name [AS alias] [ON cond]` after FROM (eKuiper). */
export interface JoinClause {
  type: 'inner' | 'left' | 'right' | 'full' | 'cross';
  name: string;
  alias?: string;
  on?: Expr;
  pos: Pos;
}

export interface SelectStatement {
  kind: 'select';
  fields: SelectField[];
  from: { name: string; alias?: string; pos: Pos };
  /** Joins in the order written; empty without JOIN. */
  joins: JoinClause[];
  where?: Expr;
  groupBy: Expr[];
  window?: WindowSpec;
  /** `GROUP BY <window> FILTER (WHERE cond)`: only rows that match enter the window. */
  windowFilter?: Expr;
  /** `GROUP BY <window> OVER (WHEN cond)`: a sliding window triggers only on rows that match. */
  windowTrigger?: Expr;
  having?: Expr;
  orderBy: { expr: Expr; desc: boolean }[];
  limit?: number;
}

/** A stream field type as eKuiper spells it. */
export type FieldType =
  | { type: 'bigint' | 'float' | 'string' | 'datetime' | 'boolean' | 'bytea' }
  | { type: 'array'; items: FieldType }
  | { type: 'struct'; fields: StreamField[] };

export interface StreamField {
  name: string;
  type: FieldType;
}

export interface CreateStreamStatement {
  kind: 'createStream';
  name: string;
  /** `CREATE TABLE`: the same grammar as a stream, plus KIND (scan/lookup), KEY and RETAIN_SIZE options. */
  table?: boolean;
  /** null: schemaless `CREATE STREAM name () WITH (…)`. */
  fields: StreamField[] | null;
  /** Option names upper-cased (TYPE, DATASOURCE, FORMAT, CONF_KEY, SHARED, KEY, …); values as strings. */
  options: Record<string, string>;
}

export type Statement =
  | SelectStatement
  | CreateStreamStatement
  | { kind: 'dropStream'; name: string }
  | { kind: 'showStreams' }
  | { kind: 'describeStream'; name: string }
  | { kind: 'dropTable'; name: string }
  | { kind: 'showTables' }
  | { kind: 'describeTable'; name: string };
