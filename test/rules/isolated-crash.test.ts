/**
 * A rule whose isolated plugin crashes, in the real rules service: the batch in flight is counted as
 * failed in that rule's status (E_PLUGIN_CRASHED, by name), a rule on another plugin keeps producing
 * exact results through the crash, and once the worker is back the crashed rule produces again.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { PluginRegistry } from '../../src/plugins/registry.js';
import type { PluginCrashEvent } from '../../src/plugins/types.js';
import { collect, openService, publish, tempDir, waitFor } from './helpers.js';
import { samplesDir } from '../helpers/paths.js';
import { buildCrash } from '../plugins/fixtures.js';

describe('rules over an isolated plugin that crashes', () => {
  const crashes: PluginCrashEvent[] = [];
  const reg = new PluginRegistry({ onLog: () => undefined, onCrash: (e) => crashes.push(e), isolation: { backoffMs: 20, report: () => undefined } });
  after(() => reg.unloadAll());

  it('fails the batch in flight in the rule status, keeps the other rule exact, produces again after the restart', async () => {
    await reg.loadIsolated(buildCrash('SEGV'));
    await reg.loadIsolated(path.join(samplesDir, 'vector.so'));
    const o = openService(tempDir('rules-isocrash'), reg);
    try {
      o.service.createStream('CREATE STREAM s (x float) WITH (TYPE="memory", DATASOURCE="t/isoc/in")');
      const bad = collect('t/isoc/bad');
      const good = collect('t/isoc/good');
      await o.service.createRule({ id: 'fragile', sql: 'SELECT crash_me(x) AS y FROM s', actions: [{ memory: { topic: 't/isoc/bad' } }] });
      await o.service.createRule({ id: 'steady', sql: 'SELECT scale(x, 3.0) AS y FROM s', actions: [{ memory: { topic: 't/isoc/good' } }] });

      publish('t/isoc/in', [{ x: 1 }, { x: 2 }]);
      await waitFor('both rules before the crash', () => bad.rows.length === 2 && good.rows.length === 2);
      publish('t/isoc/in', [{ x: -1 }]); // crashes fragile's worker
      await waitFor('the crash event', () => crashes.length === 1);
      assert.equal(crashes[0].plugin, 'fxcrash_segv');
      assert.equal(crashes[0].rule, 'fragile');
      assert.equal(crashes[0].signal, 'SIGSEGV');
      const st = o.service.ruleStatus('fragile');
      const project = st.operators.find((op) => op.name === 'project');
      assert.ok(project && project.exceptions >= 1, 'the failed batch is counted');
      assert.match(project?.lastError?.message ?? '', /plugin fxcrash_segv crashed in hook call \(crash_me\), rule fragile/);
      assert.equal(st.status, 'running', 'the rule itself keeps running');

      await waitFor('steady saw the crashing row too', () => good.rows.length === 3);
      await waitFor('the worker back', () => reg.status('fxcrash_segv')?.worker?.state === 'ready');
      publish('t/isoc/in', [{ x: 5 }]);
      await waitFor('both rules after the restart', () => bad.rows.length === 3 && good.rows.length === 4);
      assert.deepEqual(bad.rows.map((r) => r.y), [2, 4, 10]);
      assert.deepEqual(good.rows.map((r) => r.y), [3, 6, -3, 15], 'exact results throughout');
      bad.stop();
      good.stop();
    } finally {
      await o.close();
    }
  });
});
