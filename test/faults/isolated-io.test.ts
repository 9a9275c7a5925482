/**
 * An isolated plugin's SINK crashing, with the host as a real child process: iofx (test/io) is
 * installed through REST with "isolation": "process"; a rule writes to its fx_sink, which raises
 * SIGSEGV in collect. The host stays up and answers /ping, the crash is logged by plugin, sink,
 * rule and signal, the rule's status shows it, the worker restarts (a rule restart opens a new
 * sink there), and the third crash quarantines the plugin; a rule on another plugin keeps exact results.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildIoFx } from '../io/fixtures.js';
import { goodRule, readRows, ruleReady, startHost, testBroker, tmp, waitUntil, zipOf } from './helpers.js';

let broker: Awaited<ReturnType<typeof testBroker>>;
before(async () => {
  broker = await testBroker();
});
after(async () => {
  await broker.close();
});

describe('isolated sinks through REST', () => {
  it('a sink that crashes in its worker: host up, crash named in the log and the rule status, restart, quarantine after 3', async () => {
    const dir = tmp('isolated-io-rest');
    const data = path.join(dir, 'data');
    const out = path.join(dir, 'good.jsonl');
    const topic = 'in/isolated-io';
    const host = await startHost(data, broker.url);
    try {
      await goodRule(host, dir, topic, out);
      const r = await host.api('POST', '/plugins/sinks', { name: 'iofx', file: await zipOf(dir, 'iofx', buildIoFx()), isolation: 'process' });
      assert.equal(r.status, 201, r.text);
      const shown = await host.api('GET', '/plugins/sinks/iofx');
      assert.deepEqual([shown.body.state, shown.body.isolation], ['loaded', 'process'], shown.text);
      const c = await host.api('POST', '/rules', { id: 'crashy', sql: 'SELECT x FROM s', actions: [{ fx_sink: { path: path.join(dir, 'crashy.jsonl'), crashat: 1 } }] });
      assert.equal(c.status, 201, c.text);
      await ruleReady(host, 'crashy');
      await ruleReady(host, 'good');
      const logs = () => host.stdout() + host.stderr();
      const crashLines = () => logs().split('\n').filter((l) => l.includes('E_PLUGIN_CRASHED plugin=iofx '));
      for (let round = 1; round <= 3; round++) {
        await broker.publish(topic, { x: round });
        await waitUntil(`crash ${round}`, () => crashLines().length >= round);
        assert.equal((await host.api('GET', '/ping')).status, 200, 'the host is alive');
        if (round === 1) {
          assert.match(crashLines()[0], /E_PLUGIN_CRASHED plugin=iofx hook=sink fx_sink rule=crashy signal=SIGSEGV/, crashLines()[0]);
          const st = await waitUntil('the rule status to name the crash', async () => {
            const s = await host.api('GET', '/rules/crashy/status');
            return s.text.includes('E_PLUGIN_CRASHED') && s;
          });
          assert.match(st.text, /iofx/, st.text);
        }
        if (round < 3) {
          // The supervisor restarts the worker; restarting the rule opens a new sink in it.
          await new Promise((r) => setTimeout(r, 1500)); // backoff: 100, then 200 ms
          assert.equal((await host.api('POST', '/rules/crashy/restart')).status, 200);
          await ruleReady(host, 'crashy');
        }
      }
      await waitUntil('iofx quarantined', async () => (await host.api('GET', '/plugins/sinks/iofx')).body?.state === 'quarantined');
      await waitUntil("the good rule's three rows", () => readRows(out).length >= 3);
      assert.deepEqual(readRows(out).map((row) => row.y), [1, 2, 3], 'exact results through every crash');
      assert.equal((await host.api('GET', '/ping')).status, 200);
    } finally {
      await host.stop();
    }
  });
});
