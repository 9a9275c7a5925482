/**
 * Isolation "process" beyond the shared sample tests: the worker refuses a bad plugin with the same
 * code and message as the host in-process (it runs the same validation code), long string and bytes
 * results cross (the worker asks for more room), a batch larger than the arena is refused cleanly,
 * plugin logs from any thread reach the host's log, unload runs close hooks and deinit in the worker,
 * and what cannot run isolated is refused by name.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PluginRegistry } from '../../src/plugins/registry.js';
import type { PluginLogLine } from '../../src/plugins/native-addon.js';
import type { Column } from '../../src/plugins/types.js';
import { samplesDir } from '../helpers/paths.js';
import { waitFor } from '../connectors/helpers.js';
import { buildFx, buildFxNode } from './fixtures.js';

/** What a load gives: its code and message, or "loaded". */
async function outcome(load: () => Promise<unknown> | unknown): Promise<{ code?: string; message: string }> {
  try {
    await load();
    return { message: 'loaded' };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { code: e.code, message: e.message };
  }
}

describe('the worker validates as the host does', () => {
  const cases: [string, string[], string][] = [
    ['fx-iso-magic', ['FX_NAME="fxim"', 'FX_MAGIC=0x1234'], 'E_BAD_MAGIC'],
    ['fx-iso-nocall', ['FX_NAME="fxin"', 'FX_NO_CALL'], 'E_BAD_DESCRIPTOR'],
    ['fx-iso-initfails', ['FX_NAME="fxif"', 'FX_INIT_FAILS'], 'E_INIT_FAILED'],
  ];
  for (const [name, defines, code] of cases) {
    it(`${name}: ${code} with the same message in both modes`, async () => {
      const file = buildFx(name, defines);
      const inProcess = await outcome(() => new PluginRegistry({ onLog: () => undefined }).load(file));
      const isolated = await outcome(() => new PluginRegistry({ onLog: () => undefined }).loadIsolated(file));
      assert.equal(inProcess.code, code);
      assert.deepEqual(isolated, inProcess);
    });
  }
});

describe('isolated calls', () => {
  it('long strings and bytes cross both ways, in one call or after the worker asks for more room', async () => {
    const reg = new PluginRegistry({ onLog: () => undefined });
    await reg.loadIsolated(buildFx('fx-iso-strings', ['FX_NAME="fxis"', 'FX_PREFIX="fis_"']));
    try {
      const echo = reg.requireFunction('fis_echo').instantiate('r');
      const upper = reg.requireFunction('fis_upper').instantiate('r');
      const words = Array.from({ length: 300 }, (_, i) => `row ${i} ` + 'é'.repeat(i * 7)); // up to ~4 KiB a row
      const strings: Column = { type: 'string', values: words, nulls: Uint8Array.from(words, (_, i) => (i === 5 ? 1 : 0)) };
      const out = echo.callBatch([strings], words.length);
      assert.equal(out.type, 'string');
      assert.deepEqual((out.values as string[]).filter((_, i) => i !== 5), words.filter((_, i) => i !== 5));
      assert.equal(out.nulls?.[5], 1);
      assert.deepEqual(upper.callBatch([{ type: 'string', values: ['ab', 'cd'] }], 2).values, ['AB', 'CD']);
      const blobs = [Uint8Array.of(0, 1, 2), new Uint8Array(10_000).fill(7), new Uint8Array(0)];
      const back = echo.callBatch([{ type: 'bytes', values: blobs }], 3);
      assert.equal(back.type, 'bytes');
      assert.deepEqual((back.values as Uint8Array[]).map((b) => Buffer.from(b).toString('hex')), blobs.map((b) => Buffer.from(b).toString('hex')));
    } finally {
      reg.unloadAll();
    }
  });

  it('a batch larger than the arena is refused (E_ISOLATION) and the worker goes on', async () => {
    const reg = new PluginRegistry({ onLog: () => undefined, isolation: { arenaBytes: 1024 * 1024 } });
    await reg.loadIsolated(buildFx('fx-iso-arena', ['FX_NAME="fxia"', 'FX_PREFIX="fia_"']));
    try {
      const add1 = reg.requireFunction('fia_add1').instantiate('r');
      const n = 200_000; // 1.6 MB of float64 in, as much out
      assert.throws(() => add1.callBatch([{ type: 'float64', values: new Float64Array(n) }], n), { code: 'E_ISOLATION', message: /arena .* has no room/ });
      assert.deepEqual(Array.from(add1.callBatch([{ type: 'float64', values: Float64Array.of(1, 2) }], 2).values as Float64Array), [2, 3]);
      assert.throws(() => add1.prepare(n), { code: 'E_ISOLATION' });
    } finally {
      reg.unloadAll();
    }
  });

  it('log lines, from the call\'s thread or another, reach the host\'s onLog with plugin and rule', async () => {
    const logs: PluginLogLine[] = [];
    const reg = new PluginRegistry({ onLog: (l) => logs.push(l) });
    await reg.loadIsolated(buildFx('fx-iso-log', ['FX_NAME="fxil"', 'FX_PREFIX="fil_"']));
    try {
      await waitFor('the init log line', () => logs.some((l) => l.message === 'fx ready'));
      const fn = reg.requireFunction('fil_log_thread').instantiate('rule-log');
      fn.call('from a thread');
      await waitFor('the thread\'s line', () => logs.some((l) => l.message.includes('from a thread')));
      const line = logs.find((l) => l.message.includes('from a thread'))!;
      assert.equal(line.plugin, 'fxil');
      assert.equal(line.rule, 'rule-log');
    } finally {
      reg.unloadAll();
    }
  });

  it('unload closes open instances (close hooks) and runs deinit, in the worker', async () => {
    const trace = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-iso-')), 'deinit.txt');
    process.env.FX_DEINIT_FILE = trace; // the worker inherits the host's environment
    const reg = new PluginRegistry({ onLog: () => undefined });
    try {
      await reg.loadIsolated(buildFx('fx-iso-unload', ['FX_NAME="fxiu"', 'FX_PREFIX="fiu_"']));
      reg.requireFunction('fiu_add1').instantiate('r1');
      reg.requireFunction('fiu_echo').instantiate('r2');
      const result = reg.unload('fxiu', { force: true });
      assert.deepEqual(result, { name: 'fxiu', closedInstances: 2, stillMapped: false });
      assert.equal(fs.readFileSync(trace, 'utf8'), 'deinit closes=2 magic=4242');
    } finally {
      delete process.env.FX_DEINIT_FILE;
    }
  });

  it('refuses what cannot run isolated (.node plugins); sources and sinks run isolated (test/io)', async () => {
    const reg = new PluginRegistry({ onLog: () => undefined });
    await assert.rejects(reg.loadIsolated(buildFxNode()), { code: 'E_ISOLATION', message: /\.node plugins run inside Node only/ });
    assert.deepEqual(reg.list(), []);
    await reg.loadIsolated(path.join(samplesDir, 'random.so'));
    try {
      assert.deepEqual(reg.connectors('random'), { sources: ['random'], sinks: [] });
    } finally {
      reg.unloadAll();
    }
  });
});
