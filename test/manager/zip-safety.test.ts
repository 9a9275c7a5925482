import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PluginManager } from '../../src/manager/manager.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { corpus, lieAboutSize, makeZip, pluginState, renameEntry, sample, tmpDir } from './zips.js';

/** Each malicious or broken zip is refused with its own code and leaves nothing behind. */
describe('zip install safety', () => {
  const root = tmpDir('zipsafety');
  const data = path.join(root, 'data');
  const zips = path.join(root, 'zips');
  const registry = new PluginRegistry({ onLog: () => undefined });
  const manager = new PluginManager({ dataDir: data, registry, limits: {} });

  before(async () => {
    fs.mkdirSync(zips);
    await manager.start();
  });
  after(() => {
    registry.unloadAll();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const z = (n: string) => path.join(zips, n);

  async function refused(zip: string, code: string, name = 'echo', extra: { sha256?: string } = {}): Promise<Error & { code: string }> {
    let caught: (Error & { code: string }) | undefined;
    await assert.rejects(manager.install({ type: 'functions', name, source: { file: zip }, ...extra }), (e: Error & { code: string }) => {
      caught = e;
      return true;
    });
    assert.equal(caught!.code, code, `expected ${code}, got ${caught!.code}: ${caught!.message}`);
    assert.deepEqual(pluginState(data), [], 'nothing may be left in the data directory');
    assert.deepEqual(registry.list(), [], 'nothing may stay loaded');
    assert.deepEqual(manager.list('functions'), []);
    return caught!;
  }

  it('installs a well-formed zip (the baseline the refusals are measured against)', async () => {
    await makeZip(z('good.zip'), [{ name: 'echo.so', file: sample('echo.so') }, { name: 'echo.json', data: '{"version":"1.0.0","author":"t"}' }]);
    const r = await manager.install({ type: 'functions', name: 'echo', source: { file: z('good.zip') } });
    assert.equal(r.message, 'function plugin echo is created');
    const sha8 = crypto.createHash('sha256').update(fs.readFileSync(sample('echo.so'))).digest('hex').slice(0, 8);
    assert.deepEqual(pluginState(data), [`plugins/functions/echo@${sha8}.so`, 'plugins/records/functions.echo.json']);
    const inst = registry.getFunction('echo')!.instantiate('t');
    assert.equal(inst.call(42), 42);
    inst.close();
    await manager.remove('functions', 'echo');
    assert.deepEqual(pluginState(data), []);
  });

  it('refuses zip slip (..) before writing anything outside', async () => {
    await makeZip(z('slip.zip'), [{ name: 'echo.so', file: sample('echo.so') }, { name: 'aa/bb/cc/dd/evil.so', data: 'x' }]);
    renameEntry(z('slip.zip'), 'aa/bb/cc/dd/evil.so', '../../../../evil.so');
    const e = await refused(z('slip.zip'), 'E_ZIP_SLIP');
    assert.match(e.message, /\.\.\/\.\.\/\.\.\/\.\.\/evil\.so/);
    assert.equal(fs.existsSync(path.join(root, 'evil.so')), false);
    assert.equal(fs.existsSync(path.join(path.dirname(root), 'evil.so')), false);
  });

  it('refuses an absolute entry path', async () => {
    await makeZip(z('abs.zip'), [{ name: 'echo.so', file: sample('echo.so') }, { name: 'xtmp/evil.so', data: 'x' }]);
    renameEntry(z('abs.zip'), 'xtmp/evil.so', '/tmp/evil.so');
    await refused(z('abs.zip'), 'E_ZIP_ABSOLUTE');
  });

  it('refuses a symbolic link entry', async () => {
    await makeZip(z('link.zip'), [{ name: 'echo.so', data: '/etc/passwd', mode: 0o120777 }]);
    await refused(z('link.zip'), 'E_ZIP_SYMLINK');
  });

  it('refuses a bomb by compression ratio, counting inflated bytes', async () => {
    await makeZip(z('ratio.zip'), [{ name: 'echo.so', file: sample('echo.so') }, { name: 'etc/zeros.bin', data: Buffer.alloc(20 * 1024 * 1024) }]);
    assert.ok(fs.statSync(z('ratio.zip')).size < 200 * 1024, 'the bomb is small on disk');
    await refused(z('ratio.zip'), 'E_ZIP_BOMB');
  });

  it('refuses a bomb by entry count', async () => {
    const entries = [{ name: 'echo.so', file: sample('echo.so') }];
    for (let i = 0; i < 300; i++) entries.push({ name: `etc/f${i}.txt`, data: 'x' } as never);
    await makeZip(z('count.zip'), entries);
    const e = await refused(z('count.zip'), 'E_ZIP_TOO_MANY');
    assert.match(e.message, /301 entries; the limit is 256/);
  });

  it('refuses a bomb whose headers lie about its size (bytes are counted as inflated)', async () => {
    const small = new PluginManager({ dataDir: data, registry, limits: { maxUncompressedBytes: 2 * 1024 * 1024, maxRatio: 1e9 } });
    await makeZip(z('liar.zip'), [{ name: 'echo.so', file: sample('echo.so') }, { name: 'etc/big.bin', data: crypto.randomBytes(1024).toString('hex').repeat(2048) }]);
    lieAboutSize(z('liar.zip'), 'etc/big.bin', 100);
    await assert.rejects(small.install({ type: 'functions', name: 'echo', source: { file: z('liar.zip') } }), { code: 'E_ZIP_BOMB' });
    assert.deepEqual(pluginState(data), []);
  });

  it('refuses a truncated zip', async () => {
    const buf = await makeZip(z('full.zip'), [{ name: 'echo.so', file: sample('echo.so') }]);
    fs.writeFileSync(z('trunc.zip'), buf.subarray(0, Math.floor(buf.length / 2)));
    await refused(z('trunc.zip'), 'E_ZIP_CORRUPT');
  });

  it('refuses an entry whose bytes fail their CRC', async () => {
    const buf = await makeZip(z('crc.zip'), [{ name: 'echo.so', file: sample('echo.so'), store: true }]);
    buf[200] ^= 0xff; // inside the stored library bytes
    fs.writeFileSync(z('crc.zip'), buf);
    await refused(z('crc.zip'), 'E_ZIP_CORRUPT');
  });

  it('refuses a zip without a library', async () => {
    await makeZip(z('nolib.zip'), [{ name: 'echo.json', data: '{}' }, { name: 'lib/echo.so', file: sample('echo.so') }]);
    const e = await refused(z('nolib.zip'), 'E_ZIP_NO_LIBRARY');
    assert.match(e.message, /lib\/echo\.so in a folder/);
  });

  it('refuses a library named for another plugin', async () => {
    await makeZip(z('wrongname.zip'), [{ name: 'countPlusOne.so', file: sample('countPlusOne.so') }]);
    const e = await refused(z('wrongname.zip'), 'E_ZIP_BAD_NAME');
    assert.match(e.message, /countPlusOne\.so.*"echo"/);
  });

  it('refuses a library whose manifest names another plugin', async () => {
    await makeZip(z('liename.zip'), [{ name: 'echo.so', file: sample('vector.so') }]);
    const e = await refused(z('liename.zip'), 'E_ZIP_BAD_NAME');
    assert.match(e.message, /"vector"/);
  });

  it('refuses a library built for another architecture, with the check\'s code', async () => {
    await makeZip(z('arm.zip'), [{ name: 'echo.so', file: corpus('aarch64.so') }]);
    const e = await refused(z('arm.zip'), 'E_ARCH');
    assert.match(e.message, /aarch64/);
  });

  it('refuses a library whose init fails, rolling back the load', async () => {
    await makeZip(z('initerror.zip'), [{ name: 'initerror.so', file: corpus('init-error.so') }]);
    const e = await refused(z('initerror.zip'), 'E_INIT_FAILED', 'initerror');
    assert.match(e.message, /cannot open device/);
  });

  it('refuses an invalid plugin name', async () => {
    await refused(z('good.zip'), 'E_ZIP_BAD_NAME', '../echo');
  });

  it('refuses a zip whose sha256 differs from the one given', async () => {
    const e = await refused(z('good.zip'), 'E_SHA256', 'echo', { sha256: '0'.repeat(64) });
    assert.match(e.message, /not the 0{64} given/);
  });
});
