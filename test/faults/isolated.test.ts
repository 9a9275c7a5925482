/**
 * Isolated mode with the host as a real child process: the crash corpus installed through REST with
 * "isolation": "process", fed rows through rules. The host never dies; /ping answers throughout;
 * the rule on a well-behaved plugin keeps exact results; every crash is logged by plugin, hook, rule
 * and signal; after 3 crashes within 5 minutes each crasher shows "state": "quarantined". A crash
 * in a constructor and an init that never returns fail the install, not the host.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HostProcess } from '../helpers/host-process.js';
import { crashPlugin, goodRule, install, readRows, ruleReady, startHost, testBroker, tmp, waitUntil, zipOf } from './helpers.js';

let broker: Awaited<ReturnType<typeof testBroker>>;
before(async () => {
  broker = await testBroker();
});
after(async () => {
  await broker.close();
});

const CALL_CRASHES = [
  { plugin: 'segv_call', how: /signal=SIGSEGV/ },
  { plugin: 'heap_overrun_call', how: /signal=SIG(SEGV|ABRT)/ },
  { plugin: 'stack_overflow_call', how: /signal=SIGSEGV/ },
  { plugin: 'exit_call', how: /signal=- exit=3/ },
] as const;

/** Polls /ping every 25 ms until stopped; counts the answers that were not 200 or took over 1 s. */
function pinger(host: HostProcess): { stop(): Promise<{ ok: number; bad: number }> } {
  let running = true;
  let ok = 0;
  let bad = 0;
  const loop = (async () => {
    while (running) {
      const t0 = Date.now();
      try {
        const r = await fetch(`${host.url}/ping`, { signal: AbortSignal.timeout(1000) });
        if (r.ok && Date.now() - t0 < 1000) ok++;
        else bad++;
      } catch {
        bad++;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ok, bad };
    },
  };
}

describe('isolated mode through REST: crashing plugins never take the host down', () => {
  it('four crashers in one host: each crash named, the good rule exact, /ping answering, quarantine after 3 crashes', async () => {
    const dir = tmp('isolated-rest');
    const data = path.join(dir, 'data');
    const out = path.join(dir, 'good.jsonl');
    const topic = 'in/isolated';
    const host = await startHost(data, broker.url);
    try {
      await goodRule(host, dir, topic, out);
      for (const c of CALL_CRASHES) {
        const r = await install(host, c.plugin, await zipOf(dir, c.plugin, crashPlugin(c.plugin)), { isolation: 'process' });
        assert.equal(r.status, 201, r.text);
        const d = await host.api('GET', `/plugins/functions/${c.plugin}`);
        assert.deepEqual([d.body.state, d.body.isolation], ['loaded', 'process']);
        const b = await host.api('POST', '/rules', { id: `bad_${c.plugin}`, sql: `SELECT ${c.plugin}(x) AS y FROM s`, actions: [{ file: { path: path.join(dir, `${c.plugin}.jsonl`), interval: 0 } }] });
        assert.equal(b.status, 201, b.text);
        await ruleReady(host, `bad_${c.plugin}`);
      }
      await ruleReady(host, 'good');
      const ping = pinger(host);
      const logs = () => host.stdout() + host.stderr();
      const crashLines = (plugin: string) => logs().split('\n').filter((l) => l.includes(`E_PLUGIN_CRASHED plugin=${plugin} `));
      for (let round = 1; round <= 3; round++) {
        await broker.publish(topic, { x: round });
        // Every crasher's worker dies on the row; the supervisor logs it and restarts the worker.
        for (const c of CALL_CRASHES) await waitUntil(`crash ${round} of ${c.plugin}`, () => crashLines(c.plugin).length >= round);
        if (round < 3) await new Promise((r) => setTimeout(r, 1500)); // backoff: 100, then 200 ms
      }
      for (const c of CALL_CRASHES) {
        const line = crashLines(c.plugin)[0];
        assert.match(line, new RegExp(`hook=call \\(${c.plugin}\\) rule=bad_${c.plugin}`), line);
        assert.match(line, c.how, line);
        await waitUntil(`${c.plugin} quarantined`, async () => (await host.api('GET', `/plugins/functions/${c.plugin}`)).body?.state === 'quarantined');
        const st = await host.api('GET', `/rules/bad_${c.plugin}/status`);
        assert.ok(JSON.stringify(st.body).includes(c.plugin), `rule status names ${c.plugin}: ${st.text}`);
      }
      await waitUntil('the good rule\'s three rows', () => readRows(out).length >= 3);
      assert.deepEqual(readRows(out).map((r) => r.y), [1, 2, 3], 'exact results through every crash');
      await broker.publish(topic, { x: 4 }); // the quarantined plugins are not called again
      await waitUntil('the good rule\'s fourth row', () => readRows(out).length >= 4);
      assert.deepEqual(readRows(out).map((r) => r.y), [1, 2, 3, 4]);
      const pings = await ping.stop();
      assert.equal(pings.bad, 0, `/ping failed or stalled ${pings.bad} times (answered ${pings.ok})`);
      assert.ok(pings.ok > 10);
      assert.equal((await host.api('GET', '/ping')).status, 200, 'the host is alive');
    } finally {
      await host.stop();
    }
  });

  it('abort() in a constructor and an init that never returns fail the install (named), not the host', async () => {
    const dir = tmp('isolated-rest-load');
    const data = path.join(dir, 'data');
    fs.mkdirSync(path.join(data, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(data, 'etc', 'host.json'), JSON.stringify({ loadTimeoutMs: 1500 }));
    const host = await startHost(data, broker.url);
    try {
      const abort = await install(host, 'abort_ctor', await zipOf(dir, 'abort_ctor', crashPlugin('abort_ctor')), { isolation: 'process' });
      assert.ok(abort.status >= 400, abort.text);
      // The install's trial load in a child process (install checks) or the worker: either way a
      // crash named with its signal, and the host untouched.
      assert.match(abort.body.error, /^E_(LOAD|PLUGIN)_CRASHED$/, abort.text);
      assert.match(abort.body.message, /abort_ctor\.so: .*SIGABRT/);
      const ping = pinger(host);
      const loop = await install(host, 'loop_init', await zipOf(dir, 'loop_init', crashPlugin('loop_init')), { isolation: 'process' });
      const pings = await ping.stop();
      assert.equal(loop.body.error, 'E_LOAD_TIMEOUT', loop.text);
      assert.equal(pings.bad, 0, '/ping answered while the plugin loaded');
      assert.ok(pings.ok >= 10, `answered ${pings.ok} pings during the 1.5 s load`);
      assert.equal((await host.api('GET', '/ping')).status, 200);
    } finally {
      await host.stop();
    }
  });
});
