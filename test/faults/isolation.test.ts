/**
 * The isolation setting, end to end through REST, the CLI flag parser, the operator's host.json
 * and the registry: stored per plugin, shown by GET, switched by an update; "process" runs the
 * plugin in a worker (src/plugins/isolated).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { readHostConfig } from '../../src/manager/host-config.js';
import { clientHeaders, cliPath, startHostProcess } from '../helpers/host-process.js';
import { samplesDir } from '../helpers/paths.js';
import { tmp, zipOf } from './helpers.js';

const echoSo = path.join(samplesDir, 'echo.so');
const vectorSo = path.join(samplesDir, 'vector.so');

describe('isolation: per plugin, through REST', () => {
  it('stores and shows "isolation", refuses "process" while unavailable, refuses unknown modes, keeps it across updates', async () => {
    const dir = tmp('isolation-rest');
    const data = path.join(dir, 'data');
    const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0'] });
    try {
      const zip = await zipOf(dir, 'echo', echoSo);
      const bad = await host.api('POST', '/plugins/functions', { name: 'echo', file: zip, isolation: 'container' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error, 'E_BAD_REQUEST');
      assert.match(bad.body.message, /"isolation" is "container"; expected "in-process" \(the default\) or "process"/);

      const proc = await host.api('POST', '/plugins/functions', { name: 'echo', file: zip, isolation: 'process' });
      assert.equal(proc.status, 201, proc.text);
      const shown = await host.api('GET', '/plugins/functions/echo');
      assert.deepEqual([shown.body.state, shown.body.isolation], ['loaded', 'process']);
      assert.equal((await host.api('DELETE', '/plugins/functions/echo')).status, 200);

      // multipart: the isolation field
      const form = new FormData();
      form.set('name', 'echo');
      form.set('isolation', 'in-process');
      form.set('file', new Blob([fs.readFileSync(zip)]), 'echo.zip');
      const res = await fetch(`${host.url}/plugins/functions`, { method: 'POST', body: form, headers: clientHeaders(data) });
      assert.equal(res.status, 201, await res.text());
      const d = await host.api('GET', '/plugins/functions/echo');
      assert.equal(d.body.isolation, 'in-process');
      assert.equal(d.body.state, 'loaded');

      // An update may switch it, both ways.
      const up = await host.api('PUT', '/plugins/functions/echo', { file: zip, isolation: 'process' });
      assert.ok(up.status < 300, up.text);
      const after = await host.api('GET', '/plugins/functions/echo');
      assert.deepEqual([after.body.state, after.body.isolation], ['loaded', 'process']);
      const back = await host.api('PUT', '/plugins/functions/echo', { file: zip, isolation: 'in-process' });
      assert.ok(back.status < 300, back.text);
      assert.equal((await host.api('GET', '/plugins/functions/echo')).body.isolation, 'in-process');
    } finally {
      await host.stop();
    }
  });

  it('the operator default in etc/host.json applies to installs that do not say (here: unsigned zips)', async () => {
    const dir = tmp('isolation-default');
    const data = path.join(dir, 'data');
    fs.mkdirSync(path.join(data, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(data, 'etc', 'host.json'), JSON.stringify({ isolation: { default: 'in-process', unsigned: 'process' } }));
    const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0'] });
    try {
      const zip = await zipOf(dir, 'echo', echoSo);
      const r = await host.api('POST', '/plugins/functions', { name: 'echo', file: zip });
      assert.equal(r.status, 201, r.text);
      assert.equal((await host.api('GET', '/plugins/functions/echo')).body.isolation, 'process', 'an unsigned zip gets "process" by default');
      assert.equal((await host.api('DELETE', '/plugins/functions/echo')).status, 200);
      const explicit = await host.api('POST', '/plugins/functions', { name: 'echo', file: zip, isolation: 'in-process' });
      assert.equal(explicit.status, 201, explicit.text);
      assert.equal((await host.api('GET', '/plugins/functions/echo')).body.isolation, 'in-process');
    } finally {
      await host.stop();
    }
  });

  it('host.json that is not understood is refused with the file and the fix', () => {
    const dir = tmp('isolation-config');
    const file = path.join(dir, 'host.json');
    assert.deepEqual(readHostConfig(file), { isolation: { default: 'in-process', unsigned: 'in-process' } });
    fs.writeFileSync(file, '{"isolation": {"default": "vm"}}');
    assert.throws(() => readHostConfig(file), { code: 'E_BAD_REQUEST', message: /isolation\.default is "vm", expected "in-process" or "process"; fix the file and restart/ });
    fs.writeFileSync(file, '{"loadTimeoutMs": -5}');
    assert.throws(() => readHostConfig(file), { code: 'E_BAD_REQUEST', message: /loadTimeoutMs is -5, expected a positive integer/ });
    fs.writeFileSync(file, '{');
    assert.throws(() => readHostConfig(file), { code: 'E_BAD_REQUEST', message: /is not valid JSON/ });
  });

  it('the CLI refuses an unknown --isolation as usage (exit 2)', () => {
    const r = spawnSync(process.execPath, [cliPath, 'plugin', 'install', 'functions', 'echo', '/nonexistent.zip', '--isolation', 'vm', '--data', tmp('isolation-cli')], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /"isolation" is "vm"/);
  });
});

describe('isolation: the registry routes "process" loads to its isolated loader (src/plugins/isolated unless another is set)', () => {
  const registry = new PluginRegistry({ onLog: () => undefined });
  after(() => registry.unloadAll());

  it('hands the loader set the file, label and timeout, and the admit check still refuses clashes', async () => {
    await assert.rejects(() => registry.load(echoSo, { isolation: 'vm' as never }), { code: 'E_BAD_REQUEST' });
    await registry.load(echoSo); // in-process: provides echo()
    const seen: unknown[] = [];
    registry.setIsolatedLoader(async (file, opts) => {
      seen.push({ file, label: opts.label, loadTimeoutMs: opts.loadTimeoutMs });
      opts.admit('vector', ['echo']); // echo() is taken by the in-process plugin
      throw new Error('not reached');
    });
    await assert.rejects(() => registry.load(vectorSo, { isolation: 'process', label: 'vec', loadTimeoutMs: 1234 }), {
      code: 'E_DUPLICATE_FUNCTION',
      message: /function echo is already provided by plugin echo/,
    });
    assert.equal(registry.has('vector'), false);
    assert.deepEqual(seen, [{ file: vectorSo, label: 'vec', loadTimeoutMs: 1234 }]);
  });
});
