/**
 * Faults the host contains without dying: C++ exceptions out of hooks (C++ and C plugins), a load
 * that never returns (E_LOAD_TIMEOUT while /ping keeps answering), and the fatal-signal handler
 * leaving signals outside plugin code alone (WebAssembly bounds checks, the host's own crashes).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { addonPath } from '../../src/plugins/native-addon.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import type { Column } from '../../src/plugins/types.js';
import { startHostProcess } from '../helpers/host-process.js';
import { samplesDir } from '../helpers/paths.js';
import { crashPlugin, install, tmp, zipOf } from './helpers.js';

const f64 = (...v: number[]): Column => ({ type: 'float64', values: Float64Array.from(v) });

describe('C++ exceptions out of a hook fail the call, never the host', () => {
  const registry = new PluginRegistry({ onLog: () => undefined });
  after(() => registry.unloadAll());

  for (const [plugin, what] of [
    ['throw_call', 'boom from throw_call'],
    ['throw_c_call', 'boom from a C\\+\\+ callee of a C hook'],
  ] as const) {
    it(`${plugin}: every call path reports "plugin ${plugin} threw a C++ exception in hook call: …"`, async () => {
      await registry.load(crashPlugin(plugin));
      const fn = registry.requireFunction(plugin).instantiate('r1');
      const message = new RegExp(`function ${plugin} \\(plugin ${plugin}, rule r1\\) call failed: plugin ${plugin} threw a C\\+\\+ exception in hook call: ${what}`);
      assert.throws(() => fn.callBatch([f64(1, 2)], 2), { code: 'E_FUNCTION_FAILED', message });
      assert.throws(() => fn.call(1), { code: 'E_FUNCTION_FAILED', message }); // the scalar entry
      const frame = fn.prepare(4);
      frame.args[0][0] = 1;
      assert.throws(() => frame.run(1), { code: 'E_FUNCTION_FAILED', message }); // the reusable frame
      // The instance and the plugin stay usable: a call that does not throw (no rows) succeeds.
      assert.deepEqual(fn.callBatch([f64()], 0).values, new Float64Array(0));
      fn.close();
    });
  }
});

describe('a load that never returns', () => {
  it('E_LOAD_TIMEOUT on install while /ping keeps answering; at start the plugin is failed and the host still starts', async () => {
    const dir = tmp('fault-loop-init');
    const data = path.join(dir, 'data');
    fs.mkdirSync(path.join(data, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(data, 'etc', 'host.json'), JSON.stringify({ loadTimeoutMs: 1500 }));
    let host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0'] });
    try {
      const zip = await zipOf(dir, 'loop_init', crashPlugin('loop_init'));
      let done = false;
      const pending = install(host, 'loop_init', zip).finally(() => (done = true));
      const pings: number[] = [];
      while (!done) {
        pings.push((await host.api('GET', '/ping')).status);
        await new Promise((r) => setTimeout(r, 100));
      }
      const r = await pending;
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error, 'E_LOAD_TIMEOUT');
      assert.match(r.body.message, /init of plugin loop_init did not finish within 1500 ms \(loadTimeoutMs\)/);
      assert.ok(pings.length >= 5, `the REST API answered during the load (${pings.length} pings)`);
      assert.ok(pings.every((s) => s === 200), `every /ping answered 200: ${pings.join(',')}`);
      // Another plugin still installs and works meanwhile (the stuck thread holds nothing).
      const echo = await install(host, 'echo', await zipOf(dir, 'echo', path.join(samplesDir, 'echo.so')));
      assert.equal(echo.status, 201, echo.text);
      await host.stop();

      // Dropped into the plugins folder: the start waits loadTimeoutMs at most, then runs without it.
      fs.copyFileSync(crashPlugin('loop_init'), path.join(data, 'plugins', 'functions', 'loop_init.so'));
      host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0'] });
      const d = await host.api('GET', '/plugins/functions/loop_init');
      assert.equal(d.body.state, 'failed');
      assert.equal(d.body.lastError.code, 'E_LOAD_TIMEOUT');
      assert.equal((await host.api('GET', '/plugins/functions/echo')).body.state, 'loaded');
    } finally {
      await host.stop();
    }
  });
});

/** Runs `code` (an ES module) in a fresh Node with the addon at hand; returns its exit and output. */
function runNode(code: string) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, ADDON: addonPath } });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

// (module (memory 1) (func (export "load") (param i32) (result i32) local.get 0 i32.load))
const WASM = '0061736d0100000001060160017f017f0302010005030100010708010' + '46c6f616400000a09010700200028020' + '00b';

describe('the fatal-signal handler leaves signals outside plugin code to their owners', () => {
  // V8 on x64 Linux checks wasm bounds with guard pages: the access faults (SIGSEGV) and Node's trap
  // handler, reached through ours, turns it into a WebAssembly.RuntimeError.
  it('a WebAssembly out-of-bounds access still throws its RuntimeError with the handler installed and a plugin called', () => {
    const journal = path.join(tmp('fault-wasm'), 'journal');
    const r = runNode(`
      import { createRequire } from 'node:module';
      const addon = createRequire(import.meta.url)(process.env.ADDON);
      addon.journalOpen(${JSON.stringify(journal)});
      const lib = await addon.openAsync(${JSON.stringify(path.join(samplesDir, 'echo.so'))}, 'echo');
      await lib.initAsync();
      const fn = lib.instance(0, 'r');
      const res = fn.call([[3, Float64Array.of(5), undefined, undefined, undefined, false]], 1, null, 3);
      if (res.values[0] !== 5) throw new Error('echo gave ' + res.values[0]);
      const { instance } = await WebAssembly.instantiate(Buffer.from('${WASM}', 'hex'));
      console.log('in bounds', instance.exports.load(0));
      try { instance.exports.load(1 << 20); console.log('no trap'); }
      catch (e) { console.log(e.constructor.name, e.message); }
    `);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /in bounds 0\nRuntimeError memory access out of bounds/);
    assert.doesNotMatch(r.stderr, /streamplug: fatal/);
  });

  it("the host's own SIGSEGV outside plugin code is not blamed on a plugin: default action, no crash line, nothing in the journal", () => {
    const journal = path.join(tmp('fault-own-segv'), 'journal');
    const r = runNode(`
      import { createRequire } from 'node:module';
      const addon = createRequire(import.meta.url)(process.env.ADDON);
      addon.journalOpen(${JSON.stringify(journal)});
      const lib = await addon.openAsync(${JSON.stringify(path.join(samplesDir, 'echo.so'))}, 'echo');
      await lib.initAsync();
      process.kill(process.pid, 'SIGSEGV');
      setTimeout(() => {}, 5000);
    `);
    assert.equal(r.signal, 'SIGSEGV', r.stderr);
    assert.doesNotMatch(r.stderr, /streamplug: fatal/);
    const next = runNode(`
      import { createRequire } from 'node:module';
      const addon = createRequire(import.meta.url)(process.env.ADDON);
      console.log(JSON.stringify(addon.journalOpen(${JSON.stringify(journal)})));
    `);
    assert.equal(next.status, 0, next.stderr);
    const report = JSON.parse(next.stdout);
    assert.equal(report.existed, true);
    assert.equal(report.clean, false, 'a signal is no clean exit');
    assert.deepEqual(report.entries, [], 'no thread was inside plugin code, no crash recorded');
  });
});

describe('the crash journal file', () => {
  it('a garbage or truncated journal is ignored and replaced; a journal re-opened by its own process blames nothing', () => {
    const dir = tmp('fault-journal-file');
    const journal = path.join(dir, 'journal');
    fs.writeFileSync(journal, 'SPJRNL01 but not a journal');
    const r = runNode(`
      import { createRequire } from 'node:module';
      const addon = createRequire(import.meta.url)(process.env.ADDON);
      const first = addon.journalOpen(${JSON.stringify(journal)});
      const lib = await addon.openAsync(${JSON.stringify(path.join(samplesDir, 'echo.so'))}, 'echo');
      await lib.initAsync();
      const again = addon.journalOpen(${JSON.stringify(journal)});
      const other = addon.journalOpen(${JSON.stringify(journal + '-2')});
      console.log(JSON.stringify({ first, again, other }));
    `);
    assert.equal(r.status, 0, r.stderr);
    const { first, again, other } = JSON.parse(r.stdout);
    assert.deepEqual([first.existed, first.entries], [false, []]);
    assert.deepEqual([again.existed, again.clean, again.entries], [true, true, []]);
    assert.equal(other.existed, false);
    assert.equal(fs.statSync(journal).size, fs.statSync(journal + '-2').size, 'both are journals of the same geometry');
  });
});
