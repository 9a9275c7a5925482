/**
 * Signatures cover a manifest of every file in the zip, downgrades need force, names are unique
 * regardless of case — on a real manager and registry with real zips of the sample plugins.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PluginManager } from '../../src/manager/manager.js';
import { packPlugin } from '../../src/manager/pack.js';
import { generateKeyPair, signManifest } from '../../src/manager/signature.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { startHostProcess } from '../helpers/host-process.js';
import { makeZip, pluginState, sample, type Entry } from '../manager/zips.js';
import { sampleZips, tempRoot } from './helpers.js';

const sha = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');
const bytesOf = (e: Entry) => (e.file ? fs.readFileSync(e.file) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? ''));

/** A zip whose NAME.sig signs `signed` (default: exactly `entries`). */
async function signedZip(out: string, entries: Entry[], pem: string, signed: Entry[] = entries, sigName = 'echo.sig'): Promise<void> {
  const files = Object.fromEntries(signed.map((e) => [e.name, sha(bytesOf(e))]));
  await makeZip(out, [...entries, { name: sigName, data: JSON.stringify(signManifest(files, pem)) }]);
}

describe('signatures over every file of the zip', () => {
  const root = tempRoot('sig');
  const data = path.join(root, 'data');
  const z = (n: string) => path.join(root, n);
  const trusted = generateKeyPair();
  let registry = new PluginRegistry({ onLog: () => undefined });
  let manager: PluginManager;
  const lib = fs.readFileSync(sample('echo.so'));
  const good: Entry[] = [
    { name: 'echo.so', data: lib },
    { name: 'echo.json', data: JSON.stringify({ version: '1.0.0', author: { name: 'ops' } }) },
    { name: 'echo.yaml', data: 'default:\n  x: 1\n' },
    { name: 'etc/echo/settings.json', data: '{"x":1}' },
    // a private dependency must itself be a loadable ELF library: any real shared object will do
    { name: 'lib/libhelper.so', data: fs.readFileSync(sample('vector.so')) },
  ];
  const replace = (name: string, data: string | Buffer) => good.map((e) => (e.name === name ? { name, data } : e));

  before(async () => {
    fs.mkdirSync(path.join(data, 'etc/trusted-keys'), { recursive: true });
    fs.writeFileSync(path.join(data, 'etc/trusted-keys/ops.pem'), trusted.publicPem);
    manager = new PluginManager({ dataDir: data, registry, requireSignatures: true });
    await manager.start();
  });
  after(() => {
    registry.unloadAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('refuses each tampered part separately, naming it, and leaves nothing behind', async () => {
    const cases: [string, Entry[], Entry[] | undefined, RegExp][] = [
      ['library', replace('echo.so', Buffer.concat([lib, Buffer.from('x')])), good, /changed: echo\.so/],
      ['forged metadata version', replace('echo.json', JSON.stringify({ version: '9.9.9', author: { name: 'ops' } })), good, /changed: echo\.json/],
      ['unsigned etc/hook.sh', [...good, { name: 'etc/hook.sh', data: '#!/bin/sh\nid\n' }], good, /not signed: etc\/hook\.sh/],
      ['changed etc/ file', replace('etc/echo/settings.json', '{"x":2}'), good, /changed: etc\/echo\/settings\.json/],
      ['changed yaml', replace('echo.yaml', 'default:\n  x: 2\n'), good, /changed: echo\.yaml/],
      ['added private library', [...good, { name: 'lib/libevil.so', data: fs.readFileSync(sample('countPlusOne.so')) }], good, /not signed: lib\/libevil\.so/],
      ['changed private library', replace('lib/libhelper.so', fs.readFileSync(sample('countPlusOne.so'))), good, /changed: lib\/libhelper\.so/],
      ['removed file', good.filter((e) => e.name !== 'echo.yaml'), good, /missing: echo\.yaml/],
    ];
    for (const [what, entries, signed, message] of cases) {
      await signedZip(z('t.zip'), entries, trusted.privatePem, signed);
      await assert.rejects(manager.install({ type: 'functions', name: 'echo', source: { file: z('t.zip') } }), (e: Error & { code: string }) => {
        assert.equal(e.code, 'E_SIGNATURE', what);
        assert.match(e.message, message, what);
        return true;
      });
      assert.deepEqual(pluginState(data).filter((f) => !f.startsWith('etc/trusted-keys')), [], `${what}: nothing left`);
    }
    // the manifest itself edited to match a forged file, without re-signing
    const forged = replace('echo.json', JSON.stringify({ version: '9.9.9' }));
    const sig = signManifest(Object.fromEntries(good.map((e) => [e.name, sha(bytesOf(e))])), trusted.privatePem);
    sig.files!['echo.json'] = sha(bytesOf(forged.find((e) => e.name === 'echo.json')!));
    await makeZip(z('t.zip'), [...forged, { name: 'echo.sig', data: JSON.stringify(sig) }]);
    await assert.rejects(manager.install({ type: 'functions', name: 'echo', source: { file: z('t.zip') } }), { code: 'E_SIGNATURE', message: /does not verify/ });
  });

  it('installs the intact zip and describe lists what was signed', async () => {
    await signedZip(z('good.zip'), good, trusted.privatePem);
    await manager.install({ type: 'functions', name: 'echo', source: { file: z('good.zip') } });
    const d = manager.describe('functions', 'echo');
    assert.equal(d.signedBy, trusted.fingerprint);
    assert.deepEqual(d.signedFiles, ['echo.json', 'echo.so', 'echo.yaml', 'etc/echo/settings.json', 'lib/libhelper.so']);
  });

  it('pack --key and sign produce zips install accepts', async () => {
    const etc = path.join(root, 'etc-src');
    fs.mkdirSync(etc, { recursive: true });
    fs.writeFileSync(path.join(etc, 'conf.json'), '{}');
    fs.writeFileSync(z('vector.json'), '{"version":"1.0.0"}');
    await packPlugin({ name: 'vector', library: sample('vector.so'), metadata: z('vector.json'), etcDir: etc, privateKeyPem: trusted.privatePem, out: z('vector.zip') });
    await manager.install({ type: 'functions', name: 'vector', source: { file: z('vector.zip') } });
    assert.deepEqual(manager.describe('functions', 'vector').signedFiles, ['etc/conf.json', 'vector.json', 'vector.so']);
    await manager.remove('functions', 'vector');
  });

  it('a tampered zip signed by a trusted key is refused even when signatures are not required', async () => {
    const relaxed = new PluginManager({ dataDir: path.join(root, 'relaxed'), registry: new PluginRegistry({ onLog: () => undefined }) });
    fs.mkdirSync(path.join(root, 'relaxed/etc/trusted-keys'), { recursive: true });
    fs.writeFileSync(path.join(root, 'relaxed/etc/trusted-keys/ops.pem'), trusted.publicPem);
    await relaxed.start();
    await signedZip(z('t2.zip'), [...good, { name: 'etc/hook.sh', data: 'id' }], trusted.privatePem, good);
    await assert.rejects(relaxed.install({ type: 'functions', name: 'echo', source: { file: z('t2.zip') } }), { code: 'E_SIGNATURE', message: /not signed: etc\/hook\.sh/ });
    // unsigned is fine there: requireSignatures is off
    await makeZip(z('unsigned.zip'), good);
    const r = await relaxed.install({ type: 'functions', name: 'echo', source: { file: z('unsigned.zip') } });
    assert.equal(r.state, 'loaded');
    await relaxed.remove('functions', 'echo');
  });

  it('at start, a library changed on disk after a signed install does not load', async () => {
    const rec = manager.record('functions', 'echo')!;
    const file = path.join(data, 'plugins/functions', rec.file);
    registry.unloadAll();
    fs.appendFileSync(file, 'tampered');
    registry = new PluginRegistry({ onLog: () => undefined });
    manager = new PluginManager({ dataDir: data, registry, requireSignatures: true });
    const report = await manager.start();
    assert.deepEqual(report.failed.map((f) => [f.name, f.code]), [['echo', 'E_SIGNATURE']]);
  });
});

describe('downgrades and case-insensitive names', () => {
  const root = tempRoot('down');
  const data = path.join(root, 'data');
  const z = (n: string) => path.join(root, n);
  const registry = new PluginRegistry({ onLog: () => undefined });
  const manager = new PluginManager({ dataDir: data, registry });
  before(async () => {
    await manager.start();
    for (const v of ['1.0.0', '1.2.0', '1.10.0']) {
      await makeZip(z(`echo-${v}.zip`), [{ name: 'echo.so', data: Buffer.concat([fs.readFileSync(sample('echo.so')), Buffer.from(v)]) }, { name: 'echo.json', data: JSON.stringify({ version: v }) }]);
    }
  });
  after(() => {
    registry.unloadAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('an update to an older version needs force', async () => {
    await manager.install({ type: 'functions', name: 'echo', source: { file: z('echo-1.2.0.zip') } });
    await manager.update({ type: 'functions', name: 'echo', source: { file: z('echo-1.10.0.zip') } }); // 1.10 > 1.2
    const before = pluginState(data);
    await assert.rejects(manager.update({ type: 'functions', name: 'echo', source: { file: z('echo-1.0.0.zip') } }), {
      code: 'E_DOWNGRADE',
      message: /1\.0\.0 is older than the installed 1\.10\.0; a downgrade needs force/,
    });
    assert.deepEqual(pluginState(data), before);
    await manager.update({ type: 'functions', name: 'echo', source: { file: z('echo-1.0.0.zip') }, force: true });
    assert.equal(manager.describe('functions', 'echo').version, '1.0.0');
  });

  it('Echo and echo are the same plugin name', async () => {
    await makeZip(z('Echo.zip'), [{ name: 'Echo.so', file: sample('echo.so') }]);
    await assert.rejects(manager.install({ type: 'functions', name: 'Echo', source: { file: z('Echo.zip') } }), {
      code: 'E_CONFLICT',
      message: /function plugin echo is installed and names are unique regardless of case/,
    });
  });
});

describe('the in-use check ignores case (REST, real host)', () => {
  it('a plugin installed as Echo cannot be deleted while a stopped rule calls echo()', async () => {
    const root = tempRoot('case');
    const zips = await sampleZips(path.join(root, 'zips'));
    await makeZip(path.join(root, 'Echo.zip'), [{ name: 'Echo.so', file: sample('echo.so') }]);
    const host = await startHostProcess({ dataDir: path.join(root, 'data'), args: ['--mqtt-port', '0'] });
    try {
      assert.equal((await host.api('POST', '/plugins/functions', { name: 'Echo', file: path.join(root, 'Echo.zip') })).status, 201);
      assert.equal((await host.api('POST', '/plugins/functions', { name: 'echo', file: zips.echo })).status, 409);
      assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM s (x float) WITH (TYPE="memory", DATASOURCE="t/case")' })).status, 201);
      assert.equal((await host.api('POST', '/rules', { id: 'r', sql: 'SELECT echo(x) AS y FROM s', actions: [{ log: {} }] })).status, 201);
      assert.equal((await host.api('POST', '/rules/r/stop')).status, 200);
      const del = await host.api('DELETE', '/plugins/functions/Echo');
      assert.equal(del.status, 409, del.text);
      assert.equal(del.body.error, 'E_PLUGIN_IN_USE');
      assert.deepEqual((await host.api('GET', '/plugins/functions/Echo')).body.rulesUsing, ['r']);
    } finally {
      await host.stop();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
