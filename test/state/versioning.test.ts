/**
 * Contract 1.3 state versioning, in process: builds of one stateful plugin with state versions 1,
 * 2 (with migrate_state) and 3 (without), each from plugin.h in the setup. A state exported by one
 * version and imported by another is restored, migrated or dropped, with a log line naming both.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PluginRegistry } from '../../src/plugins/index.js';
import type { PluginLogLine } from '../../src/plugins/native-addon.js';
import { buildTally } from './tally.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-state-version-'));
const logs: PluginLogLine[] = [];
const registry = new PluginRegistry({ onLog: (l) => logs.push(l) });
const files: Record<string, string> = {};

before(() => {
  files.v1 = buildTally(work, 'v1', { state: 1 });
  files.v1b = buildTally(work, 'v1b', { state: 1, version: '1.1.0' });
  files.v2 = buildTally(work, 'v2', { state: 2, migrate: true });
  files.v3 = buildTally(work, 'v3', { state: 3 });
  files.v0 = buildTally(work, 'v0', { state: 0 });
  files.reserved = buildTally(work, 'reserved', { state: 1, putReserved: '@streamplug.state_version' });
});
after(() => {
  registry.unloadAll();
  fs.rmSync(work, { recursive: true, force: true });
});

/** Plugin log lines reach JS through a thread-safe function: wait for the one wanted. */
async function logged(re: RegExp): Promise<PluginLogLine> {
  const end = Date.now() + 5000;
  for (;;) {
    const line = logs.find((l) => l.plugin === 'tally' && re.test(l.message));
    if (line) return line;
    if (Date.now() > end) throw new Error(`no log line matching ${re}; have ${JSON.stringify(logs)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Loads `file` as the only tally, runs `calls` single-row calls after importing `state`. */
async function run(file: string, state: Record<string, Uint8Array> | undefined, calls: number, isolation?: 'process') {
  if (registry.get('tally')) registry.unload('tally');
  await registry.load(file, isolation ? { isolation } : {});
  const inst = registry.getFunction('tally')!.instantiate('r1');
  try {
    const imported = state ? inst.importState!(state) : undefined;
    const results: unknown[] = [];
    for (let i = 0; i < calls; i++) results.push(inst.call(0));
    return { imported, results, exported: inst.exportState!() };
  } finally {
    inst.close();
  }
}

describe('state versioning (contract 1.3)', () => {
  it('stamps an exported state with the plugin\'s state version; the same version restores it', async () => {
    const a = await run(files.v1, undefined, 3);
    assert.deepEqual(a.results, [1n, 2n, 3n]);
    assert.deepEqual(Object.keys(a.exported).sort(), ['@streamplug.state_version', 'n']);
    assert.equal(Buffer.from(a.exported['@streamplug.state_version']).toString(), '1');
    const b = await run(files.v1b, a.exported, 2); // another build, same state version
    assert.equal(b.imported?.outcome, 'restored');
    assert.deepEqual(b.results, [4n, 5n]);
  });

  it('another version with migrate_state: the hook rewrites the old keys and the count continues', async () => {
    logs.length = 0;
    const a = await run(files.v1, undefined, 4);
    const b = await run(files.v2, a.exported, 2);
    assert.deepEqual(b.imported, { outcome: 'migrated', from: 1, to: 2, message: 'function tally (plugin tally, rule r1): checkpoint state migrated from version 1 to 2' });
    assert.deepEqual(b.results, [5n, 6n]);
    assert.deepEqual(Object.keys(b.exported).sort(), ['@streamplug.state_version', 'count']);
    assert.equal(Buffer.from(b.exported.count).toString(), '6');
    const line = await logged(/migrated from version 1 to 2/);
    assert.equal(line.rule, 'r1');
    assert.equal(line.level, 30);
  });

  it('another version without migrate_state: the state is dropped with a log line naming both versions', async () => {
    logs.length = 0;
    const a = await run(files.v2, { count: Buffer.from('41'), '@streamplug.state_version': Buffer.from('2') }, 1);
    assert.deepEqual(a.results, [42n]);
    const b = await run(files.v3, a.exported, 2);
    assert.equal(b.imported?.outcome, 'dropped');
    assert.deepEqual(b.results, [1n, 2n], 'v3 starts with no state, not with v2\'s');
    const line = await logged(/dropped/);
    assert.equal(line.level, 40);
    assert.match(line.message, /checkpoint state of version 2 dropped: the plugin declares state version 3 and has no migrate_state hook/);
  });

  it('a failing migrate_state drops the state and logs the hook\'s reason with both versions', async () => {
    logs.length = 0;
    const b = await run(files.v2, { count: Buffer.from('9'), '@streamplug.state_version': Buffer.from('7') }, 1);
    assert.equal(b.imported?.outcome, 'dropped');
    assert.deepEqual(b.results, [1n]);
    await logged(/state of version 7 dropped: migrate_state to version 2 failed: tally cannot migrate tally state from version 7 to 2/);
  });

  it('an unversioned checkpoint (written before 1.3, or by state version 0) is version 0', async () => {
    const old = await run(files.v0, undefined, 2);
    assert.deepEqual(Object.keys(old.exported), ['count'], 'state version 0 exports its keys alone, as before 1.3');
    const b = await run(files.v3, old.exported, 1);
    assert.deepEqual([b.imported?.outcome, b.imported?.from, b.imported?.to], ['dropped', 0, 3]);
    const back = await run(files.v0, (await run(files.v1, undefined, 1)).exported, 1);
    assert.deepEqual([back.imported?.outcome, back.imported?.from, back.imported?.to, back.results[0]], ['dropped', 1, 0, 1n], 'a downgrade to an unversioned build drops too');
  });

  it('isolation "process" (the worker) stamps and checks the same way', async () => {
    logs.length = 0;
    const a = await run(files.v1, undefined, 2, 'process');
    assert.equal(Buffer.from(a.exported['@streamplug.state_version']).toString(), '1');
    const b = await run(files.v2, a.exported, 1, 'process');
    assert.deepEqual(b.results, [3n], 'migrated in the worker: the count continues');
    await logged(/function tally \(plugin tally, rule r1\): checkpoint state migrated from version 1 to 2/);
    const c = await run(files.v3, b.exported, 1, 'process');
    assert.deepEqual(c.results, [1n], 'dropped in the worker');
    await logged(/checkpoint state of version 2 dropped: the plugin declares state version 3/);
    await assert.rejects(run(files.v1, { n: new Uint8Array(8), '@streamplug.state_version': Buffer.from('x') }, 0, 'process'), /expected a decimal state version/);
  });

  it('a forged stamp is refused; the reserved key prefix is the host\'s', async () => {
    if (registry.get('tally')) registry.unload('tally');
    await registry.load(files.v1);
    const inst = registry.getFunction('tally')!.instantiate('r1');
    try {
      assert.throws(() => inst.importState!({ n: new Uint8Array(8), '@streamplug.state_version': Buffer.from('one') }), {
        code: 'E_BAD_REQUEST', message: /@streamplug\.state_version is 'one', expected a decimal state version/,
      });
      assert.throws(() => inst.importState!({ '@streamplug.state_version': Buffer.from('99999999999') }), { code: 'E_BAD_REQUEST' });
    } finally {
      inst.close();
    }
    registry.unload('tally');
    await registry.load(files.reserved);
    const bad = registry.getFunction('tally')!.instantiate('r1');
    try {
      assert.throws(() => bad.call(0), { message: /state_put: key "@streamplug\.state_version" is reserved to the host/ });
    } finally {
      bad.close();
    }
  });
});
