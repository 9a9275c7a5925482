import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startHost, type Host } from '../../src/host/host.js';
import { clientHeaders } from '../helpers/host-process.js';
import { corpus, makeZip, pluginState, renameEntry, sample, tmpDir } from '../manager/zips.js';

const quiet = () => pino({ level: 'silent' });

async function call(host: Host, method: string, route: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit & { duplex?: string } = { method, headers: { ...clientHeaders(host.dataDir), ...headers } };
  if (body instanceof FormData || Buffer.isBuffer(body)) init.body = body as BodyInit;
  else if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(host.url + route, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json: json as any };
}

describe('REST API, in the order of a plugin\'s life (eKuiper paths and statuses)', () => {
  const root = tmpDir('api');
  const data = path.join(root, 'data');
  const z = (n: string) => path.join(root, n);
  let host: Host;
  let zipServer: http.Server;
  let zipUrl = '';

  before(async () => {
    await makeZip(z('echo.zip'), [{ name: 'echo.so', file: sample('echo.so') }, { name: 'echo.json', data: '{"version":"1.0.0"}' }]);
    await makeZip(z('vector.zip'), [{ name: 'vector.so', file: sample('vector.so') }]);
    await makeZip(z('count.zip'), [{ name: 'countPlusOne.so', file: sample('countPlusOne.so') }]);
    await makeZip(z('words.zip'), [{ name: 'accumulateWordCount.so', file: sample('accumulateWordCount.so') }]);
    await makeZip(z('arm.zip'), [{ name: 'arm.so', file: corpus('aarch64.so') }]);
    await makeZip(z('slip.zip'), [{ name: 'evil.so', file: sample('echo.so') }, { name: 'aa/x.so', data: 'x' }]);
    renameEntry(z('slip.zip'), 'aa/x.so', '../x.so');
    zipServer = http.createServer((req, res) => {
      const f = z(path.basename(req.url ?? ''));
      if (!fs.existsSync(f)) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/zip' });
      fs.createReadStream(f).pipe(res);
    });
    await new Promise<void>((r) => zipServer.listen(0, '127.0.0.1', r));
    zipUrl = `http://127.0.0.1:${(zipServer.address() as { port: number }).port}`;
    host = await startHost({ dataDir: data, port: 0, host: '127.0.0.1', logger: quiet(), allowPrivateUrls: true });
  });
  after(async () => {
    await host?.close();
    zipServer.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('GET /ping answers 200 when ready', async () => {
    assert.equal((await call(host, 'GET', '/ping')).status, 200);
  });

  it('POST /plugins/functions creates from a file URL: 201 and eKuiper\'s text', async () => {
    const r = await call(host, 'POST', '/plugins/functions', { name: 'echo', file: pathToFileURL(z('echo.zip')).href });
    assert.equal(r.status, 201);
    assert.match(r.type, /^text\/plain/);
    assert.equal(r.text, 'function plugin echo is created');
  });

  it('GET /plugins/functions lists names', async () => {
    const r = await call(host, 'GET', '/plugins/functions');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, ['echo']);
    assert.deepEqual((await call(host, 'GET', '/plugins/sources')).json, []);
  });

  it('GET /plugins/functions/echo describes it', async () => {
    const r = await call(host, 'GET', '/plugins/functions/echo');
    assert.equal(r.status, 200);
    assert.equal(r.json.name, 'echo');
    assert.equal(r.json.version, '1.0.0');
    assert.deepEqual(r.json.functions, ['echo']);
    assert.equal(r.json.state, 'loaded');
    assert.equal(r.json.lastError, null);
    assert.equal(r.json.check.loadable, true);
    assert.ok(r.json.check.rows.length > 3);
    assert.equal(r.json.build.arch, 'x86_64');
    assert.deepEqual(r.json.rulesUsing, []);
    assert.match(r.json.file, /plugins\/functions\/echo@[0-9a-f]{8}\.so$/);
  });

  it('a duplicate create is 409 with a JSON error', async () => {
    const r = await call(host, 'POST', '/plugins/functions', { name: 'echo', file: z('echo.zip') });
    assert.equal(r.status, 409);
    assert.equal(r.json.error, 'E_CONFLICT');
    assert.match(r.json.message, /already exists; to replace it use PUT/);
  });

  it('GET /plugins/udfs and /plugins/udfs/{name}', async () => {
    assert.deepEqual((await call(host, 'GET', '/plugins/udfs')).json, ['echo']);
    const r = await call(host, 'GET', '/plugins/udfs/echo');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { name: 'echo', plugin: 'echo' });
  });

  it('POST /plugins/functions/echo/register records the function list', async () => {
    const ok = await call(host, 'POST', '/plugins/functions/echo/register', { functions: ['echo'] });
    assert.equal(ok.status, 200);
    assert.equal(ok.text, 'function plugin echo function list is registered');
    const bad = await call(host, 'POST', '/plugins/functions/echo/register', { functions: ['nope'] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, 'E_UNKNOWN_FUNCTION');
    assert.equal((await call(host, 'POST', '/plugins/functions/ghost/register', { functions: ['x'] })).status, 404);
  });

  it('PUT of the installed zip again is 200 "unchanged" (issue 13), and PUT of an unknown plugin is 404', async () => {
    const r = await call(host, 'PUT', '/plugins/functions/echo', { name: 'echo', file: z('echo.zip') });
    assert.equal(r.status, 200);
    assert.match(r.text, /^function plugin echo is unchanged: the zip holds the library already running/);
    const missing = await call(host, 'PUT', '/plugins/functions/ghost', { file: z('echo.zip') });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error, 'E_NOT_FOUND');
  });

  it('DELETE removes it; GET after delete is 404', async () => {
    const r = await call(host, 'DELETE', '/plugins/functions/echo');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'function plugin echo is deleted');
    const g = await call(host, 'GET', '/plugins/functions/echo');
    assert.equal(g.status, 404);
    assert.equal(g.json.error, 'E_NOT_FOUND');
    assert.equal((await call(host, 'GET', '/plugins/udfs/echo')).status, 404);
    assert.equal((await call(host, 'DELETE', '/plugins/functions/echo')).status, 404);
  });

  it('accepts a multipart upload, a raw application/zip body and an http URL', async () => {
    const form = new FormData();
    form.append('name', 'vector');
    form.append('file', new Blob([fs.readFileSync(z('vector.zip'))], { type: 'application/zip' }), 'vector.zip');
    const m = await call(host, 'POST', '/plugins/functions', form);
    assert.equal(m.status, 201, m.text);
    const raw = await call(host, 'POST', '/plugins/functions?name=countPlusOne', fs.readFileSync(z('count.zip')), { 'content-type': 'application/zip' });
    assert.equal(raw.status, 201, raw.text);
    const u = await call(host, 'POST', '/plugins/functions', { name: 'accumulateWordCount', file: `${zipUrl}/words.zip` });
    assert.equal(u.status, 201, u.text);
    assert.deepEqual((await call(host, 'GET', '/plugins/udfs')).json.sort(), ['accumulateWordCount', 'countPlusOne', 'scale']);
    const gone = await call(host, 'POST', '/plugins/functions', { name: 'nothere', file: `${zipUrl}/nothere.zip` });
    assert.equal(gone.status, 502, 'the host could not get the zip: a gateway error');
    assert.equal(gone.json.error, 'E_FETCH');
  });

  it('refuses bad requests with 400/404 JSON and never a stack trace', async () => {
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/plugins/functions', '{not json', 400, 'E_BAD_REQUEST'],
      ['POST', '/plugins/functions', { name: 'x' }, 400, 'E_BAD_REQUEST'],
      ['POST', '/plugins/functions', { name: 'a/b', file: z('echo.zip') }, 400, 'E_ZIP_BAD_NAME'],
      ['POST', '/plugins/widgets', { name: 'x', file: z('echo.zip') }, 404, 'E_NOT_FOUND'],
      ['POST', '/plugins/functions', { name: 'arm', file: z('arm.zip') }, 400, 'E_ARCH'],
      ['POST', '/plugins/functions', { name: 'evil', file: z('slip.zip') }, 400, 'E_ZIP_SLIP'],
      ['POST', '/plugins/functions', { name: 'x', file: z('missing.zip') }, 400, 'E_FILE_REFUSED'],
      ['GET', '/nowhere', undefined, 404, 'E_NOT_FOUND'],
    ];
    for (const [method, route, body, status, code] of cases) {
      const r = await call(host, method, route, body);
      assert.equal(r.status, status, `${method} ${route} ${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.json.error, code, r.text);
      assert.equal(typeof r.json.message, 'string');
      assert.doesNotMatch(r.text, /\n\s+at /, 'no stack trace');
    }
  });

  it('refuses http downloads to private addresses unless allowed', async () => {
    const strict = await startHost({ dataDir: path.join(root, 'strict'), port: 0, logger: quiet() });
    try {
      const r = await call(strict, 'POST', '/plugins/functions', { name: 'vector', file: `${zipUrl}/vector.zip` });
      assert.equal(r.status, 400);
      assert.equal(r.json.error, 'E_URL_FORBIDDEN');
      assert.deepEqual(pluginState(path.join(root, 'strict')), []);
    } finally {
      await strict.close();
    }
  });

  it('a restart reloads what was installed', async () => {
    await host.close();
    host = await startHost({ dataDir: data, port: 0, logger: quiet() });
    assert.deepEqual((await call(host, 'GET', '/plugins/functions')).json.sort(), ['accumulateWordCount', 'countPlusOne', 'vector']);
    assert.deepEqual((await call(host, 'GET', '/plugins/udfs')).json.sort(), ['accumulateWordCount', 'countPlusOne', 'scale']);
    assert.equal((await call(host, 'GET', '/plugins/functions/vector')).json.state, 'loaded');
    const inst = host.registry.getFunction('scale')!.instantiate('t');
    assert.equal(inst.call(2, 21), 42);
    inst.close();
  });
});
