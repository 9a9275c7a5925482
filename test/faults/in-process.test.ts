/**
 * In-process fault containment with the host as a real child process: each plugin of the crash
 * corpus kills the host with a crash line naming it; the next start quarantines it (persisted,
 * shown by REST), keeps the rules that use it stopped with the reason, runs every other rule with
 * exact results and survives the next messages (no crash loop). Enable lifts the quarantine.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { cliPath, type HostProcess } from '../helpers/host-process.js';
import { crashPlugin, exitOf, goodRule, install, readRows, ruleReady, startHost, testBroker, tmp, waitUntil, zipOf } from './helpers.js';

let broker: Awaited<ReturnType<typeof testBroker>>;
before(async () => {
  broker = await testBroker();
});
after(async () => {
  await broker.close();
});

/** How each call-time crasher ends the host: its exit as the parent sees it, and the crash line. */
const CALL_CRASHES = [
  { plugin: 'segv_call', exit: { code: null, signal: 'SIGSEGV' }, line: /streamplug: fatal SIGSEGV \(fault address 0x10\) in plugin segv_call \(.*segv_call@[0-9a-f]{8}\.so\) in hook call, rule bad/ },
  { plugin: 'heap_overrun_call', exit: { code: null, signal: 'SIGABRT' }, line: /streamplug: fatal SIGABRT .* in plugin heap_overrun_call \(.*\) in hook call, rule bad/ },
  { plugin: 'stack_overflow_call', exit: { code: null, signal: 'SIGSEGV' }, line: /streamplug: fatal SIGSEGV .* in plugin stack_overflow_call \(.*\) in hook call, rule bad/ },
  { plugin: 'exit_call', exit: { code: 3, signal: null }, line: /streamplug: fatal exit\(\) called by plugin exit_call \(.*\) in hook call, rule bad/ },
] as const;

async function stop(host: HostProcess | undefined): Promise<void> {
  if (host) await host.stop();
}

describe('in-process mode: a plugin that crashes the host is named, quarantined, and never crash-loops', () => {
  for (const c of CALL_CRASHES) {
    it(`${c.plugin}: the host dies with the crash line; the next start quarantines it and keeps the other rule exact`, async () => {
      const dir = tmp(`fault-${c.plugin}`);
      const data = path.join(dir, 'data');
      const out = path.join(dir, 'good.jsonl');
      const topic = `in/${c.plugin}`;
      let host: HostProcess | undefined = await startHost(data, broker.url);
      try {
        await goodRule(host, dir, topic, out);
        const r = await install(host, c.plugin, await zipOf(dir, c.plugin, crashPlugin(c.plugin)));
        assert.equal(r.status, 201, r.text);
        const b = await host.api('POST', '/rules', { id: 'bad', sql: `SELECT ${c.plugin}(x) AS y FROM s`, actions: [{ file: { path: path.join(dir, 'bad.jsonl'), interval: 0 } }] });
        assert.equal(b.status, 201, b.text);
        await ruleReady(host, 'good');
        await ruleReady(host, 'bad');

        await broker.publish(topic, { x: 1 });
        const exit = await exitOf(host, `${c.plugin} crashing it`);
        assert.deepEqual(exit, c.exit, host.stderr());
        assert.match(host.stderr(), c.line);
        const crashedAt = Date.now();

        // Next start: named, quarantined, the other rule runs; the next messages do not kill it.
        host = await startHost(data, broker.url);
        const logs = host.stdout() + host.stderr();
        assert.match(logs, new RegExp(`E_PLUGIN_CRASHED: plugin ${c.plugin} crashed the host at .* in hook call \\(rule bad\\)`));
        const d = await host.api('GET', `/plugins/functions/${c.plugin}`);
        assert.equal(d.status, 200, d.text);
        assert.equal(d.body.state, 'quarantined');
        assert.equal(d.body.isolation, 'in-process');
        assert.equal(d.body.crash.code, 'E_PLUGIN_CRASHED');
        assert.equal(d.body.crash.plugin, c.plugin);
        assert.equal(d.body.crash.hook, 'call');
        assert.equal(d.body.crash.rule, 'bad');
        if (c.exit.signal) assert.equal(d.body.crash.signal, c.exit.signal);
        assert.ok(Math.abs(Date.parse(d.body.crash.at) - crashedAt) < 60_000, `crash time ${d.body.crash.at}`);
        const record = JSON.parse(fs.readFileSync(path.join(data, 'plugins', 'records', `functions.${c.plugin}.json`), 'utf8'));
        assert.equal(record.quarantine.plugin, c.plugin, 'the quarantine is persisted in the record');

        const bad = await host.api('GET', '/rules/bad/status');
        assert.equal(bad.body.status, 'stopped');
        assert.match(bad.body.message, new RegExp(`stopped because plugin ${c.plugin} crashed the host at \\S+ in hook call`));
        await ruleReady(host, 'good');
        const before = readRows(out).length; // {y: 1} if the good rule's file flushed before the crash
        for (const x of [2, 3, 4]) await broker.publish(topic, { x });
        await waitUntil('three rows from the good rule', () => readRows(out).length >= before + 3);
        assert.deepEqual(readRows(out).slice(before), [{ y: 2 }, { y: 3 }, { y: 4 }]);
        assert.equal((await host.api('GET', '/ping')).status, 200);
        assert.equal(host.child.exitCode, null, 'the host survived the messages the crashed rule would have taken');

        // A third start: still quarantined (persisted), still no crash.
        await host.stop();
        host = await startHost(data, broker.url);
        assert.equal((await host.api('GET', `/plugins/functions/${c.plugin}`)).body.state, 'quarantined');
        assert.equal((await host.api('GET', '/rules/bad/status')).body.status, 'stopped');

        if (c.plugin === 'segv_call') {
          // The CLI lifts it too, on the data directory of a stopped host.
          await host.stop();
          host = undefined;
          const cli = spawnSync(process.execPath, [cliPath, 'plugin', 'enable', 'functions', c.plugin, '--data', data], { encoding: 'utf8' });
          assert.equal(cli.status, 0, cli.stderr);
          assert.match(cli.stdout, /function plugin segv_call is enabled and loaded/);
          assert.match(cli.stderr, /functions\/segv_call is quarantined: plugin segv_call crashed the host/);
          const rec = JSON.parse(fs.readFileSync(path.join(data, 'plugins', 'records', 'functions.segv_call.json'), 'utf8'));
          assert.equal(rec.quarantine, undefined);
          const usage = spawnSync(process.execPath, [cliPath, 'plugin', 'enable', 'functions'], { encoding: 'utf8' });
          assert.equal(usage.status, 2, usage.stderr);
        }
      } finally {
        await stop(host);
      }
    });
  }

  it("a crash on a thread of the plugin's own (no hook running) is blamed on the plugin by the faulting address", async () => {
    const dir = tmp('fault-segv-thread');
    const data = path.join(dir, 'data');
    let host: HostProcess | undefined = await startHost(data, broker.url);
    try {
      await install(host, 'segv_thread', await zipOf(dir, 'segv_thread', crashPlugin('segv_thread'))).catch(() => undefined); // the crash may beat the reply
      const exit = await exitOf(host, 'segv_thread crashing it');
      assert.deepEqual(exit, { code: null, signal: 'SIGSEGV' }, host.stderr());
      assert.match(host.stderr(), /streamplug: fatal SIGSEGV \(fault address 0x10\) in plugin segv_thread \(.*segv_thread@[0-9a-f]{8}\.so\) in hook own-thread;/);
      host = await startHost(data, broker.url);
      const d = await host.api('GET', '/plugins/functions/segv_thread');
      assert.equal(d.body.state, 'quarantined');
      assert.equal(d.body.crash.hook, 'own-thread');
      assert.ok(d.body.crash.backtrace.some((f: string) => /^segv_thread@[0-9a-f]{8}\.so\+0x[0-9a-f]+$/.test(f)), d.body.crash.backtrace.join(' '));
    } finally {
      await stop(host);
    }
  });

  it('abort() in a constructor of a file dropped into the plugins folder: one crash at start, then the host starts with it quarantined', async () => {
    const dir = tmp('fault-abort-ctor');
    const data = path.join(dir, 'data');
    fs.mkdirSync(path.join(data, 'plugins', 'functions'), { recursive: true });
    fs.copyFileSync(crashPlugin('abort_ctor'), path.join(data, 'plugins', 'functions', 'abort_ctor.so'));
    const first = await startHost(data, broker.url, { noWait: true });
    const exit = await exitOf(first, 'abort_ctor crashing it at start');
    assert.deepEqual(exit, { code: null, signal: 'SIGABRT' }, first.stderr());
    assert.match(first.stderr(), /streamplug: fatal SIGABRT .* in plugin abort_ctor \(.*abort_ctor\.so\) in hook dlopen/);

    const host = await startHost(data, broker.url);
    try {
      const d = await host.api('GET', '/plugins/functions/abort_ctor');
      assert.equal(d.body.state, 'quarantined');
      assert.equal(d.body.crash.hook, 'dlopen');
      assert.equal(d.body.crash.signal, 'SIGABRT');
      assert.match(host.stdout(), /E_PLUGIN_CRASHED: plugin abort_ctor crashed the host at .* in hook dlopen/);
    } finally {
      await host.stop();
    }
  });

  it('enable lifts the quarantine: the plugin loads and its held-back rule starts; a successful update lifts it too', async () => {
    const dir = tmp('fault-enable');
    const data = path.join(dir, 'data');
    const out = path.join(dir, 'good.jsonl');
    let host: HostProcess | undefined = await startHost(data, broker.url);
    try {
      await goodRule(host, dir, 'in/enable', out);
      assert.equal((await install(host, 'segv_call', await zipOf(dir, 'segv_call', crashPlugin('segv_call')))).status, 201);
      assert.equal((await host.api('POST', '/rules', { id: 'bad', sql: 'SELECT segv_call(x) AS y FROM s', actions: [{ nop: {} }] })).status, 201);
      await ruleReady(host, 'bad');
      await broker.publish('in/enable', { x: 1 });
      await exitOf(host, 'segv_call crashing it');

      host = await startHost(data, broker.url);
      assert.equal((await host.api('GET', '/plugins/functions/segv_call')).body.state, 'quarantined');
      const missing = await host.api('POST', '/plugins/functions/nope/enable');
      assert.equal(missing.status, 404, missing.text);
      const en = await host.api('POST', '/plugins/functions/segv_call/enable');
      assert.equal(en.status, 200, en.text);
      assert.match(en.text, /function plugin segv_call is enabled and loaded/);
      const d = await host.api('GET', '/plugins/functions/segv_call');
      assert.equal(d.body.state, 'loaded');
      assert.equal(d.body.crash, undefined);
      await waitUntil('the held-back rule running again', async () => (await host!.api('GET', '/rules/bad/status')).body.status === 'running');

      // Crash it again, then lift the quarantine by updating the plugin (here: to the echo-like good code).
      await ruleReady(host, 'bad');
      await broker.publish('in/enable', { x: 1 });
      await exitOf(host, 'segv_call crashing it');
      host = await startHost(data, broker.url);
      assert.equal((await host.api('GET', '/plugins/functions/segv_call')).body.state, 'quarantined');
      await host.api('DELETE', '/rules/bad');
      const up = await host.api('PUT', '/plugins/functions/segv_call', { file: await zipOf(dir, 'segv_call', crashPlugin('segv_call'), 'segv_call-v2') });
      assert.equal(up.status, 200, up.text);
      assert.equal((await host.api('GET', '/plugins/functions/segv_call')).body.state, 'loaded');
    } finally {
      await stop(host);
    }
  });
});
