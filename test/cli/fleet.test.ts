/**
 * `streamplug fleet apply` for real: the CLI process against two `streamplug start` processes and a
 * URL where nothing listens. The rule set names a plugin zip by a path relative to the set's file,
 * which the CLI uploads; the report is per host; exit codes 0 / 1 / 2; applying again changes nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeZip, sample } from '../manager/zips.js';
import { freePort, tempDir } from '../connectors/helpers.js';
import { cliPath, startHostProcess, type HostProcess } from '../helpers/host-process.js';

// One token for the whole fleet: the operator writes the same etc/api-token on every host.
const fleetToken = crypto.randomBytes(32).toString('base64url');

function fleet(args: string[], env: Record<string, string> = { STREAMPLUG_TOKEN: fleetToken }) {
  const r = spawnSync(process.execPath, [cliPath, 'fleet', ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, STREAMPLUG_DATA: '', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('streamplug fleet apply', { timeout: 120_000 }, () => {
  const hosts: HostProcess[] = [];
  let dir: string;
  let setFile: string;
  let set: Record<string, Record<string, string>>;

  before(async () => {
    dir = tempDir('fleet');
    fs.mkdirSync(path.join(dir, 'zips'));
    await makeZip(path.join(dir, 'zips', 'echo.zip'), [{ name: 'echo.so', file: sample('echo.so') }]);
    set = {
      streams: { demo: 'CREATE STREAM demo (temperature float) WITH (TYPE="mqtt", FORMAT="json", DATASOURCE="demo/in")' },
      rules: { hot: JSON.stringify({ id: 'hot', sql: 'SELECT echo(temperature) AS t FROM demo', actions: [{ log: {} }] }) },
      nativePlugins: { functions_echo: JSON.stringify({ name: 'echo', file: 'zips/echo.zip' }) },
    };
    setFile = path.join(dir, 'set.json');
    fs.writeFileSync(setFile, JSON.stringify(set));
    for (let i = 0; i < 2; i++) {
      const data = tempDir(`fleet-h${i}`);
      fs.mkdirSync(path.join(data, 'etc'), { recursive: true });
      fs.writeFileSync(path.join(data, 'etc', 'api-token'), fleetToken + '\n', { mode: 0o600 });
      hosts.push(await startHostProcess({ dataDir: data, args: ['--mqtt-port', String(await freePort())] }));
    }
  });
  after(async () => {
    await Promise.all(hosts.map((h) => h.kill()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('applies the set with its plugin to every host, reports per host, and exits 1 for a dead host', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = fleet(['apply', '--hosts', [...hosts.map((h) => h.url), dead].join(','), '--json', setFile]);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /E_FLEET_INCOMPLETE: 1 of 3 host/);
    const results = JSON.parse(r.out) as { host: string; ok: boolean; plugins: { outcome: string }[]; error?: { code: string } }[];
    assert.deepEqual(results.map((x) => x.ok), [true, true, false]);
    assert.equal(results[2].error?.code, 'E_FETCH');
    for (const [i, h] of hosts.entries()) {
      assert.deepEqual(results[i].plugins.map((p) => p.outcome), ['installed']);
      assert.equal((await h.api('GET', '/plugins/functions/echo')).body.state, 'loaded');
      assert.equal((await h.api('GET', '/rules/hot/status')).body.status, 'running');
    }
    const [e0, e1] = await Promise.all(hosts.map(async (h) => (await h.api('GET', '/data/export')).text));
    assert.equal(e0, e1, 'the two hosts hold different rule sets');

    // again, live hosts only: exit 0, nothing installed or restarted
    const again = fleet(['apply', '--hosts', hosts.map((h) => h.url).join(','), setFile]);
    assert.equal(again.code, 0, again.err);
    for (const h of hosts) assert.match(again.out, new RegExp(`${h.url}  ok  plugins: 1 present; streams: 1 unchanged; rules: 1 unchanged`));
  });

  it('without the fleet token every host refuses, reported per host (E_UNAUTHORIZED), nothing applied', async () => {
    const before = await Promise.all(hosts.map(async (h) => (await h.api('GET', '/data/export')).text));
    const r = fleet(['apply', '--hosts', hosts.map((h) => h.url).join(','), '--json', setFile], { STREAMPLUG_TOKEN: 'wrong' });
    assert.equal(r.code, 1, r.err);
    const results = JSON.parse(r.out) as { ok: boolean; error?: { code: string } }[];
    assert.deepEqual(results.map((x) => [x.ok, x.error?.code]), [[false, 'E_UNAUTHORIZED'], [false, 'E_UNAUTHORIZED']]);
    assert.deepEqual(await Promise.all(hosts.map(async (h) => (await h.api('GET', '/data/export')).text)), before);
  });

  it('refuses bad input before touching any host, with exit 2 for usage and 1 for a bad set', () => {
    assert.equal(fleet(['apply', '--help']).code, 0);
    assert.equal(fleet(['apply', setFile]).code, 2);
    assert.equal(fleet(['apply', '--hosts', 'ftp://x', setFile]).code, 2);
    assert.equal(fleet(['apply', '--hosts', hosts[0].url, path.join(dir, 'missing.json')]).code, 2);
    const badFile = path.join(dir, 'bad.json');
    fs.writeFileSync(badFile, JSON.stringify({ streams: { x: 1 } }));
    const r = fleet(['apply', '--hosts', 'http://127.0.0.1:1', badFile]);
    assert.equal(r.code, 1);
    assert.match(r.err, /E_BAD_REQUEST: .*streams\.x must be a string/);
  });

  it('reports a plugin zip that is missing on this machine, per host', () => {
    const f = path.join(dir, 'nozip.json');
    fs.writeFileSync(f, JSON.stringify({ ...set, nativePlugins: { functions_other: JSON.stringify({ name: 'other', file: 'zips/other.zip' }) } }));
    const r = fleet(['apply', '--hosts', hosts[0].url, f]);
    assert.equal(r.code, 1);
    assert.match(r.out, /plugin functions_other: E_NOT_FOUND: the zip .*other\.zip/);
  });
});
