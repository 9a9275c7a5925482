/**
 * Isolation "process" under attack: plugins that segfault, exit, throw, overrun the heap or the
 * stack in a call, abort in a constructor, never return from init, sleep in a call or flood the
 * log, and one that throws a C++ exception (a failed call, as in-process). The host (this test process) must stay up, keep other plugins answering exactly, report
 * each crash by plugin, hook, rule and signal, restart the worker, quarantine a plugin after 3
 * crashes, kill a call past callTimeoutMs, and leave no worker behind when it dies itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { IsolationOptions } from '../../src/plugins/isolated/index.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import type { PluginCrashEvent } from '../../src/plugins/types.js';
import type { Column, FunctionInstance } from '../../src/plugins/types.js';
import { repoRoot, samplesDir } from '../helpers/paths.js';
import { waitFor } from '../connectors/helpers.js';
import { buildCrash } from './fixtures.js';

interface Host {
  registry: PluginRegistry;
  crashes: PluginCrashEvent[];
  reports: string[];
}

/** A registry as the host makes one, with crash events and report lines captured; short backoff. */
function host(isolation: IsolationOptions = {}): Host {
  const crashes: PluginCrashEvent[] = [];
  const reports: string[] = [];
  const registry = new PluginRegistry({
    onLog: () => undefined,
    onCrash: (e) => crashes.push(e),
    isolation: { backoffMs: 20, report: (l) => reports.push(l), ...isolation },
  });
  return { registry, crashes, reports };
}

const f64 = (...values: number[]): Column => ({ type: 'float64', values: Float64Array.from(values) });
const workerOf = (h: Host, name: string) => h.registry.status(name)!.worker!;

/** vector's scale, isolated too: the bystander whose answers must stay exact. */
async function bystander(h: Host): Promise<FunctionInstance> {
  await h.registry.loadIsolated(path.join(samplesDir, 'vector.so'));
  return h.registry.requireFunction('scale').instantiate('other-rule');
}
function assertExact(scale: FunctionInstance): void {
  assert.deepEqual(Array.from(scale.callBatch([f64(1, 2.5, -4), f64(2, 2, 2)], 3).values as Float64Array), [2, 5, -8]);
}

const CALL_CRASHES: [variant: string, how: RegExp][] = [
  ['SEGV', /signal=SIGSEGV/],
  ['EXIT', /exit=3/],
  ['HEAP', /signal=SIGSEGV/],
  ['STACK', /signal=SIGSEGV/],
];

describe('a crash in a call', () => {
  for (const [variant, how] of CALL_CRASHES) {
    it(`${variant}: the host stays up, the crash is reported by name, the worker restarts`, async () => {
      const h = host();
      const scale = await bystander(h);
      await h.registry.loadIsolated(buildCrash(variant));
      const name = `fxcrash_${variant.toLowerCase()}`;
      const fn = h.registry.requireFunction('crash_me').instantiate('rule-7');
      try {
        assert.deepEqual(Array.from(fn.callBatch([f64(1, 2)], 2).values as Float64Array), [2, 4]);
        const firstPid = workerOf(h, name).pid;
        assert.throws(() => fn.callBatch([f64(1, -1)], 2), {
          code: 'E_PLUGIN_CRASHED',
          message: new RegExp(`plugin ${name} crashed in hook call \\(crash_me\\), rule rule-7`),
        });
        assertExact(scale); // another plugin's worker answers throughout
        assert.throws(() => fn.callBatch([f64(1)], 1), { code: 'E_PLUGIN_RESTARTING' }, 'no call goes into a dead worker');
        await waitFor('the crash event', () => h.crashes.length === 1);
        const e = h.crashes[0];
        assert.equal(e.plugin, name);
        assert.equal(e.hook, 'call (crash_me)');
        assert.equal(e.rule, 'rule-7');
        assert.equal(e.quarantine, false);
        const line = h.reports.find((l) => l.startsWith('E_PLUGIN_CRASHED'));
        assert.match(line ?? '', new RegExp(`plugin=${name} hook=call \\(crash_me\\) rule=rule-7`));
        assert.match(line ?? '', how);
        await waitFor('the restart', () => workerOf(h, name).state === 'ready');
        assert.notEqual(workerOf(h, name).pid, firstPid);
        assert.equal(workerOf(h, name).restarts, 1);
        // The same instance works again: the supervisor made it anew in the new worker.
        assert.deepEqual(Array.from(fn.callBatch([f64(3)], 1).values as Float64Array), [6]);
        assertExact(scale);
      } finally {
        h.registry.unloadAll();
      }
    });
  }

  it('a C++ exception thrown from a call fails that call, as in-process: no crash, the worker stays', async () => {
    const h = host();
    await h.registry.loadIsolated(buildCrash('THROW'));
    const fn = h.registry.requireFunction('crash_me').instantiate('r');
    try {
      const pid = workerOf(h, 'fxcrash_throw').pid;
      assert.throws(() => fn.callBatch([f64(-1)], 1), { code: 'E_FUNCTION_FAILED', message: /fxcrash_throw threw a C\+\+ exception in hook call: fxcrash threw on purpose/ });
      assert.deepEqual(Array.from(fn.callBatch([f64(4)], 1).values as Float64Array), [8]);
      assert.equal(workerOf(h, 'fxcrash_throw').pid, pid);
      assert.equal(h.crashes.length, 0);
    } finally {
      h.registry.unloadAll();
    }
  });

  it('three crashes within the window quarantine the plugin; its calls are refused, others go on', async () => {
    const h = host();
    const scale = await bystander(h);
    await h.registry.loadIsolated(buildCrash('SEGV'));
    const fn = h.registry.requireFunction('crash_me').instantiate('r');
    try {
      for (let i = 1; i <= 3; i++) {
        await waitFor('a ready worker', () => workerOf(h, 'fxcrash_segv').state === 'ready');
        assert.throws(() => fn.callBatch([f64(-1)], 1), { code: 'E_PLUGIN_CRASHED' });
        await waitFor(`crash event ${i}`, () => h.crashes.length === i);
      }
      assert.deepEqual(h.crashes.map((e) => e.quarantine), [false, false, true]);
      assert.equal(workerOf(h, 'fxcrash_segv').state, 'quarantined');
      assert.ok(h.reports.some((l) => /^E_QUARANTINED plugin=fxcrash_segv: 3 crashes within 300 s/.test(l)));
      await new Promise((r) => setTimeout(r, 200)); // no restart comes
      assert.equal(workerOf(h, 'fxcrash_segv').state, 'quarantined');
      assert.throws(() => fn.callBatch([f64(1)], 1), { code: 'E_QUARANTINED', message: /plugin fxcrash_segv is quarantined/ });
      assertExact(scale);
    } finally {
      h.registry.unloadAll();
    }
  });

  it('kill -9 of an idle worker is a crash too: reported with SIGKILL, restarted', async () => {
    const h = host();
    await h.registry.loadIsolated(buildCrash('SEGV'));
    const fn = h.registry.requireFunction('crash_me').instantiate('r');
    try {
      const pid = workerOf(h, 'fxcrash_segv').pid!;
      process.kill(pid, 'SIGKILL');
      await waitFor('the crash event', () => h.crashes.length === 1);
      assert.equal(h.crashes[0].signal, 'SIGKILL');
      assert.equal(h.crashes[0].hook, undefined, 'no call was running');
      await waitFor('the restart', () => workerOf(h, 'fxcrash_segv').state === 'ready');
      assert.deepEqual(Array.from(fn.callBatch([f64(5)], 1).values as Float64Array), [10]);
    } finally {
      h.registry.unloadAll();
    }
  });
});

describe('limits', () => {
  it('a call past callTimeoutMs kills the worker (E_CALL_TIMEOUT) and counts as a crash', async () => {
    const h = host({ callTimeoutMs: 300 });
    await h.registry.loadIsolated(buildCrash('SLEEP'));
    const fn = h.registry.requireFunction('crash_me').instantiate('slow-rule');
    try {
      const pid = workerOf(h, 'fxcrash_sleep').pid!;
      assert.throws(() => fn.callBatch([f64(-1)], 1), { code: 'E_CALL_TIMEOUT', message: /crash_me\), rule slow-rule ran longer than callTimeoutMs \(300 ms\)/ });
      await waitFor('the crash event', () => h.crashes.length === 1);
      assert.equal(h.crashes[0].signal, 'SIGKILL');
      assert.match(h.crashes[0].detail, /killed after exceeding callTimeoutMs \(300 ms\) in hook call \(crash_me\), rule slow-rule/);
      assert.equal(fs.existsSync(`/proc/${pid}`), false, 'the hung worker is gone');
      await waitFor('the restart', () => workerOf(h, 'fxcrash_sleep').state === 'ready');
      assert.deepEqual(Array.from(fn.callBatch([f64(2)], 1).values as Float64Array), [4]);
    } finally {
      h.registry.unloadAll();
    }
  });

  it('memoryLimitBytes (RLIMIT_AS) makes a big malloc fail inside the worker, not the host', async () => {
    const limited = host({ memoryLimitBytes: 256 * 1024 * 1024 });
    const free = host();
    await limited.registry.loadIsolated(buildCrash('ALLOC'));
    await free.registry.loadIsolated(buildCrash('ALLOC'));
    try {
      const a = limited.registry.requireFunction('crash_me').instantiate('r');
      assert.throws(() => a.callBatch([f64(-1)], 1), { code: 'E_FUNCTION_FAILED', message: /malloc of 1 GiB failed/ });
      const b = free.registry.requireFunction('crash_me').instantiate('r');
      assert.deepEqual(Array.from(b.callBatch([f64(-1)], 1).values as Float64Array), [-2]);
      assert.equal(limited.crashes.length, 0);
    } finally {
      limited.registry.unloadAll();
      free.registry.unloadAll();
    }
  });

  it('a plugin that floods the log cannot stall its calls: lines beyond the pipe are dropped', async () => {
    const h = host({ callTimeoutMs: 5000 });
    await h.registry.loadIsolated(buildCrash('LOG_FLOOD'));
    try {
      const fn = h.registry.requireFunction('crash_me').instantiate('r');
      for (let i = 0; i < 3; i++) assert.deepEqual(Array.from(fn.callBatch([f64(-1)], 1).values as Float64Array), [-2]);
      assert.equal(h.crashes.length, 0);
    } finally {
      h.registry.unloadAll();
    }
  });
});

describe('a crash while loading', () => {
  it('abort() in a constructor: the load fails with E_PLUGIN_CRASHED and SIGABRT, nothing is registered', async () => {
    const h = host();
    await assert.rejects(h.registry.loadIsolated(buildCrash('ABORT_CTOR')), { code: 'E_PLUGIN_CRASHED', message: /died while loading the plugin \(SIGABRT\)/ });
    assert.equal(h.registry.list().length, 0);
  });

  it('an init that never returns: E_LOAD_TIMEOUT after loadTimeoutMs, the worker is killed, the event loop stays free', async () => {
    const h = host({ loadTimeoutMs: 500 });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 20);
    const file = buildCrash('LOOP_INIT');
    try {
      await assert.rejects(h.registry.loadIsolated(file), { code: 'E_LOAD_TIMEOUT', message: /within 500 ms; it was killed/ });
    } finally {
      clearInterval(ticker);
    }
    assert.ok(ticks >= 5, `timers kept firing while the plugin loaded (${ticks} ticks)`);
    await waitFor('no worker left for the plugin', () => workerPidsFor(file).length === 0, 5000);
  });
});

/** Pids of streamplug_worker processes serving `file`. */
function workerPidsFor(file: string): number[] {
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (path.basename(argv[0]) === 'streamplug_worker' && argv[1] === file) pids.push(Number(e));
    } catch {
      // gone
    }
  }
  return pids;
}

describe('no orphans', () => {
  it('a host killed with SIGKILL takes its workers along', async () => {
    const file = buildCrash('SLEEP');
    // A host of its own: loads the plugin isolated, prints the worker's pid, waits to be killed.
    const script = `
      const { PluginRegistry } = await import(${JSON.stringify(path.join(repoRoot, 'dist/src/plugins/registry.js'))});
      const r = new PluginRegistry({ onLog: () => {} });
      await r.loadIsolated(${JSON.stringify(file)});
      console.log(r.status('fxcrash_sleep').worker.pid);
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await waitFor('the worker pid', () => /\d+\n/.test(out));
    const pid = Number(out.trim());
    assert.ok(fs.existsSync(`/proc/${pid}`), 'the worker runs');
    child.kill('SIGKILL');
    await waitFor('the worker to die with its host', () => !fs.existsSync(`/proc/${pid}`) || /State:\s+Z/.test(readStatus(pid)), 5000);
  });
});

describe('leftover workers', () => {
  it('reapLeftoverWorkers(tag) kills the workers of its tag that another process runs, and only those', async () => {
    const tag = `reap-test-${process.pid}`;
    const h = host({ tag });
    const other = host({ tag: `${tag}-other` });
    try {
      await h.registry.loadIsolated(buildCrash('EXIT'));
      await other.registry.loadIsolated(buildCrash('SEGV'));
      const mine = workerOf(h, 'fxcrash_exit').pid!;
      const theirs = workerOf(other, 'fxcrash_segv').pid!;
      // From this process, nothing is a leftover: these workers' host (us) is alive.
      const { reapLeftoverWorkers } = await import('../../src/plugins/isolated/index.js');
      assert.deepEqual(reapLeftoverWorkers(tag), []);
      // A new host on the same data directory (another process) finds them and kills them.
      const reaper = path.join(repoRoot, 'dist/src/plugins/isolated/index.js');
      const child = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(reaper)}); console.log(JSON.stringify(m.reapLeftoverWorkers(${JSON.stringify(tag)})));`], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      await new Promise((r) => child.on('close', r));
      assert.deepEqual(JSON.parse(out), [mine]);
      await waitFor('the reaped worker reported', () => h.crashes.length === 1);
      assert.equal(h.crashes[0].signal, 'SIGKILL');
      assert.equal(workerOf(other, 'fxcrash_segv').pid, theirs, 'another tag is left alone');
      assert.equal(other.crashes.length, 0);
    } finally {
      h.registry.unloadAll();
      other.registry.unloadAll();
    }
  });
});

function readStatus(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return '';
  }
}
