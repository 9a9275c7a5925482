/**
 * The rules service over real native sample plugins, a real SQLite store and the in-process memory
 * connectors: lifecycle, fan-out of one source, windows closed by the timer, persistence across a
 * close/reopen, and a rule whose plugin is gone failing alone.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { isStreamplugError } from '../../src/errors.js';
import { collect, openService, publish, sampleRegistryIn, tempDir, waitFor, WORDS, WORD_COUNTS } from './helpers.js';
import { ISOLATION_MODES, loadIn } from '../helpers/isolation.js';
import type { PluginRegistry } from '../../src/plugins/registry.js';
import { samplesDir } from '../helpers/paths.js';

const rejectsWith = (code: string) => (e: unknown) => isStreamplugError(e) && e.code === code;

for (const mode of ISOLATION_MODES) describe(`rules service (plugins ${mode})`, () => {
  let reg: PluginRegistry;
  before(async () => {
    reg = await sampleRegistryIn(mode);
  });
  after(() => {
    reg.unloadAll();
  });

  it('runs accumulateWordCount with eKuiper\'s sample results and keeps per-rule state apart', async () => {
    const dir = tempDir('rules-wc');
    const o = openService(dir, reg);
    try {
      o.service.createStream('CREATE STREAM words (words string) WITH (TYPE="memory", DATASOURCE="t/wc/in")');
      const out = collect('t/wc/out');
      const other = collect('t/wc/other');
      await o.service.createRule({ id: 'wc', sql: 'SELECT accumulateWordCount(words, ",") AS wc FROM words', actions: [{ memory: { topic: 't/wc/out' } }] });
      await o.service.createRule({ id: 'wc2', sql: 'SELECT accumulateWordCount(words, ",") AS wc FROM words WHERE words LIKE "john%"', actions: [{ memory: { topic: 't/wc/other' } }] });
      publish('t/wc/in', WORDS.map((words) => ({ words })));
      await waitFor('8 word counts', () => out.rows.length === 8 && other.rows.length === 2);
      assert.deepEqual(out.rows.map((r) => r.wc), WORD_COUNTS);
      assert.deepEqual(other.rows.map((r) => r.wc), [3, 11]); // its own counter: 3, then 3 + 8
      const st = o.service.ruleStatus('wc');
      assert.equal(st.status, 'running');
      assert.equal(st.source?.rules, 2, 'both rules share the stream\'s one source');
      assert.equal(st.source?.batches, 1, 'messages of one event-loop turn are pushed as one batch');
      assert.deepEqual(out.batches.map((b) => b.length), [1, 1, 1, 1, 1, 1, 1, 1], 'without a window each row is its own sink message');
      assert.equal(st.operators.find((op) => op.name === 'project')?.recordsOut, 8);
      await waitFor('sink counters', () => o.service.ruleStatus('wc').sinks[0].recordsOut === 8);
      assert.equal(o.service.ruleStatus('wc').metrics['op_project_0_records_out_total'], 8);
      assert.deepEqual(o.service.rulesUsing('accumulateWordCount'), ['wc', 'wc2']);
      assert.deepEqual(o.service.rulesUsing('vector'), []);
      out.stop();
      other.stop();
    } finally {
      await o.close();
    }
  });

  it('emits time windows from the timer, with a native scalar inside a built-in aggregate and a native aggregate', async () => {
    const dir = tempDir('rules-win');
    const o = openService(dir, reg);
    try {
      o.service.createStream('CREATE STREAM s (x float) WITH (TYPE="memory", DATASOURCE="t/win/in")');
      const out = collect('t/win/out');
      await o.service.createRule({
        id: 'win',
        sql: 'SELECT sum(scale(x, 2.5)) AS s, countPlusOne(x) AS c, count(*) AS n FROM s GROUP BY TUMBLINGWINDOW(ms, 200)',
        actions: [{ memory: { topic: 't/win/out' } }],
      });
      publish('t/win/in', [{ x: 1 }, { x: 2 }, { x: 4 }]);
      // No further row arrives: only the rule's timer can close the window(s).
      await waitFor('the windows holding all three rows', () => out.rows.reduce((a, r) => a + (r.n as number), 0) === 3);
      assert.equal(out.rows.reduce((a, r) => a + (r.s as number), 0), 17.5);
      for (const r of out.rows) assert.equal(r.c, (r.n as number) + 1, 'countPlusOne = rows in the window + 1');
    } finally {
      await o.close();
    }
  });

  it('stops, starts, restarts, updates and deletes; refuses clashes and unknown ids', async () => {
    const dir = tempDir('rules-life');
    const o = openService(dir, reg);
    const s = o.service;
    try {
      s.createStream('CREATE STREAM s (x float) WITH (TYPE="memory", DATASOURCE="t/life/in")');
      const out = collect('t/life/out');
      const rule = { id: 'r', sql: 'SELECT echo(x) AS e FROM s', actions: [{ memory: { topic: 't/life/out' } }] };
      assert.deepEqual(await s.createRule(rule), { id: 'r', status: 'running' });
      await assert.rejects(s.createRule(rule), rejectsWith('E_CONFLICT'));
      publish('t/life/in', [{ x: 1 }]);
      await waitFor('first row', () => out.rows.length === 1);
      await s.stopRule('r');
      assert.equal(s.ruleStatus('r').status, 'stopped');
      assert.equal(s.ruleStatus('r').source, undefined);
      publish('t/life/in', [{ x: 2 }]);
      await s.startRule('r');
      publish('t/life/in', [{ x: 3 }]);
      await waitFor('row after start', () => out.rows.length === 2);
      assert.deepEqual(out.rows.map((r) => r.e), [1, 3], 'a stopped rule sees nothing');
      await s.restartRule('r');
      await s.updateRule('r', { sql: 'SELECT scale(x, 10.0) AS e FROM s', actions: [{ memory: { topic: 't/life/out' } }] });
      assert.equal(s.describeRule('r').sql, 'SELECT scale(x, 10.0) AS e FROM s');
      publish('t/life/in', [{ x: 4 }]);
      await waitFor('row after update', () => out.rows.length === 3);
      assert.equal(out.rows[2].e, 40);
      assert.deepEqual(s.rulesUsing('vector'), ['r']);
      assert.throws(() => s.dropStream('s'), rejectsWith('E_CONFLICT'));
      await s.deleteRule('r');
      assert.deepEqual(s.listRules(), []);
      assert.throws(() => s.ruleStatus('r'), rejectsWith('E_NOT_FOUND'));
      await assert.rejects(s.startRule('r'), rejectsWith('E_NOT_FOUND'));
      assert.equal(s.dropStream('s').message, 'Stream s is dropped.');
      assert.deepEqual(s.listStreams(), []);
      out.stop();
    } finally {
      await o.close();
    }
  });

  it('refuses bad rules with the reason and position, storing nothing', async () => {
    const dir = tempDir('rules-bad');
    const o = openService(dir, reg);
    const s = o.service;
    try {
      s.createStream('CREATE STREAM s (x float, w string) WITH (TYPE="memory", DATASOURCE="t/bad/in")');
      const base = { id: 'b', actions: [{ log: {} }] };
      const cases: [unknown, string, RegExp][] = [
        [{ ...base, sql: 'SELECT x FROM s WHERE' }, 'E_SQL_SYNTAX', /line 1, column 22/],
        [{ ...base, sql: 'SELECT y FROM s' }, 'E_SQL_SEMANTIC', /y/],
        [{ ...base, sql: 'SELECT x FROM nowhere' }, 'E_SQL_SEMANTIC', /nowhere/],
        [{ ...base, sql: 'SELECT nosuch(x) FROM s' }, 'E_UNKNOWN_FUNCTION', /nosuch .*line 1, column 8/],
        [{ ...base, sql: 'SELECT accumulateWordCount(w, w) FROM s' }, 'E_ARG_LITERAL', /accumulateWordCount/],
        [{ ...base, sql: 'SELECT scale(x) FROM s' }, 'E_ARITY', /scale/],
        [{ id: 'b', sql: 'SELECT x FROM s', actions: [{ kafka: {} }] }, 'E_CONNECTOR_CONFIG', /kafka.*unknown/],
        [{ id: 'b', sql: 'SELECT x FROM s', actions: [{ mqtt: {} }] }, 'E_CONNECTOR_CONFIG', /actions\[0\]\.mqtt.*topic/],
        [{ id: 'b', sql: 'SELECT x FROM s', actions: [] }, 'E_BAD_REQUEST', /actions/],
        [{ id: 'b c', sql: 'SELECT x FROM s', actions: [{ log: {} }] }, 'E_BAD_REQUEST', /rule id/],
        [{ id: 'b', sql: 'SELECT x FROM s', actions: [{ log: {} }], graph: {} }, 'E_BAD_REQUEST', /graph/],
      ];
      for (const [body, code, re] of cases) {
        await assert.rejects(s.createRule(body), (e: unknown) => {
          assert.ok(isStreamplugError(e), String(e));
          assert.equal(e.code, code, e.message);
          assert.match(e.message, re);
          return true;
        }, JSON.stringify(body));
      }
      assert.deepEqual(s.listRules(), []);
      assert.deepEqual(o.store.listRules(), []);
      assert.throws(() => s.createStream('CREATE STREAM t () WITH (TYPE="carrier-pigeon", DATASOURCE="x")'), rejectsWith('E_CONNECTOR_CONFIG'));
      assert.throws(() => s.createStream('CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="x")'), rejectsWith('E_CONFLICT'));
    } finally {
      await o.close();
    }
  });

  it('comes back after close and reopen: streams, rules and each rule\'s running or stopped state', async () => {
    const dir = tempDir('rules-restore');
    let o = openService(dir, reg);
    o.service.createStream('CREATE STREAM s (x float) WITH (TYPE="memory", DATASOURCE="t/rs/in")');
    await o.service.createRule({ id: 'on', sql: 'SELECT scale(x, 3.0) AS y FROM s', actions: [{ memory: { topic: 't/rs/on' } }, { file: { path: 'out/on.jsonl', interval: 0 } }] });
    await o.service.createRule({ id: 'off', sql: 'SELECT x FROM s', actions: [{ memory: { topic: 't/rs/off' } }] });
    await o.service.stopRule('off');
    await o.service.createRule({ id: 'never', sql: 'SELECT x FROM s', actions: [{ memory: { topic: 't/rs/off' } }], triggered: false });
    await o.close();

    o = openService(dir, reg);
    try {
      const report = await o.service.restore();
      assert.deepEqual(report, { streams: 1, rules: 3, started: ['on'], failed: [] });
      assert.deepEqual(o.service.listRules(), [
        { id: 'never', status: 'stopped' },
        { id: 'off', status: 'stopped' },
        { id: 'on', status: 'running' },
      ]);
      const on = collect('t/rs/on');
      const off = collect('t/rs/off');
      publish('t/rs/in', [{ x: 2 }]);
      await waitFor('restored rule output', () => on.rows.length === 1);
      assert.equal(on.rows[0].y, 6);
      await o.service.stopRule('on'); // drains and closes the file sink
      assert.equal(fs.readFileSync(path.join(dir, 'out/on.jsonl'), 'utf8'), '{"y":6}\n');
      assert.equal(off.rows.length, 0);
      on.stop();
      off.stop();
    } finally {
      await o.close();
    }
  });

  it('a rule whose plugin is gone fails to start with a clear status while the others keep running', async () => {
    const dir = tempDir('rules-missing');
    let o = openService(dir, reg);
    o.service.createStream('CREATE STREAM s (x float) WITH (TYPE="memory", DATASOURCE="t/miss/in")');
    await o.service.createRule({ id: 'needs-vector', sql: 'SELECT scale(x, 2.0) AS y FROM s', actions: [{ memory: { topic: 't/miss/a' } }] });
    await o.service.createRule({ id: 'plain', sql: 'SELECT echo(x) AS y FROM s', actions: [{ memory: { topic: 't/miss/b' } }] });
    await o.close();

    reg.unload('vector'); // the plugin is gone when the host comes back
    o = openService(dir, reg);
    try {
      const report = await o.service.restore();
      assert.deepEqual(report.started, ['plain']);
      assert.equal(report.failed.length, 1);
      assert.equal(report.failed[0].id, 'needs-vector');
      assert.equal(report.failed[0].code, 'E_UNKNOWN_FUNCTION');
      const st = o.service.ruleStatus('needs-vector');
      assert.equal(st.status, 'failed');
      assert.equal(st.error?.code, 'E_UNKNOWN_FUNCTION');
      assert.match(st.message ?? '', /needs-vector cannot start: .*unknown function scale/);
      assert.deepEqual(o.service.rulesUsing('vector'), ['needs-vector'], 'still reported as a user of the plugin');
      await assert.rejects(o.service.startRule('needs-vector'), rejectsWith('E_UNKNOWN_FUNCTION'));

      const b = collect('t/miss/b');
      publish('t/miss/in', [{ x: 5 }]);
      await waitFor('the other rule', () => b.rows.length === 1);
      assert.equal(b.rows[0].y, 5);
      b.stop();

      await loadIn(reg, path.join(samplesDir, 'vector.so'), mode); // back: a start now works
      await o.service.startRule('needs-vector');
      assert.equal(o.service.ruleStatus('needs-vector').status, 'running');
    } finally {
      await o.close();
    }
  });

  it('a rule whose sink cannot open is created but failed; its stream source is not left running', async () => {
    const dir = tempDir('rules-sinkfail');
    const o = openService(dir, reg);
    try {
      o.service.createStream('CREATE STREAM s (x float) WITH (TYPE="memory", DATASOURCE="t/sf/in")');
      const r = await o.service.createRule({ id: 'deaf', sql: 'SELECT x FROM s', actions: [{ mqtt: { topic: 'out', server: 'tcp://127.0.0.1:1', connectTimeout: 2000 } }] });
      assert.equal(r.status, 'failed');
      assert.match(r.message ?? '', /actions\[0\]\.mqtt.*cannot connect/);
      assert.equal(o.service.ruleStatus('deaf').error?.code, 'E_SINK_FAILED');
      assert.equal(o.store.getRule('deaf')?.desired, 'running', 'the wish stays: a later restore tries again');
    } finally {
      await o.close();
    }
  });
});
