/**
 * Authentication, Origin and Host checks on a real host process: the token written at first start,
 * 401 with no change for every mutating endpoint, 403 for foreign web pages and rebinding names,
 * the CLI finding the token by itself, --no-auth and its refusal off loopback, the unix socket, JWT.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { apiCall, cliPath, startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { pluginState } from '../manager/zips.js';
import { eventually, rawRequest, sampleZips, tempRoot } from './helpers.js';

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], { env: { ...process.env, STREAMPLUG_TOKEN: '', STREAMPLUG_DATA: '', ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const STREAM = 'CREATE STREAM s (x float) WITH (TYPE="memory", DATASOURCE="t/sec/in")';
const RULE = { id: 'r1', sql: 'SELECT echo(x) AS y FROM s', actions: [{ log: {} }] };

describe('REST authentication (token mode, the default)', () => {
  const root = tempRoot('auth');
  const data = path.join(root, 'data');
  let zips: Awaited<ReturnType<typeof sampleZips>>;
  let host: HostProcess;

  before(async () => {
    zips = await sampleZips(path.join(root, 'zips'));
    host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0'] });
    // some state for the refused requests to (not) change
    assert.equal((await host.api('POST', '/plugins/functions', { name: 'echo', file: zips.echo })).status, 201);
    assert.equal((await host.api('POST', '/streams', { sql: STREAM })).status, 201);
    assert.equal((await host.api('POST', '/rules', RULE)).status, 201);
  });
  after(async () => {
    await host?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('writes a random token to <data>/etc/api-token, mode 0600, and keeps it across restarts (tightening its mode)', async () => {
    const file = path.join(data, 'etc', 'api-token');
    const st = fs.statSync(file);
    assert.equal(st.mode & 0o777, 0o600);
    const token = fs.readFileSync(file, 'utf8');
    assert.match(token, /^[A-Za-z0-9_-]{40,}$/, 'the file holds the token alone, usable verbatim');
    // a restart keeps it, and tightens a file others could read back to 0600
    await host.stop();
    fs.chmodSync(file, 0o644);
    host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0'] });
    assert.equal(fs.readFileSync(file, 'utf8'), token);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal((await host.api('GET', '/rules/r1/status')).body.status, 'running');
  });

  it('GET /ping stays open; everything else answers 401 without a token', async () => {
    assert.equal((await fetch(`${host.url}/ping`)).status, 200);
    for (const route of ['/', '/plugins/functions', '/plugins/functions/echo', '/plugins/udfs', '/plugins/audit', '/streams', '/rules', '/rules/r1/status', '/nowhere']) {
      const r = await fetch(host.url + route);
      assert.equal(r.status, 401, route);
      assert.equal(((await r.json()) as { error: string }).error, 'E_UNAUTHORIZED');
    }
  });

  it('every mutating endpoint answers 401 and changes nothing, without a token or with a wrong one', async () => {
    const state = async () => ({
      files: pluginState(data),
      functions: (await host.api('GET', '/plugins/functions')).body,
      streams: (await host.api('GET', '/streams')).body,
      rules: (await host.api('GET', '/rules')).body,
    });
    const before = await state();
    const form = () => {
      const f = new FormData();
      f.append('name', 'vector');
      f.append('file', new Blob([fs.readFileSync(zips.vector)]), 'vector.zip');
      return f;
    };
    const calls: [string, string, () => BodyInit | undefined, Record<string, string>][] = [
      ['POST', '/plugins/functions', () => JSON.stringify({ name: 'vector', file: zips.vector }), { 'content-type': 'application/json' }],
      ['POST', '/plugins/functions', form, {}],
      ['POST', '/plugins/functions?name=vector', () => new Blob([fs.readFileSync(zips.vector)]), { 'content-type': 'application/zip' }],
      ['PUT', '/plugins/functions/echo', () => JSON.stringify({ file: zips.vector }), { 'content-type': 'application/json' }],
      ['DELETE', '/plugins/functions/echo?force=true', () => undefined, {}],
      ['POST', '/plugins/functions/echo/register', () => JSON.stringify({ functions: ['echo'] }), { 'content-type': 'application/json' }],
      ['POST', '/streams', () => JSON.stringify({ sql: STREAM.replace('s (', 's2 (') }), { 'content-type': 'application/json' }],
      ['PUT', '/streams/s', () => JSON.stringify({ sql: STREAM }), { 'content-type': 'application/json' }],
      ['DELETE', '/streams/s', () => undefined, {}],
      ['POST', '/rules', () => JSON.stringify({ ...RULE, id: 'r2' }), { 'content-type': 'application/json' }],
      ['PUT', '/rules/r1', () => JSON.stringify(RULE), { 'content-type': 'application/json' }],
      ['DELETE', '/rules/r1', () => undefined, {}],
      ['POST', '/rules/r1/stop', () => undefined, {}],
      ['POST', '/rules/r1/restart', () => undefined, {}],
    ];
    const wrong: Record<string, string>[] = [{}, { authorization: 'Bearer not-the-token' }, { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: 'Bearer' }];
    for (const [method, route, body, headers] of calls) {
      for (const auth of wrong) {
        const r = await fetch(host.url + route, { method, headers: { ...headers, ...auth }, body: body() });
        assert.equal(r.status, 401, `${method} ${route} ${JSON.stringify(auth)}`);
        assert.equal(((await r.json()) as { error: string }).error, 'E_UNAUTHORIZED');
      }
    }
    assert.deepEqual(await state(), before, 'nothing changed');
    assert.equal((await host.api('GET', '/rules/r1/status')).body.status, 'running', 'the rule was neither stopped nor restarted');
  });

  it('refuses a foreign Origin with 403 even with the token, and a rebinding Host name', async () => {
    const before = pluginState(data);
    const form = new FormData();
    form.append('name', 'vector');
    form.append('file', new Blob([fs.readFileSync(zips.vector)]), 'vector.zip');
    // the cross-site form post of the report, with and without the token
    const token = fs.readFileSync(path.join(data, 'etc/api-token'), 'utf8').trim();
    const withAndWithout: Record<string, string>[] = [{}, { authorization: `Bearer ${token}` }];
    for (const extra of withAndWithout) {
      const r = await fetch(`${host.url}/plugins/functions`, { method: 'POST', headers: { origin: 'http://evil.example', ...extra }, body: form });
      assert.equal(r.status, 403);
      assert.equal(((await r.json()) as { error: string }).error, 'E_FORBIDDEN');
    }
    for (const origin of ['null', 'http://127.0.0.1:1', host.url]) {
      assert.equal((await host.api('GET', '/plugins/functions', undefined, { origin })).status, 403, origin);
    }
    // a foreign page's CORS preflight is refused as well
    const pre = await fetch(`${host.url}/plugins/functions`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(pre.status, 403);
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
    const port = new URL(host.url).port;
    const rebound = await rawRequest({ url: host.url }, 'GET', '/plugins/functions', { host: `attacker.example:${port}`, authorization: `Bearer ${token}` });
    assert.equal(rebound.status, 403);
    assert.match(rebound.body, /E_FORBIDDEN.*DNS rebinding/);
    for (const h of [`localhost:${port}`, `127.0.0.1:${port}`]) {
      const ok = await rawRequest({ url: host.url }, 'GET', '/plugins/functions', { host: h, authorization: `Bearer ${token}` });
      assert.equal(ok.status, 200, h);
    }
    assert.deepEqual(pluginState(data), before);
  });

  it('the CLI finds the token by itself: --data, STREAMPLUG_TOKEN, --token', async () => {
    const token = fs.readFileSync(path.join(data, 'etc/api-token'), 'utf8').trim();
    const viaData = await cli(['plugin', 'list', 'functions', '--host', host.url, '--data', data, '--json']);
    assert.equal(viaData.code, 0, viaData.stderr);
    assert.deepEqual(JSON.parse(viaData.stdout), ['echo']);
    const viaDefaultData = await cli(['plugin', 'list', 'functions', '--host', host.url, '--json'], { STREAMPLUG_DATA: data });
    assert.equal(viaDefaultData.code, 0, viaDefaultData.stderr);
    const viaEnv = await cli(['stream', 'list', '--host', host.url, '--json'], { STREAMPLUG_TOKEN: token });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.deepEqual(JSON.parse(viaEnv.stdout), ['s']);
    const viaFlag = await cli(['rule', 'list', '--host', host.url, '--token', token, '--json']);
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
    const none = await cli(['plugin', 'list', 'functions', '--host', host.url, '--data', root]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /E_UNAUTHORIZED/);
    const bad = await cli(['stream', 'list', '--host', host.url, '--token', 'nope']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /E_UNAUTHORIZED: the bearer token is wrong/);
  });

  it('GET / reports the auth mode and requireSignatures; the audit log names the token, the sha256 and the time', async () => {
    const meta = (await host.api('GET', '/')).body;
    assert.equal(meta.auth, 'token');
    assert.equal(meta.requireSignatures, false);
    assert.equal((await host.api('POST', '/plugins/functions', { name: 'vector', file: zips.vector })).status, 201);
    assert.equal((await host.api('DELETE', '/plugins/functions/vector')).status, 200);
    const audit = (await host.api('GET', '/plugins/audit')).body as { action: string; name: string; actor: string; sha256?: string; at: string; outcome: string }[];
    const token = fs.readFileSync(path.join(data, 'etc/api-token'), 'utf8').trim();
    const id = `token:${crypto.createHash('sha256').update(token).digest('hex').slice(0, 12)}`;
    const vec = audit.filter((a) => a.name === 'vector');
    assert.deepEqual(vec.map((a) => [a.action, a.outcome, a.actor]), [['install', 'ok', id], ['delete', 'ok', id]]);
    assert.match(vec[0].sha256!, /^[0-9a-f]{64}$/);
    assert.equal(vec[0].sha256, vec[1].sha256, 'delete names the bytes it removed');
    assert.ok(!Number.isNaN(Date.parse(vec[0].at)));
    assert.ok(audit.some((a) => a.name === 'echo' && a.action === 'install'), 'kept from before');
    assert.ok(!audit.some((a) => a.outcome === 'refused' && a.actor === 'anonymous'), 'refused requests never reached the manager');
  });
});

describe('--no-auth, unix socket and JWT mode', () => {
  const root = tempRoot('modes');
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('--no-auth serves without a token and warns at start; refused off loopback unless --i-know', async () => {
    const data = path.join(root, 'noauth');
    const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0', '--no-auth'] });
    try {
      assert.equal((await fetch(`${host.url}/plugins/functions`)).status, 200);
      assert.match(host.stdout() + host.stderr(), /authentication is OFF/);
      assert.equal(fs.existsSync(path.join(data, 'etc/api-token')), false, 'no token is written without auth');
      // Origin is still checked: --no-auth gives up authentication, not the browser defences
      assert.equal((await fetch(`${host.url}/plugins/functions`, { headers: { origin: 'http://evil.example' } })).status, 403);
      // without auth, REST clients may not name local files (no roots configured)
      const zips = await sampleZips(path.join(root, 'z'));
      const r = await fetch(`${host.url}/plugins/functions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'echo', file: zips.echo }) });
      assert.equal(r.status, 400);
      assert.equal(((await r.json()) as { error: string }).error, 'E_URL_FORBIDDEN');
    } finally {
      await host.stop();
    }
    const refused = await cli(['start', '--data', path.join(root, 'open'), '--port', '0', '--mqtt-port', '0', '--no-auth', '--host', '0.0.0.0']);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /E_USAGE: --no-auth with --host 0\.0\.0\.0/);
    const known = await startHostProcess({ dataDir: path.join(root, 'open'), args: ['--mqtt-port', '0', '--no-auth', '--host', '0.0.0.0', '--i-know'], noWait: true });
    try {
      const url = await eventually('the lock url', () => {
        try {
          return (JSON.parse(fs.readFileSync(path.join(root, 'open', 'host.lock'), 'utf8')) as { url?: string }).url;
        } catch {
          return undefined;
        }
      });
      const port = new URL(url).port;
      assert.equal((await fetch(`http://127.0.0.1:${port}/plugins/functions`)).status, 200);
    } finally {
      await known.stop();
    }
  });

  it('requireSignatures is reported at start and in GET /, from the flag or etc/security.json', async () => {
    for (const [dir, args] of [['req-flag', ['--require-signatures']], ['req-file', []]] as const) {
      const data = path.join(root, dir);
      if (dir === 'req-file') {
        fs.mkdirSync(path.join(data, 'etc'), { recursive: true });
        fs.writeFileSync(path.join(data, 'etc/security.json'), JSON.stringify({ requireSignatures: true }));
      }
      const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0', ...args] });
      try {
        assert.equal((await host.api('GET', '/')).body.requireSignatures, true);
        assert.match(host.stdout(), /requireSignatures true/);
      } finally {
        await host.stop();
      }
    }
  });

  it('an allowed origin may call with the token (CORS), and only with it', async () => {
    const data = path.join(root, 'cors');
    const origin = 'http://dashboard.example:8080';
    const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0', '--allowed-origin', origin] });
    try {
      const pre = await fetch(`${host.url}/plugins/functions`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), origin);
      assert.match(pre.headers.get('access-control-allow-headers') ?? '', /authorization/);
      const ok = await host.api('GET', '/plugins/functions', undefined, { origin });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('access-control-allow-origin'), origin);
      assert.equal((await fetch(`${host.url}/plugins/functions`, { headers: { origin } })).status, 401, 'an allowed page still needs the token');
      assert.equal((await host.api('GET', '/plugins/functions', undefined, { origin: 'http://dashboard.example:8081' })).status, 403);
    } finally {
      await host.stop();
    }
  });

  it('listens on a unix socket of mode 0600 when asked, with auth still on', async () => {
    const data = path.join(root, 'sock');
    const sock = path.join(root, 'api.sock');
    const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0', '--socket', sock], noWait: true });
    try {
      await eventually('the socket', () => fs.existsSync(sock) && fs.existsSync(path.join(data, 'host.lock')) && JSON.parse(fs.readFileSync(path.join(data, 'host.lock'), 'utf8')).url);
      const st = fs.statSync(sock);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o600);
      await eventually('ping on the socket', async () => (await rawRequest({ socketPath: sock }, 'GET', '/ping', {})).status === 200);
      assert.equal((await rawRequest({ socketPath: sock }, 'GET', '/plugins/functions', {})).status, 401);
      const token = fs.readFileSync(path.join(data, 'etc/api-token'), 'utf8').trim();
      const ok = await rawRequest({ socketPath: sock }, 'GET', '/plugins/functions', { authorization: `Bearer ${token}` });
      assert.equal(ok.status, 200);
      assert.equal(ok.body, '[]');
    } finally {
      await host.stop();
    }
  });

  it('JWT mode: RS256 tokens verified against <data>/etc/mgmt/<iss>.pub; anything else is 401', async () => {
    const data = path.join(root, 'jwt');
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.mkdirSync(path.join(data, 'etc/mgmt'), { recursive: true });
    fs.writeFileSync(path.join(data, 'etc/mgmt/ops.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const sign = (claims: { iss?: string; aud?: string; sub?: string; exp?: number }, key = privateKey, alg = 'RS256') => {
      const j = new SignJWT({}).setProtectedHeader({ alg }).setIssuedAt();
      if (claims.iss) j.setIssuer(claims.iss);
      if (claims.aud) j.setAudience(claims.aud);
      if (claims.sub) j.setSubject(claims.sub);
      j.setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 300);
      return j.sign(key);
    };
    const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0', '--jwt'] });
    try {
      const get = async (jwt?: string) => (await fetch(`${host.url}/plugins/functions`, { headers: jwt ? { authorization: `Bearer ${jwt}` } : {} })).status;
      assert.equal(await get(await sign({ iss: 'ops', aud: 'eKuiper', sub: 'alice' })), 200);
      assert.equal(await get(), 401);
      assert.equal(await get(await sign({ iss: 'ops', aud: 'eKuiper', sub: 'alice', exp: Math.floor(Date.now() / 1000) - 60 })), 401, 'expired');
      assert.equal(await get(await sign({ iss: 'ops', aud: 'eKuiper' }, other.privateKey)), 401, 'signed by another key');
      assert.equal(await get(await sign({ iss: 'nobody', aud: 'eKuiper' })), 401, 'unknown issuer');
      assert.equal(await get(await sign({ iss: '../etc/mgmt/ops', aud: 'eKuiper' })), 401, 'issuer is a file name, not a path');
      assert.equal(await get(await sign({ iss: 'ops', aud: 'someone-else' })), 401, 'wrong audience');
      const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('ops').setAudience('eKuiper').setExpirationTime('5m').sign(publicKey.export({ type: 'spki', format: 'der' }));
      assert.equal(await get(hs), 401, 'HS256 with the public key as secret (algorithm confusion)');
      assert.equal(await get(fs.existsSync(path.join(data, 'etc/api-token')) ? fs.readFileSync(path.join(data, 'etc/api-token'), 'utf8').trim() : 'x'), 401);
      // the audit names the JWT subject
      const zips = await sampleZips(path.join(root, 'jz'));
      const jwt = await sign({ iss: 'ops', aud: 'eKuiper', sub: 'alice' });
      const r = await apiCall(data, host.url, 'POST', '/plugins/functions', { name: 'vector', file: zips.vector }, { authorization: `Bearer ${jwt}` });
      assert.equal(r.status, 201, r.text);
      const audit = (await apiCall(data, host.url, 'GET', '/plugins/audit', undefined, { authorization: `Bearer ${jwt}` })).body as { actor: string }[];
      assert.deepEqual(audit.map((a) => a.actor), ['jwt:alice']);
      assert.equal((await apiCall(data, host.url, 'GET', '/', undefined, { authorization: `Bearer ${jwt}` })).body.auth, 'jwt');
    } finally {
      await host.stop();
    }
  });
});
