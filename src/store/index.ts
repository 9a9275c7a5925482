/**
 * The embedded store: one SQLite file `<dataDir>/streamplug.db` (WAL) holding stream and table
 * definitions, rules with their desired state and last status, and per-scope key/value entries
 * (rule state checkpoints). Every write is one transaction; everything survives a restart.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { StreamplugError } from '../errors.js';
import { openDatabase, type Database } from './sqlite.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { decodeValue, encodeValue } from './codec.js';

export type StreamKind = 'stream' | 'table';
export type DesiredState = 'running' | 'stopped';

export interface StreamRecord {
  name: string;
  kind: StreamKind;
  sql: string;
  /** ms since the epoch */
  created: number;
}

export interface RuleRecord {
  id: string;
  /** The rule definition as given (parsed JSON). */
  rule: unknown;
  desired: DesiredState;
  /** Whatever the engine last reported (parsed JSON), or undefined. */
  lastStatus?: unknown;
  created: number;
  updated: number;
}

export const STORE_FILE = 'streamplug.db';

export interface Store {
  readonly file: string;
  readonly schemaVersion: number;

  putStream(s: { name: string; sql: string; kind?: StreamKind }, opts?: { replace?: boolean }): StreamRecord;
  getStream(name: string): StreamRecord | undefined;
  listStreams(kind?: StreamKind): StreamRecord[];
  deleteStream(name: string): boolean;

  putRule(id: string, rule: unknown, opts?: { desired?: DesiredState; replace?: boolean }): RuleRecord;
  getRule(id: string): RuleRecord | undefined;
  listRules(): RuleRecord[];
  /** Deletes the rule and its checkpoint scope `rule:<id>`. */
  deleteRule(id: string): boolean;
  setRuleDesired(id: string, desired: DesiredState): void;
  setRuleStatus(id: string, status: unknown): void;

  kvGet(scope: string, key: string): unknown;
  kvPut(scope: string, key: string, value: unknown): void;
  /** Replaces several keys at once, atomically. */
  kvPutMany(scope: string, entries: Record<string, unknown>): void;
  kvDelete(scope: string, key: string): boolean;
  kvList(scope: string): Record<string, unknown>;
  /** The keys of a scope, in order, without their values (a sink cache lists its pages this way). */
  kvKeys(scope: string): string[];
  kvClear(scope: string): number;

  /** A rule's checkpoint: the whole state object, replaced atomically. */
  saveCheckpoint(ruleId: string, state: Record<string, unknown>): void;
  loadCheckpoint(ruleId: string): Record<string, unknown>;

  /** Runs fn in one transaction (nested calls join the outer one). */
  transaction<T>(fn: () => T): T;
  close(): void;
}

function migrate(db: Database, file: string): number {
  const have = db.pragma('user_version', { simple: true }) as number;
  if (have > SCHEMA_VERSION)
    throw new StreamplugError(
      'E_STORE_VERSION',
      `${file} has schema version ${have}, this streamplug knows up to ${SCHEMA_VERSION}; run a newer streamplug or use another data directory`,
      { file, found: have, expected: SCHEMA_VERSION },
    );
  db.transaction(() => {
    for (let v = have; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]);
    // PRAGMA takes no bound parameters; the value is our own integer.
    if (have !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
  return SCHEMA_VERSION;
}

const checkpointScope = (ruleId: string) => `rule:${ruleId}`;

interface RuleRow {
  id: string;
  json: string;
  desired: DesiredState;
  last_status: string | null;
  created: number;
  updated: number;
}

function toRule(r: RuleRow): RuleRecord {
  return {
    id: r.id,
    rule: decodeValue(r.json),
    desired: r.desired,
    lastStatus: r.last_status === null ? undefined : decodeValue(r.last_status),
    created: r.created,
    updated: r.updated,
  };
}

function notFound(what: string, name: string): StreamplugError {
  return new StreamplugError('E_NOT_FOUND', `${what} "${name}" does not exist; list them to see what is there`, { [what]: name });
}

export function openStore(dataDir: string): Store {
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, STORE_FILE);
  const db = openDatabase(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, file);
  } catch (e) {
    db.close();
    throw e;
  }

  const q = {
    streamGet: db.prepare('SELECT name, kind, sql, created FROM streams WHERE name = ?'),
    streamList: db.prepare('SELECT name, kind, sql, created FROM streams ORDER BY name'),
    streamListKind: db.prepare('SELECT name, kind, sql, created FROM streams WHERE kind = ? ORDER BY name'),
    streamInsert: db.prepare('INSERT INTO streams (name, kind, sql, created) VALUES (?, ?, ?, ?)'),
    streamReplace: db.prepare(
      'INSERT INTO streams (name, kind, sql, created) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, sql = excluded.sql',
    ),
    streamDelete: db.prepare('DELETE FROM streams WHERE name = ?'),
    ruleGet: db.prepare('SELECT * FROM rules WHERE id = ?'),
    ruleList: db.prepare('SELECT * FROM rules ORDER BY id'),
    ruleInsert: db.prepare('INSERT INTO rules (id, json, desired, created, updated) VALUES (?, ?, ?, ?, ?)'),
    ruleReplace: db.prepare(
      'INSERT INTO rules (id, json, desired, created, updated) VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET json = excluded.json, desired = excluded.desired, updated = excluded.updated',
    ),
    ruleDelete: db.prepare('DELETE FROM rules WHERE id = ?'),
    ruleDesired: db.prepare('UPDATE rules SET desired = ?, updated = ? WHERE id = ?'),
    ruleStatus: db.prepare('UPDATE rules SET last_status = ? WHERE id = ?'),
    kvGet: db.prepare('SELECT value FROM kv WHERE scope = ? AND key = ?'),
    kvPut: db.prepare(
      'INSERT INTO kv (scope, key, value, updated) VALUES (?, ?, ?, ?) ON CONFLICT(scope, key) DO UPDATE SET value = excluded.value, updated = excluded.updated',
    ),
    kvDelete: db.prepare('DELETE FROM kv WHERE scope = ? AND key = ?'),
    kvList: db.prepare('SELECT key, value FROM kv WHERE scope = ? ORDER BY key'),
    kvClear: db.prepare('DELETE FROM kv WHERE scope = ?'),
    kvKeys: db.prepare('SELECT key FROM kv WHERE scope = ? ORDER BY key'),
  };

  const tx = <A extends unknown[], T>(fn: (...a: A) => T) => db.transaction(fn as (...args: never[]) => unknown) as unknown as (...a: A) => T;

  const kvPutMany = tx((scope: string, entries: Record<string, unknown>) => {
    const now = Date.now();
    for (const [k, v] of Object.entries(entries)) q.kvPut.run(scope, k, encodeValue(v), now);
  });
  const replaceScope = tx((scope: string, entries: Record<string, unknown>) => {
    q.kvClear.run(scope);
    kvPutMany(scope, entries);
  });
  const deleteRule = tx((id: string) => {
    q.kvClear.run(checkpointScope(id));
    return q.ruleDelete.run(id).changes > 0;
  });
  const putStream = tx((s: { name: string; sql: string; kind?: StreamKind }, replace: boolean): StreamRecord => {
    const kind = s.kind ?? 'stream';
    const created = Date.now();
    if (replace) q.streamReplace.run(s.name, kind, s.sql, created);
    else {
      if (q.streamGet.get(s.name)) throw new StreamplugError('E_CONFLICT', `stream "${s.name}" already exists; drop it first or choose another name`, { stream: s.name });
      q.streamInsert.run(s.name, kind, s.sql, created);
    }
    return q.streamGet.get(s.name) as StreamRecord;
  });
  const putRule = tx((id: string, rule: unknown, desired: DesiredState, replace: boolean): RuleRecord => {
    const now = Date.now();
    if (replace) q.ruleReplace.run(id, encodeValue(rule), desired, now, now);
    else {
      if (q.ruleGet.get(id)) throw new StreamplugError('E_CONFLICT', `rule "${id}" already exists; delete it first or update it`, { rule: id });
      q.ruleInsert.run(id, encodeValue(rule), desired, now, now);
    }
    return toRule(q.ruleGet.get(id) as RuleRow);
  });

  let closed = false;
  return {
    file,
    schemaVersion: SCHEMA_VERSION,

    putStream: (s, opts = {}) => putStream(s, opts.replace ?? false),
    getStream: (name) => (q.streamGet.get(name) as StreamRecord | undefined) ?? undefined,
    listStreams: (kind) => (kind ? q.streamListKind.all(kind) : q.streamList.all()) as StreamRecord[],
    deleteStream: (name) => q.streamDelete.run(name).changes > 0,

    putRule: (id, rule, opts = {}) => putRule(id, rule, opts.desired ?? 'running', opts.replace ?? false),
    getRule: (id) => {
      const r = q.ruleGet.get(id) as RuleRow | undefined;
      return r ? toRule(r) : undefined;
    },
    listRules: () => (q.ruleList.all() as RuleRow[]).map(toRule),
    deleteRule: (id) => deleteRule(id),
    setRuleDesired: (id, desired) => {
      if (desired !== 'running' && desired !== 'stopped')
        throw new StreamplugError('E_BAD_REQUEST', `desired state ${JSON.stringify(desired)} is invalid, expected "running" or "stopped"`);
      if (q.ruleDesired.run(desired, Date.now(), id).changes === 0) throw notFound('rule', id);
    },
    setRuleStatus: (id, status) => {
      if (q.ruleStatus.run(encodeValue(status), id).changes === 0) throw notFound('rule', id);
    },

    kvGet: (scope, key) => {
      const r = q.kvGet.get(scope, key) as { value: string } | undefined;
      return r ? decodeValue(r.value) : undefined;
    },
    kvPut: (scope, key, value) => {
      q.kvPut.run(scope, key, encodeValue(value), Date.now());
    },
    kvPutMany: (scope, entries) => kvPutMany(scope, entries),
    kvDelete: (scope, key) => q.kvDelete.run(scope, key).changes > 0,
    kvList: (scope) => Object.fromEntries((q.kvList.all(scope) as { key: string; value: string }[]).map((r) => [r.key, decodeValue(r.value)])),
    kvClear: (scope) => q.kvClear.run(scope).changes,
    kvKeys: (scope) => (q.kvKeys.all(scope) as { key: string }[]).map((r) => r.key),

    saveCheckpoint: (ruleId, state) => replaceScope(checkpointScope(ruleId), state),
    loadCheckpoint: (ruleId) =>
      Object.fromEntries((q.kvList.all(checkpointScope(ruleId)) as { key: string; value: string }[]).map((r) => [r.key, decodeValue(r.value)])),

    transaction: <T>(fn: () => T): T => tx(fn)(),
    close: () => {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}
