/** The SQLite store: CRUD, transactions, checkpoints with int64/bytes, migrations, survival across reopen. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore, STORE_FILE } from '../../src/store/index.js';
import { SCHEMA_VERSION } from '../../src/store/schema.js';
import { openDatabase, sqliteEngine } from '../../src/store/sqlite.js';

const tempDir = () => mkdtempSync(path.join(os.tmpdir(), 'streamplug-store-'));

describe(`store (${sqliteEngine()})`, () => {
  it('keeps streams, rules, desired state, status and checkpoints across a reopen', () => {
    const dir = path.join(tempDir(), 'nested', 'data');
    let s = openStore(dir);
    assert.equal(s.file, path.join(dir, STORE_FILE));
    s.putStream({ name: 'demo', sql: 'CREATE STREAM demo () WITH (DATASOURCE="t", TYPE="mqtt")' });
    s.putStream({ name: 'lookup', sql: 'CREATE TABLE lookup () WITH (TYPE="memory")', kind: 'table' });
    s.putRule('r1', { id: 'r1', sql: 'SELECT * FROM demo', actions: [{ log: {} }] });
    s.putRule('r2', { id: 'r2', sql: 'SELECT 1 FROM demo' }, { desired: 'stopped' });
    s.setRuleDesired('r1', 'stopped');
    s.setRuleStatus('r2', { state: 'stopped', error: 'broker gone' });
    s.saveCheckpoint('r1', { count: 41n, bytes: new Uint8Array([0, 255, 7]), window: [{ t: 1.5 }], nested: { big: -9223372036854775808n } });
    s.kvPut('global', 'k', { v: 1 });
    s.close();
    s.close(); // idempotent

    s = openStore(dir);
    try {
      assert.deepEqual(s.listStreams().map((x) => [x.name, x.kind]), [['demo', 'stream'], ['lookup', 'table']]);
      assert.deepEqual(s.listStreams('table').map((x) => x.name), ['lookup']);
      assert.match(s.getStream('demo')!.sql, /DATASOURCE="t"/);
      assert.equal(typeof s.getStream('demo')!.created, 'number');
      const rules = s.listRules();
      assert.deepEqual(rules.map((r) => [r.id, r.desired]), [['r1', 'stopped'], ['r2', 'stopped']]);
      assert.deepEqual(rules[0].rule, { id: 'r1', sql: 'SELECT * FROM demo', actions: [{ log: {} }] });
      assert.equal(rules[0].lastStatus, undefined);
      assert.deepEqual(s.getRule('r2')!.lastStatus, { state: 'stopped', error: 'broker gone' });
      assert.deepEqual(s.loadCheckpoint('r1'), {
        count: 41n, bytes: new Uint8Array([0, 255, 7]), window: [{ t: 1.5 }], nested: { big: -9223372036854775808n },
      });
      assert.deepEqual(s.kvGet('global', 'k'), { v: 1 });
      assert.equal(s.schemaVersion, SCHEMA_VERSION);
    } finally {
      s.close();
    }
  });

  it('refuses duplicates unless replacing, and reports missing rules', () => {
    const s = openStore(tempDir());
    try {
      s.putStream({ name: 'a', sql: 'v1' });
      assert.throws(() => s.putStream({ name: 'a', sql: 'v2' }), { code: 'E_CONFLICT' });
      const created = s.getStream('a')!.created;
      assert.equal(s.putStream({ name: 'a', sql: 'v2' }, { replace: true }).sql, 'v2');
      assert.equal(s.getStream('a')!.created, created);
      assert.equal(s.deleteStream('a'), true);
      assert.equal(s.deleteStream('a'), false);
      assert.equal(s.getStream('a'), undefined);

      s.putRule('r', { v: 1 });
      assert.throws(() => s.putRule('r', { v: 2 }), { code: 'E_CONFLICT' });
      assert.deepEqual(s.putRule('r', { v: 2 }, { replace: true, desired: 'stopped' }).rule, { v: 2 });
      assert.throws(() => s.setRuleDesired('nope', 'running'), { code: 'E_NOT_FOUND' });
      assert.throws(() => s.setRuleStatus('nope', {}), { code: 'E_NOT_FOUND' });
      assert.throws(() => s.setRuleDesired('r', 'paused' as 'running'), { code: 'E_BAD_REQUEST' });
    } finally {
      s.close();
    }
  });

  it('replaces a checkpoint as a whole and deletes it with its rule', () => {
    const s = openStore(tempDir());
    try {
      s.putRule('r', {});
      s.saveCheckpoint('r', { a: 1, b: 2 });
      s.saveCheckpoint('r', { c: 3 });
      assert.deepEqual(s.loadCheckpoint('r'), { c: 3 });
      s.kvPutMany('other', { x: 1, y: 'two' });
      assert.deepEqual(s.kvList('other'), { x: 1, y: 'two' });
      assert.equal(s.kvDelete('other', 'x'), true);
      assert.equal(s.kvClear('other'), 1);
      assert.equal(s.deleteRule('r'), true);
      assert.deepEqual(s.loadCheckpoint('r'), {});
      assert.equal(s.getRule('r'), undefined);
    } finally {
      s.close();
    }
  });

  it('rolls a failed transaction back completely', () => {
    const s = openStore(tempDir());
    try {
      assert.throws(() =>
        s.transaction(() => {
          s.putStream({ name: 'x', sql: 'q' });
          s.kvPut('k', 'k', 1);
          s.putStream({ name: 'x', sql: 'again' }); // E_CONFLICT aborts the whole transaction
        }),
      { code: 'E_CONFLICT' });
      assert.equal(s.getStream('x'), undefined);
      assert.equal(s.kvGet('k', 'k'), undefined);
    } finally {
      s.close();
    }
  });

  it('uses WAL, stamps user_version, and refuses a store from a newer schema', () => {
    const dir = tempDir();
    openStore(dir).close();
    const db = openDatabase(path.join(dir, STORE_FILE));
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(() => openStore(dir), { code: 'E_STORE_VERSION' });
  });
});
