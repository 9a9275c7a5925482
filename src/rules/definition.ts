/**
 * The rule JSON as eKuiper takes it: `{"id", "sql", "actions": [{"<sink type>": {props}}], "options"}`.
 * This checks the shape only; the SQL, the functions and the sink properties are checked by the
 * service against the engine and the connectors.
 */
import { StreamplugError } from '../errors.js';
import { readRestartStrategy } from './restart.js';

export type ActionDef = Record<string, Record<string, unknown>>;

export interface RuleDef {
  id: string;
  sql: string;
  actions: ActionDef[];
  options?: Record<string, unknown>;
  /** eKuiper's `triggered`: false creates the rule without starting it. */
  triggered?: boolean;
  name?: string;
  tags?: string[];
}

export const NAME_RE = /^[A-Za-z0-9_-]{1,128}$/;
const KEYS = new Set(['id', 'sql', 'actions', 'options', 'triggered', 'name', 'tags']);

function bad(message: string, details: Record<string, unknown> = {}): StreamplugError {
  return new StreamplugError('E_BAD_REQUEST', message, details);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkName(what: 'rule id' | 'stream name' | 'table name', v: unknown): string {
  if (typeof v !== 'string' || !NAME_RE.test(v))
    throw bad(`${what} ${JSON.stringify(v)} is invalid; expected 1 to 128 letters, digits, '_' or '-'`, { found: v });
  return v;
}

/**
 * Checks a rule body. `pathId` is the id from the URL (PUT /rules/{id}): the body may leave `id` out,
 * but may not name another rule.
 */
export function parseRuleDef(body: unknown, pathId?: string): RuleDef {
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch (e) {
      throw bad(`rule is not valid JSON: ${(e as Error).message}; send an object like {"id": "r1", "sql": "SELECT …", "actions": [{"log": {}}]}`);
    }
  }
  if (!isObject(body))
    throw bad(`rule must be a JSON object like {"id": "r1", "sql": "SELECT …", "actions": [{"log": {}}]} but found ${Array.isArray(body) ? 'an array' : JSON.stringify(body)}`);
  const unknown = Object.keys(body).filter((k) => !KEYS.has(k));
  if (unknown.length)
    throw bad(`rule has unknown field(s) ${unknown.join(', ')}; expected only ${[...KEYS].join(', ')}`, { fields: unknown });
  const id = body.id ?? pathId;
  checkName('rule id', id);
  if (pathId !== undefined && id !== pathId)
    throw bad(`rule id in the body is ${JSON.stringify(body.id)} but the URL names ${pathId}; they must be the same (a rule cannot be renamed)`);
  if (typeof body.sql !== 'string' || body.sql.trim() === '')
    throw bad(`rule ${id}: "sql" must be a non-empty string holding a SELECT statement`, { field: 'sql' });
  if (!Array.isArray(body.actions) || body.actions.length === 0)
    throw bad(`rule ${id}: "actions" must be a non-empty array like [{"log": {}}, {"mqtt": {"topic": "out"}}]`, { field: 'actions' });
  const actions = body.actions.map((a, i): ActionDef => {
    if (!isObject(a) || Object.keys(a).length !== 1)
      throw bad(`rule ${id}: actions[${i}] must be an object with exactly one key, the sink type, like {"mqtt": {"topic": "out"}}`, { field: `actions[${i}]` });
    const [type, props] = Object.entries(a)[0];
    if (props !== null && props !== undefined && !isObject(props))
      throw bad(`rule ${id}: actions[${i}].${type} must be an object of sink properties but found ${JSON.stringify(props)}`, { field: `actions[${i}].${type}` });
    return { [type]: (props as Record<string, unknown> | null) ?? {} };
  });
  if (body.options !== undefined && !isObject(body.options))
    throw bad(`rule ${id}: "options" must be an object`, { field: 'options' });
  const o = body.options;
  if (o?.isEventTime !== undefined && typeof o.isEventTime !== 'boolean')
    throw bad(`rule ${id}: options.isEventTime must be true or false but found ${JSON.stringify(o.isEventTime)}`, { field: 'options.isEventTime' });
  if (o?.lateTolerance !== undefined && !(typeof o.lateTolerance === 'number' && o.lateTolerance >= 0))
    throw bad(`rule ${id}: options.lateTolerance must be a number of milliseconds >= 0 but found ${JSON.stringify(o.lateTolerance)}`, { field: 'options.lateTolerance' });
  if (o?.sendError !== undefined && typeof o.sendError !== 'boolean')
    throw bad(`rule ${id}: options.sendError must be true or false but found ${JSON.stringify(o.sendError)}`, { field: 'options.sendError' });
  const interval = body.options?.checkpointInterval;
  if (interval !== undefined && !(typeof interval === 'number' && Number.isInteger(interval) && interval >= 0))
    throw bad(`rule ${id}: options.checkpointInterval must be a whole number of milliseconds >= 0 (0: checkpoint only when the rule stops) but found ${JSON.stringify(interval)}`, { field: 'options.checkpointInterval' });
  readRestartStrategy(String(id), body.options?.restartStrategy);
  const qos = body.options?.qos;
  if (qos !== undefined && qos !== 0 && qos !== 1 && qos !== 2)
    throw bad(`rule ${id}: options.qos must be 0 (at most once), 1 (at least once) or 2 but found ${JSON.stringify(qos)}`, { field: 'options.qos' });
  const maxRows = body.options?.maxWindowRows;
  if (maxRows !== undefined && !(typeof maxRows === 'number' && Number.isInteger(maxRows) && maxRows >= 1))
    throw bad(`rule ${id}: options.maxWindowRows must be a whole number >= 1 (the most rows a window holds) but found ${JSON.stringify(maxRows)}`, { field: 'options.maxWindowRows' });
  if (body.triggered !== undefined && typeof body.triggered !== 'boolean')
    throw bad(`rule ${id}: "triggered" must be true or false`, { field: 'triggered' });
  if (body.name !== undefined && typeof body.name !== 'string') throw bad(`rule ${id}: "name" must be a string`, { field: 'name' });
  if (body.tags !== undefined && !(Array.isArray(body.tags) && body.tags.every((t) => typeof t === 'string')))
    throw bad(`rule ${id}: "tags" must be an array of strings`, { field: 'tags' });
  const def: RuleDef = { id: id as string, sql: body.sql, actions };
  if (body.options !== undefined) def.options = body.options as Record<string, unknown>;
  if (body.triggered !== undefined) def.triggered = body.triggered;
  if (body.name !== undefined) def.name = body.name as string;
  if (body.tags !== undefined) def.tags = body.tags as string[];
  return def;
}

/** eKuiper's option name; its default is 300000 ms, streamplug's is shorter: a restart loses less. */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 5000;

/** Milliseconds between checkpoints of the rule's plugin function state; 0: only when it stops. */
export function checkpointIntervalOf(def: RuleDef): number {
  const v = def.options?.checkpointInterval;
  return typeof v === 'number' ? v : DEFAULT_CHECKPOINT_INTERVAL_MS;
}

/** eKuiper's `qos`: 0 at most once (default), 1 at least once, 2 exactly once (treated as 1 here). */
export function qosOf(def: RuleDef): number {
  const v = def.options?.qos;
  return typeof v === 'number' ? v : 0;
}

/** The most rows one of the rule's time windows holds. */
export function maxWindowRowsOf(def: RuleDef): number | undefined {
  const v = def.options?.maxWindowRows;
  return typeof v === 'number' ? v : undefined;
}

/** The rule options the SQL engine honours (event time, late tolerance, errors to the sinks). */
export function engineOptionsOf(def: RuleDef): { isEventTime?: boolean; lateTolerance?: number; sendError?: boolean } {
  const o = def.options ?? {};
  return {
    isEventTime: o.isEventTime === true,
    lateTolerance: typeof o.lateTolerance === 'number' ? o.lateTolerance : undefined,
    sendError: o.sendError === true,
  };
}

/** [type, props] of each action. */
export function actionEntries(def: RuleDef): [string, Record<string, unknown>][] {
  return def.actions.map((a) => Object.entries(a)[0]);
}
