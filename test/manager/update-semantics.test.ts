/**
 * Update semantics: an identical zip is "unchanged" and reloads nothing; a pending update is
 * applied by sending it again once no rule uses the plugin (the running library, not the record,
 * decides); describe shows `running` apart from `installed`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PluginManager } from '../../src/manager/manager.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { makeZip, sample, tmpDir } from './zips.js';

describe('plugin update semantics', () => {
  const root = tmpDir('update-semantics');
  const data = path.join(root, 'data');
  const z = (n: string) => path.join(root, n);
  const registry = new PluginRegistry({ onLog: () => undefined });
  let usedBy: string[] = [];
  const manager = new PluginManager({ dataDir: data, registry, usage: { rulesUsing: () => usedBy } });
  const update = (zip: string) => manager.update({ type: 'functions', name: 'echo', source: { file: z(zip) } });

  before(async () => {
    const v2 = z('echo-v2.so');
    // Other bytes, same code: trailing bytes after the ELF image change the hash only.
    fs.writeFileSync(v2, Buffer.concat([fs.readFileSync(sample('echo.so')), Buffer.from('v2')]));
    await makeZip(z('v1.zip'), [{ name: 'echo.so', file: sample('echo.so') }, { name: 'etc/echo/settings.json', data: '{"x":1}' }]);
    await makeZip(z('v1-other-etc.zip'), [{ name: 'echo.so', file: sample('echo.so') }, { name: 'etc/echo/settings.json', data: '{"x":2}' }]);
    await makeZip(z('v2.zip'), [{ name: 'echo.so', file: v2 }]);
    await manager.start();
    await manager.install({ type: 'functions', name: 'echo', source: { file: z('v1.zip') } });
  });
  after(() => {
    registry.unloadAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('an identical zip answers "unchanged" and reloads nothing: an open instance keeps working', async () => {
    const file = registry.get('echo')!.file;
    const inst = registry.getFunction('echo')!.instantiate('rule-open');
    try {
      const r = await update('v1.zip');
      assert.equal(r.unchanged, true);
      assert.equal(r.state, 'loaded');
      assert.match(r.message, /function plugin echo is unchanged: the zip holds the library already running/);
      assert.equal(registry.get('echo')!.file, file);
      assert.equal(inst.call(5), 5);
    } finally {
      inst.close();
    }
  });

  it('the same library with other etc files is an update, not "unchanged"', async () => {
    const r = await update('v1-other-etc.zip');
    assert.equal(r.unchanged, undefined);
    assert.match(r.message, /is updated/);
    const placed = manager.record('functions', 'echo')!.etcFiles ?? [];
    assert.equal(placed.length, 1);
    assert.equal(fs.readFileSync(path.join(data, placed[0]), 'utf8'), '{"x":2}');
  });

  it('a pending update is applied when the same zip comes again once no rule uses the plugin', async () => {
    const v1File = registry.get('echo')!.file;
    usedBy = ['r1'];
    const pending = await update('v2.zip');
    assert.equal(pending.state, 'pending-restart');
    let d = manager.describe('functions', 'echo');
    assert.equal(d.state, 'pending-restart');
    assert.equal(d.running?.file, v1File, 'running: the old library');
    assert.equal(d.installed.file, pending.file, 'installed: the new one');
    assert.notEqual(d.running?.file, d.installed.file);

    usedBy = []; // the rules were deleted
    const again = await update('v2.zip');
    assert.equal(again.unchanged, undefined, 'not "unchanged": what runs is v1');
    assert.equal(again.state, 'loaded');
    assert.match(again.message, /function plugin echo is updated$/);
    assert.equal(registry.get('echo')!.file, pending.file, 'the new library is mapped now');
    d = manager.describe('functions', 'echo');
    assert.equal(d.state, 'loaded');
    assert.equal(d.running?.file, d.installed.file);
    assert.equal(fs.existsSync(v1File), false, 'the library that was running is removed');

    const third = await update('v2.zip');
    assert.equal(third.unchanged, true, 'and now it is unchanged');
  });
});
