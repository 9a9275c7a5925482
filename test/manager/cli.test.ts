import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { startHost } from '../../src/host/host.js';
import { repoRoot } from '../helpers/paths.js';
import { corpus, sample, tmpDir } from './zips.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI asynchronously (an in-process host must keep answering meanwhile). */
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, 'bin/streamplug.js'), ...args], { env: { ...process.env, STREAMPLUG_LOG_LEVEL: 'warn' } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('streamplug pack / sign / keygen / plugin', () => {
  const root = tmpDir('cli');
  const data = path.join(root, 'data');
  const f = (n: string) => path.join(root, n);
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('every subcommand has --help (exit 0)', async () => {
    for (const args of [['start'], ['plugin'], ['plugin', 'install'], ['plugin', 'check'], ['pack'], ['sign'], ['keygen']]) {
      const r = await cli(...args, '--help');
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: streamplug/);
    }
  });

  it('pack builds a zip install accepts, and refuses (exit 1, no zip left) what install would refuse', async () => {
    fs.writeFileSync(f('meta.json'), '{"version":"1.0.0","author":"ekuiper"}');
    fs.mkdirSync(f('etc'));
    fs.writeFileSync(f('etc/echo.conf'), 'a=1');
    const ok = await cli('pack', '--type', 'functions', '--name', 'echo', sample('echo.so'), '--json', f('meta.json'), '--etc', f('etc'), '-o', f('echo.zip'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /echo\.so, echo\.json, etc\/echo\.conf/);
    const check = await cli('plugin', 'check', f('echo.zip'), '--type', 'functions', '--json');
    assert.equal(check.code, 0, check.stderr);
    assert.equal(JSON.parse(check.stdout).name, 'echo');

    const bad = await cli('pack', '--type', 'functions', '--name', 'arm', corpus('aarch64.so'), '-o', f('arm.zip'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /E_ARCH/);
    assert.equal(fs.existsSync(f('arm.zip')), false);
  });

  it('exits 2 on usage errors', async () => {
    assert.equal((await cli('plugin', 'install', 'widgets', 'x', f('echo.zip'), '--data', data)).code, 2);
    assert.equal((await cli('pack', sample('echo.so'), '-o', f('x.zip'))).code, 2);
    assert.equal((await cli('plugin', 'bogus')).code, 2);
  });

  it('installs, lists, describes and removes on a data directory directly', async () => {
    const i = await cli('plugin', 'install', 'functions', 'echo', f('echo.zip'), '--data', data);
    assert.equal(i.code, 0, i.stderr);
    assert.equal(i.stdout.trim(), 'function plugin echo is created');
    const l = await cli('plugin', 'list', '--data', data, '--json');
    assert.deepEqual(JSON.parse(l.stdout), { sources: [], sinks: [], functions: ['echo'] });
    const d = await cli('plugin', 'describe', 'functions', 'echo', '--data', data, '--json');
    assert.equal(JSON.parse(d.stdout).state, 'loaded');
    const again = await cli('plugin', 'install', 'functions', 'echo', f('echo.zip'), '--data', data);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /E_CONFLICT/);
    const r = await cli('plugin', 'remove', 'functions', 'echo', '--data', data);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await cli('plugin', 'describe', 'functions', 'echo', '--data', data)).code, 1);
  });

  it('keygen + sign: a host with trusted keys takes only signed zips', async () => {
    assert.equal((await cli('keygen', f('keys/ops'))).code, 0);
    fs.mkdirSync(path.join(data, 'etc/trusted-keys'), { recursive: true });
    fs.copyFileSync(f('keys/ops.pub.pem'), path.join(data, 'etc/trusted-keys/ops.pem'));
    fs.writeFileSync(path.join(data, 'etc/security.json'), JSON.stringify({ requireSignatures: true }));
    const unsigned = await cli('plugin', 'install', 'functions', 'echo', f('echo.zip'), '--data', data);
    assert.equal(unsigned.code, 1);
    assert.match(unsigned.stderr, /E_SIGNATURE: the zip of echo is unsigned/);
    const s = await cli('sign', '--key', f('keys/ops.pem'), f('echo.zip'));
    assert.equal(s.code, 0, s.stderr);
    const signed = await cli('plugin', 'install', 'functions', 'echo', f('echo.zip'), '--data', data);
    assert.equal(signed.code, 0, signed.stderr);
    // a signature covers a whole zip: a bare library is not signed alone; pack --key signs what it packs
    fs.copyFileSync(sample('vector.so'), f('vector.so'));
    const bare = await cli('sign', '--key', f('keys/ops.pem'), f('vector.so'));
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /E_USAGE: .* is not a zip/);
    assert.equal((await cli('pack', '--type', 'functions', '--name', 'vector', f('vector.so'), '--key', f('keys/ops.pem'), '-o', f('vector.zip'))).code, 0);
    const v = await cli('plugin', 'install', 'functions', 'vector', f('vector.zip'), '--data', data, '--json');
    assert.equal(v.code, 0, v.stderr);
    fs.rmSync(path.join(data, 'etc/trusted-keys'), { recursive: true });
    fs.rmSync(path.join(data, 'etc/security.json'));
  });

  it('goes through a running host with --host, and refuses direct access while one runs', async () => {
    const dir = path.join(root, 'hosted');
    const host = await startHost({ dataDir: dir, port: 0, logger: pino({ level: 'silent' }) });
    try {
      const i = await cli('plugin', 'install', 'functions', 'vector', f('vector.zip'), '--host', host.url, '--data', dir);
      assert.equal(i.code, 0, i.stderr);
      assert.equal(i.stdout.trim(), 'function plugin vector is created');
      const l = await cli('plugin', 'list', 'functions', '--host', host.url, '--data', dir, '--json');
      assert.deepEqual(JSON.parse(l.stdout), ['vector']);
      const dup = await cli('plugin', 'install', 'functions', 'vector', f('vector.zip'), '--host', host.url, '--data', dir);
      assert.equal(dup.code, 1);
      assert.match(dup.stderr, /E_CONFLICT/);
      const direct = await cli('plugin', 'list', '--data', dir);
      assert.equal(direct.code, 1);
      assert.match(direct.stderr, new RegExp(`E_HOST_RUNNING.*--host ${host.url}`));
      const rm = await cli('plugin', 'remove', 'functions', 'vector', '--host', host.url, '--data', dir);
      assert.equal(rm.code, 0, rm.stderr);
      assert.deepEqual(host.manager.list('functions'), []);
    } finally {
      await host.close();
    }
  });
});
