/**
 * streamplug's rules engine: eKuiper's SQL over batches of rows. Pure TypeScript, no I/O, no timers.
 *
 * Statements
 *   parseStatement(sql: string): Statement            // E_SQL_SYNTAX {line, column, offset} on bad SQL
 *   parseStreamDef(sql: string): StreamDef            // CREATE STREAM … → definition (TYPE mqtt, FORMAT json by default)
 *   new StreamCatalog(initial?: Iterable<StreamDef>)  // in-memory CREATE/DROP/SHOW/DESCRIBE STREAM
 *     .execute(sql): CatalogResult   .get(name)   .list()   .lookup  (a `streams` function for compileRule)
 *
 * Rules
 *   compileRule(id: string, sql: string, {
 *     streams: (name: string) => StreamDef | undefined,
 *     functions?: FunctionResolver,                     // { getFunction(name): PluginFunction | undefined }
 *     tables?: (name: string) => TableSource | undefined,  // { rows(), lookup?(keys, values) } of a joined table
 *     onResult?: (rows: Record<string, unknown>[]) => void,
 *     onError?: (err: StreamplugError, operator: string) => void,
 *     now?: () => number,                               // processing-time clock, default Date.now
 *   }): RuleRuntime
 *   Compile errors: E_SQL_SYNTAX, E_SQL_SEMANTIC (unknown stream/field, misplaced aggregate, bad window),
 *   E_UNKNOWN_FUNCTION, E_ARITY / E_ARG_TYPE / E_ARG_LITERAL (built-ins, or a plugin's validate()).
 *
 *   rule.push(rows, ts?, stream?)  rows arriving at processing time ts from `stream` (default FROM; a joined
 *                          stream is named); WHERE runs at once, windows that ended by ts emit first.
 *                          Without a window, results come out per pushed batch.
 *   rule.streams / rule.tables   the streams it reads (FROM first) and the tables it joins.
 *   rule.tick(now)         advances time: emits every time window whose end <= now.
 *   rule.nextDeadline()    when tick() next has work (undefined: only rows can trigger output).
 *   rule.onResult          settable result callback, called with the rows of one window or batch.
 *   rule.metrics()         per operator: recordsIn/Out, exceptions, lastError, latency (µs).
 *   rule.close()           closes plugin function instances; push/tick afterwards throw E_RULE_CLOSED.
 *   rule.stateSites        call sites with exportable plugin state, as `<function>#<n>` (n-th call of
 *                          that lower-cased function name in compile order: stable for the same SQL).
 *   rule.exportState()     { site: { key: Uint8Array } }: the plugin functions' per-rule state (checkpoint).
 *   rule.importState(s)    puts such a snapshot back → { restored, ignored }. Built-in aggregates and
 *                          rows buffered in open windows are not checkpointed.
 *
 *   setRowMeta(row, meta)  what a source knows about a row (e.g. { topic }), read by meta(topic) in the SQL.
 *
 * Plugin functions are resolved when the rule compiles (fn.validate, then fn.instantiate(ruleId) per
 * call site) and called once per batch: callBatch for scalars, callGroups per window for aggregates.
 * A stage that throws at run time drops that batch/window, counts an exception and calls onError.
 */
export { parseStatement, parseExpression } from './parser.js';
export type { Statement, SelectStatement, CreateStreamStatement, Expr, WindowSpec, StreamField, FieldType, TimeUnit } from './ast.js';
export { StreamCatalog, parseStreamDef, formatStreamSql, formatFieldType, tableKind, type StreamDef, type CatalogResult } from './streams.js';
export { compileRule, type CompileOptions, type RuleRuntime, type OperatorMetrics, type RuleStateSnapshot, type TableSource } from './rule.js';
export { scanLookup } from './join.js';
export type { FunctionResolver } from './expr.js';
export { SCALARS, AGGREGATES, type Row } from './builtins.js';
export { unitMs } from './windows.js';
export { setRowMeta } from './meta.js';
