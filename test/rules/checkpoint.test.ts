/**
 * Plugin function state survives a rule stop/start and a host restart through the store's
 * checkpoint: real native accumulateWordCount, real SQLite store, the real service closed and
 * reopened on the same data directory with the plugins loaded afresh.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isStreamplugError } from '../../src/errors.js';
import { collect, openService, publish, sampleRegistry, tempDir, waitFor, WORDS, WORD_COUNTS } from './helpers.js';

const SQL = 'SELECT accumulateWordCount(words, ",") AS wc FROM words';
const STREAM = (topic: string) => `CREATE STREAM words (words string) WITH (TYPE="memory", DATASOURCE="${topic}")`;
const rule = (id: string, out: string, options?: Record<string, unknown>) => ({ id, sql: SQL, actions: [{ memory: { topic: out } }], ...(options ? { options } : {}) });
const int64At = (bytes: Uint8Array) => Buffer.from(bytes).readBigInt64LE(0);

describe('rule checkpoints of plugin function state', () => {
  it('continues accumulateWordCount after the host restarts on the same data dir', async () => {
    const dir = tempDir('cp-host');
    let reg = await sampleRegistry();
    let o = openService(dir, reg);
    const out = collect('t/cp/host/out');
    try {
      o.service.createStream(STREAM('t/cp/host/in'));
      await o.service.createRule(rule('wc', 't/cp/host/out', { checkpointInterval: 0 }));
      publish('t/cp/host/in', WORDS.slice(0, 3).map((words) => ({ words })));
      await waitFor('3 counts', () => out.rows.length === 3);
      assert.deepEqual(out.rows.map((r) => r.wc), WORD_COUNTS.slice(0, 3));
      await o.close();
      // A new process in all but name: plugins loaded again, store and service reopened.
      reg.unloadAll();
      reg = await sampleRegistry();
      o = openService(dir, reg);
      const cp = o.store.loadCheckpoint('wc') as Record<string, Record<string, Uint8Array>>;
      assert.deepEqual(Object.keys(cp), ['accumulatewordcount#1']);
      assert.equal(int64At(cp['accumulatewordcount#1'].allwordcount), 8n, 'the checkpoint holds the total after 3 inputs');
      const report = await o.service.restore();
      assert.deepEqual(report.started, ['wc']);
      publish('t/cp/host/in', WORDS.slice(3).map((words) => ({ words })));
      await waitFor('8 counts', () => out.rows.length === 8);
      assert.deepEqual(out.rows.map((r) => r.wc), [3, 6, 8, 16, 20, 25, 27, 30]);
    } finally {
      out.stop();
      await o.close();
      reg.unloadAll();
    }
  });

  it('keeps the total over stop/start and restart, checkpoints periodically, resets on new SQL and on delete', async () => {
    const dir = tempDir('cp-life');
    const reg = await sampleRegistry();
    const o = openService(dir, reg);
    const s = o.service;
    const out = collect('t/cp/life/out');
    const send = (i: number) => publish('t/cp/life/in', [{ words: WORDS[i] }]);
    const last = () => out.rows[out.rows.length - 1]?.wc;
    try {
      s.createStream(STREAM('t/cp/life/in'));
      await s.createRule(rule('r', 't/cp/life/out', { checkpointInterval: 20 }));
      send(0);
      await waitFor('first count', () => out.rows.length === 1);
      // Periodic: the checkpoint appears while the rule still runs.
      await waitFor('a periodic checkpoint', () => Object.keys(o.store.loadCheckpoint('r')).length === 1);
      assert.equal(s.ruleStatus('r').status, 'running');
      await s.stopRule('r');
      await s.startRule('r');
      send(1);
      await waitFor('count after start', () => out.rows.length === 2);
      assert.equal(last(), 6, 'stop/start keeps the total');
      await s.restartRule('r');
      send(2);
      await waitFor('count after restart', () => out.rows.length === 3);
      assert.equal(last(), 8, 'restart keeps the total');

      // Same SQL, other options: the state stays.
      await s.updateRule('r', rule('r', 't/cp/life/out', { checkpointInterval: 0 }));
      send(3);
      await waitFor('count after same-SQL update', () => out.rows.length === 4);
      assert.equal(last(), 16);

      // New SQL: new call sites, the functions start afresh.
      await s.updateRule('r', { sql: `${SQL} WHERE words != ""`, actions: [{ memory: { topic: 't/cp/life/out' } }] });
      send(0);
      await waitFor('count after SQL update', () => out.rows.length === 5);
      assert.equal(last(), 3, 'an update with new SQL drops the checkpoint');

      await s.deleteRule('r');
      assert.deepEqual(o.store.loadCheckpoint('r'), {}, 'delete drops the checkpoint');
      await s.createRule(rule('r', 't/cp/life/out'));
      send(0);
      await waitFor('count after re-create', () => out.rows.length === 6);
      assert.equal(last(), 3, 'a rule created again under the same id starts afresh');
    } finally {
      out.stop();
      await o.close();
      reg.unloadAll();
    }
  });

  it('refuses a checkpointInterval that is not whole milliseconds >= 0', async () => {
    const reg = await sampleRegistry();
    const o = openService(tempDir('cp-bad'), reg);
    try {
      o.service.createStream(STREAM('t/cp/bad/in'));
      for (const bad of [-1, 1.5, '5000', null]) {
        await assert.rejects(o.service.createRule(rule('b', 't/cp/bad/out', { checkpointInterval: bad })), (e: unknown) => {
          assert.ok(isStreamplugError(e));
          assert.equal(e.code, 'E_BAD_REQUEST');
          assert.match(e.message, /checkpointInterval/);
          return true;
        });
      }
      assert.deepEqual(o.service.listRules(), []);
    } finally {
      await o.close();
      reg.unloadAll();
    }
  });
});
