/**
 * The few database members the store uses, behind one interface with two engines:
 * - better-sqlite3 12 (typed here: @types/better-sqlite3 is not installed), on Node 20 and 22;
 * - Node's built-in node:sqlite on Node 24 and later, where better-sqlite3 12 aborts the process
 *   when a Statement is collected after the environment is gone ("Assertion failed: (env) !=
 *   nullptr" in RemoveEnvironmentCleanupHook; fixed only in better-sqlite3 13, which needs Node 22).
 * STREAMPLUG_SQLITE=better-sqlite3|node:sqlite forces one.
 */
import { createRequire } from 'node:module';

export interface RunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

export interface Statement {
  run(...params: unknown[]): RunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

export interface Database {
  readonly name: string;
  readonly open: boolean;
  readonly inTransaction: boolean;
  prepare(sql: string): Statement;
  exec(sql: string): Database;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  transaction<F extends (...args: never[]) => unknown>(fn: F): F;
  close(): Database;
}

type DatabaseCtor = new (filename: string, options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number }) => Database;

const require = createRequire(import.meta.url);

export function sqliteEngine(): 'better-sqlite3' | 'node:sqlite' {
  const forced = process.env.STREAMPLUG_SQLITE;
  if (forced === 'better-sqlite3' || forced === 'node:sqlite') return forced;
  return Number(process.versions.node.split('.')[0]) >= 24 ? 'node:sqlite' : 'better-sqlite3';
}

export function openDatabase(file: string): Database {
  if (sqliteEngine() === 'node:sqlite') return openNodeSqlite(file);
  const Ctor = require('better-sqlite3') as DatabaseCtor;
  return new Ctor(file, { timeout: 5000 });
}

interface NodeSqliteDb {
  readonly isOpen: boolean;
  readonly isTransaction: boolean;
  prepare(sql: string): Statement;
  exec(sql: string): void;
  close(): void;
}

/** node:sqlite wearing better-sqlite3's shape: pragma() and transaction() are built on exec. */
function openNodeSqlite(file: string): Database {
  const { DatabaseSync } = require('node:sqlite') as { DatabaseSync: new (f: string, o?: { timeout?: number }) => NodeSqliteDb };
  const db = new DatabaseSync(file, { timeout: 5000 });
  const self: Database = {
    name: file,
    get open() { return db.isOpen; },
    get inTransaction() { return db.isTransaction; },
    prepare: (sql) => db.prepare(sql),
    exec(sql) { db.exec(sql); return self; },
    pragma(source, options) {
      const rows = db.prepare(`PRAGMA ${source}`).all() as Record<string, unknown>[];
      if (!options?.simple) return rows;
      const first = rows[0];
      return first === undefined ? undefined : Object.values(first)[0];
    },
    transaction<F extends (...args: never[]) => unknown>(fn: F): F {
      return ((...args: never[]) => {
        // Nested calls join the outer transaction, as better-sqlite3's do (savepoints aside).
        if (db.isTransaction) return fn(...args);
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = fn(...args);
          db.exec('COMMIT');
          return result;
        } catch (err) {
          db.exec('ROLLBACK');
          throw err;
        }
      }) as F;
    },
    close() { db.close(); return self; },
  };
  return self;
}
