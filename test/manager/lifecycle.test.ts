import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PluginManager } from '../../src/manager/manager.js';
import { generateKeyPair, signBytes, signManifest } from '../../src/manager/signature.js';
import crypto from 'node:crypto';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { corpus, makeZip, pluginState, sample, tmpDir } from './zips.js';

describe('plugin lifecycle in one data directory', () => {
  const root = tmpDir('lifecycle');
  const data = path.join(root, 'data');
  const zips = path.join(root, 'zips');
  const z = (n: string) => path.join(zips, n);
  let registry = new PluginRegistry({ onLog: () => undefined });
  let usedBy: Record<string, string[]> = {};
  const usage = { rulesUsing: (p: string) => usedBy[p] ?? [] };
  let requireSignatures = false;
  let manager = new PluginManager({ dataDir: data, registry, usage });

  /** What a restart does: drop every library, then a fresh registry and manager scan the directory. */
  async function restart() {
    registry.unloadAll();
    registry = new PluginRegistry({ onLog: () => undefined });
    manager = new PluginManager({ dataDir: data, registry, usage, requireSignatures });
    return manager.start();
  }

  before(async () => {
    fs.mkdirSync(zips, { recursive: true });
    await makeZip(z('echo.zip'), [
      { name: 'echo.so', file: sample('echo.so') },
      { name: 'echo.json', data: JSON.stringify({ version: '1.0.0', author: { name: 'ekuiper' } }) },
      { name: 'etc/echo/settings.json', data: '{"x":1}' },
    ]);
    // Same plugin, other bytes: trailing bytes after the ELF image change the hash, not the code.
    const v2 = path.join(zips, 'echo-v2.so');
    fs.writeFileSync(v2, Buffer.concat([fs.readFileSync(sample('echo.so')), Buffer.from('v2')]));
    await makeZip(z('echo-v2.zip'), [{ name: 'echo@v2.so', file: v2 }]);
    await makeZip(z('dup-a.zip'), [{ name: 'dup-a.so', file: corpus('dup-a.so') }]);
    await makeZip(z('dup-b.zip'), [{ name: 'dup-b.so', file: corpus('dup-b.so') }]);
    await makeZip(z('vector.zip'), [{ name: 'vector.so', file: sample('vector.so') }]);
    await makeZip(z('textnode.zip'), [{ name: 'textnode.node', file: sample('textnode.node') }]);
    await manager.start();
  });
  after(() => {
    registry.unloadAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('installs with metadata and etc/, and describes it', async () => {
    await manager.install({ type: 'functions', name: 'echo', source: { file: z('echo.zip') } });
    const d = manager.describe('functions', 'echo');
    assert.equal(d.version, '1.0.0');
    assert.equal(d.state, 'loaded');
    assert.deepEqual(d.functions, ['echo']);
    assert.equal(d.check.loadable, true);
    assert.deepEqual(d.metadata?.author, { name: 'ekuiper' });
    assert.equal(fs.readFileSync(path.join(data, 'etc/plugins/functions/echo/echo/settings.json'), 'utf8'), '{"x":1}');
  });

  it('updates a .so in place of the old one: unloads, loads the new file, deletes the old', async () => {
    const before = manager.describe('functions', 'echo').file;
    const r = await manager.update({ type: 'functions', name: 'echo', source: { file: z('echo-v2.zip') } });
    assert.equal(r.message, 'function plugin echo is updated');
    assert.equal(r.state, 'loaded');
    assert.notEqual(r.file, before);
    assert.equal(fs.existsSync(before), false);
    assert.equal(registry.get('echo')!.file, r.file);
    const inst = registry.getFunction('echo')!.instantiate('t');
    assert.equal(inst.call('hi'), 'hi');
    inst.close();
    // etc/ came with v1 only and stays listed nowhere now
    assert.equal(fs.existsSync(path.join(data, 'etc/plugins/functions/echo/echo/settings.json')), true);
  });

  it('refuses a second install of the same name (409 material)', async () => {
    await assert.rejects(manager.install({ type: 'functions', name: 'echo', source: { file: z('echo.zip') } }), { code: 'E_CONFLICT' });
  });

  it('refuses a plugin whose function another plugin provides, leaving nothing of it', async () => {
    await manager.install({ type: 'functions', name: 'dup-a', source: { file: z('dup-a.zip') } });
    const stateBefore = pluginState(data);
    await assert.rejects(manager.install({ type: 'functions', name: 'dup-b', source: { file: z('dup-b.zip') } }), { code: 'E_DUPLICATE_FUNCTION' });
    assert.deepEqual(pluginState(data), stateBefore);
    assert.equal(registry.get('dup-b'), undefined);
    assert.equal(registry.getFunction('dupfn')!.plugin, 'dup-a');
    await manager.remove('functions', 'dup-a');
  });

  it('refuses "functions" the plugin does not provide, rolling back', async () => {
    await assert.rejects(
      manager.install({ type: 'functions', name: 'vector', source: { file: z('vector.zip') }, functions: ['scale', 'nope'] }),
      { code: 'E_UNKNOWN_FUNCTION', message: /does not provide nope; it provides scale/ },
    );
    assert.equal(registry.get('vector'), undefined);
    assert.deepEqual(manager.list('functions'), ['echo']);
  });

  it('registers a function list (eKuiper register) and refuses unknown names', async () => {
    await manager.install({ type: 'functions', name: 'vector', source: { file: z('vector.zip') } });
    assert.equal(await manager.registerFunctions('vector', ['scale']), 'function plugin vector function list is registered');
    await assert.rejects(manager.registerFunctions('vector', ['nope']), { code: 'E_UNKNOWN_FUNCTION' });
    assert.deepEqual(manager.describe('functions', 'vector').functions, ['scale']);
    assert.deepEqual(manager.udf('SCALE'), { name: 'scale', plugin: 'vector', type: 'functions' });
  });

  it('refuses to delete a plugin rules use, naming them, unless forced', async () => {
    usedBy = { vector: ['r1', 'r2'] };
    await assert.rejects(manager.remove('functions', 'vector'), { code: 'E_PLUGIN_IN_USE', message: /r1, r2/ });
    assert.deepEqual(manager.list('functions').sort(), ['echo', 'vector']);
    const r = await manager.remove('functions', 'vector', { force: true });
    assert.equal(r.message, 'function plugin vector is deleted');
    assert.equal(registry.getFunction('scale'), undefined);
    usedBy = {};
  });

  it('defers an update of a plugin in use to the next start', async () => {
    usedBy = { echo: ['r9'] };
    const oldFile = registry.get('echo')!.file;
    const r = await manager.update({ type: 'functions', name: 'echo', source: { file: z('echo.zip') } });
    assert.equal(r.state, 'pending-restart');
    assert.match(r.message, /takes effect at restart.*r9/);
    assert.equal(registry.get('echo')!.file, oldFile, 'the running library is untouched');
    assert.equal(manager.describe('functions', 'echo').state, 'pending-restart');
    usedBy = {};
    const report = await restart();
    assert.deepEqual(report.failed, []);
    assert.equal(registry.get('echo')!.file, r.file);
    assert.equal(fs.existsSync(oldFile), false, 'the replaced library is swept at start');
  });

  it('defers an update while function instances are open (a rule runs it), keeping the running library', async () => {
    const running = registry.get('echo')!.file;
    const inst = registry.getFunction('echo')!.instantiate('rule-x');
    try {
      const r = await manager.update({ type: 'functions', name: 'echo', source: { file: z('echo-v2.zip') } });
      assert.equal(r.state, 'pending-restart');
      assert.match(r.message, /open function instance/);
      assert.equal(registry.get('echo')!.file, running);
      assert.equal(inst.call(7), 7);
    } finally {
      inst.close();
    }
    await restart();
    assert.equal(registry.get('echo')!.file, path.join(data, 'plugins/functions', manager.record('functions', 'echo')!.file));
    assert.equal(fs.existsSync(running), false);
  });

  it('defers a .node update to restart, and deletes it by unregistering its functions', async () => {
    await manager.install({ type: 'functions', name: 'textnode', source: { file: z('textnode.zip') } });
    assert.ok(registry.getFunction('reverseText'));
    const r = await manager.update({ type: 'functions', name: 'textnode', source: { file: z('textnode.zip') } });
    assert.equal(r.state, 'loaded', 'same bytes: nothing to replace');
    const d = await manager.remove('functions', 'textnode');
    assert.equal(d.restartNeeded, true);
    assert.equal(registry.getFunction('reverseText'), undefined);
  });

  it('refuses unsigned and badly signed plugins when requireSignatures is set', async () => {
    const trusted = generateKeyPair();
    const other = generateKeyPair();
    fs.mkdirSync(path.join(data, 'etc/trusted-keys'), { recursive: true });
    fs.writeFileSync(path.join(data, 'etc/trusted-keys/ops.pem'), trusted.publicPem);
    requireSignatures = true;
    await restart();
    const lib = fs.readFileSync(sample('vector.so'));
    const h = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
    const sig = (pem: string, bytes = lib) => JSON.stringify(signManifest({ 'vector.so': h(bytes) }, pem));
    await makeZip(z('v-other.zip'), [{ name: 'vector.so', data: lib }, { name: 'vector.sig', data: sig(other.privatePem) }]);
    await makeZip(z('v-tampered.zip'), [{ name: 'vector.so', data: lib }, { name: 'vector.sig', data: sig(trusted.privatePem, Buffer.from('x')) }]);
    await makeZip(z('v-libonly.zip'), [{ name: 'vector.so', data: lib }, { name: 'vector.sig', data: JSON.stringify(signBytes(lib, trusted.privatePem)) }]);
    await makeZip(z('v-good.zip'), [{ name: 'vector.so', data: lib }, { name: 'vector.sig', data: sig(trusted.privatePem) }]);
    const before = pluginState(data);
    await assert.rejects(manager.install({ type: 'functions', name: 'vector', source: { file: z('vector.zip') } }), {
      code: 'E_SIGNATURE',
      message: /unsigned/,
    });
    await assert.rejects(manager.install({ type: 'functions', name: 'vector', source: { file: z('v-other.zip') } }), {
      code: 'E_SIGNATURE',
      message: new RegExp(`signed by key ${other.fingerprint}, which is not trusted`),
    });
    await assert.rejects(manager.install({ type: 'functions', name: 'vector', source: { file: z('v-tampered.zip') } }), {
      code: 'E_SIGNATURE',
      message: /differs from what key .* signed \(changed: vector\.so\)/,
    });
    await assert.rejects(manager.install({ type: 'functions', name: 'vector', source: { file: z('v-libonly.zip') } }), {
      code: 'E_SIGNATURE',
      message: /covers the library only/,
    });
    assert.deepEqual(pluginState(data), before);
    await manager.install({ type: 'functions', name: 'vector', source: { file: z('v-good.zip') } });
    assert.equal(manager.describe('functions', 'vector').signedBy, trusted.fingerprint);
    // At start, a recorded plugin that is not signed by a trusted key is not loaded.
    const report = await restart();
    assert.deepEqual(report.loaded.map((p) => p.name), ['vector']);
    assert.deepEqual(report.failed.map((p) => [p.name, p.code]), [['echo', 'E_SIGNATURE']]);
    // Deleting the key files does not turn signing off: requireSignatures is a setting, not a guess.
    fs.rmSync(path.join(data, 'etc/trusted-keys'), { recursive: true });
    await assert.rejects(manager.update({ type: 'functions', name: 'vector', source: { file: z('v-good.zip') } }), { code: 'E_SIGNATURE', message: /not trusted/ });
    const noKeys = await restart();
    assert.deepEqual(noKeys.loaded.map((p) => p.name), [], 'nothing loads without its trusted key');
    requireSignatures = false;
    await restart();
  });

  it('sweeps what a crash left at start and keeps loading the rest; a broken library never stops the start', async () => {
    const fns = path.join(data, 'plugins/functions');
    fs.mkdirSync(path.join(data, 'tmp/install-1-abc/x'), { recursive: true });
    fs.writeFileSync(path.join(data, 'tmp/install-1-abc/plugin.zip'), 'partial');
    fs.copyFileSync(sample('countPlusOne.so'), path.join(fns, 'countPlusOne@deadbeef.so')); // renamed in, no record
    fs.writeFileSync(
      path.join(data, 'plugins/records/functions.ghost.json'),
      JSON.stringify({ type: 'functions', name: 'ghost', file: 'ghost@01234567.so', flavour: 'so', sha256: 'x', installedAt: '', updatedAt: '', etcFiles: [] }),
    );
    fs.writeFileSync(path.join(data, 'plugins/records/functions.half.json.123.tmp'), '{');
    fs.mkdirSync(path.join(data, 'etc/plugins/functions/orphan'), { recursive: true });
    // a library dropped in by hand that cannot load: logged, skipped
    fs.copyFileSync(corpus('truncated.so'), path.join(fns, 'broken.so'));
    const report = await restart();
    assert.deepEqual(pluginState(data).filter((f) => !f.startsWith('etc/')), [
      'plugins/functions/broken.so',
      `plugins/functions/${manager.record('functions', 'echo')!.file}`,
      `plugins/functions/${manager.record('functions', 'vector')!.file}`,
      'plugins/records/functions.broken.json',
      'plugins/records/functions.echo.json',
      'plugins/records/functions.vector.json',
    ]);
    assert.equal(fs.existsSync(path.join(data, 'etc/plugins/functions/orphan')), false);
    assert.deepEqual(report.loaded.map((p) => p.name).sort(), ['echo', 'vector']);
    assert.deepEqual(report.failed.map((p) => [p.name, p.code]), [['broken', 'E_TRUNCATED']]);
    const d = manager.describe('functions', 'broken');
    assert.equal(d.state, 'failed');
    assert.equal(d.lastError?.code, 'E_TRUNCATED');
    assert.equal(d.check.loadable, false);
    await manager.remove('functions', 'broken');
  });
});
