/**
 * better-sqlite3 without @types/better-sqlite3 (not installed): the few members the store uses,
 * typed here, loaded through createRequire because the package is CommonJS.
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

export function openDatabase(file: string): Database {
  const Ctor = require('better-sqlite3') as DatabaseCtor;
  return new Ctor(file, { timeout: 5000 });
}
