/**
 * Schema migrations, applied in order by PRAGMA user_version. Append new steps; never edit a
 * released one (a store already at that version would never see the change).
 */
export const MIGRATIONS: readonly string[] = [
  // 1: streams/tables, rules with desired state, per-scope key/value (rule state checkpoints)
  `CREATE TABLE streams (
     name    TEXT PRIMARY KEY,
     kind    TEXT NOT NULL DEFAULT 'stream' CHECK (kind IN ('stream', 'table')),
     sql     TEXT NOT NULL,
     created INTEGER NOT NULL
   );
   CREATE TABLE rules (
     id          TEXT PRIMARY KEY,
     json        TEXT NOT NULL,
     desired     TEXT NOT NULL DEFAULT 'running' CHECK (desired IN ('running', 'stopped')),
     last_status TEXT,
     created     INTEGER NOT NULL,
     updated     INTEGER NOT NULL
   );
   CREATE TABLE kv (
     scope   TEXT NOT NULL,
     key     TEXT NOT NULL,
     value   TEXT NOT NULL,
     updated INTEGER NOT NULL,
     PRIMARY KEY (scope, key)
   ) WITHOUT ROWID;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
