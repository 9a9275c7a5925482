/**
 * REST fuzz: thousands of generated malformed requests (methods, paths, headers, bodies, multipart
 * shapes) from fast-check against a real host process, bounded in count and time. No answer may be
 * a 5xx, the host must stay alive, and what it lists must match what is on disk.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { sampleZips, tempRoot } from './helpers.js';

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

/**
 * One request on its own connection, written byte for byte (an HTTP client library would refuse or
 * repair much of what is generated here), read until the server closes the connection.
 */
function send(url: string, r: Req): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port), u.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 10 s')), 10_000);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (e) => {
      clearTimeout(timer);
      // a reset after a complete answer (the server refused early and closed) still counts as answered
      if (chunks.length) finish();
      else reject(e);
    });
    const finish = () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      // skip interim answers (100 Continue) to the final one
      const m = /(?:^|\r\n)HTTP\/1\.1 ([2-5]\d\d)[^\r]*\r\n/.exec(text);
      if (!m) return reject(new Error(`not an HTTP answer: ${JSON.stringify(text.slice(0, 100))}`));
      const rest = text.slice(m.index + m[0].length);
      resolve({ status: Number(m[1]), body: rest.slice(rest.indexOf('\r\n\r\n') + 4) });
    };
    socket.on('end', finish);
    const head = [`${r.method} ${r.path} HTTP/1.1`, `Host: ${u.host}`, 'Connection: close', ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`)];
    if (r.body) head.push(`Content-Length: ${r.body.length}`);
    socket.write(head.join('\r\n') + '\r\n\r\n');
    if (r.body) socket.write(r.body);
  });
}

const segment = fc.oneof(
  fc.constantFrom('plugins', 'functions', 'sources', 'sinks', 'udfs', 'audit', 'streams', 'rules', 'echo', 'vector', 'register', 'status', 'start', 'stop', 'restart', 'ping', ''),
  fc.constantFrom('..', '%2e%2e', '%00', '%2F', 'a'.repeat(240), '%C3%89', '%FF', '%ZZ', '%20', 'x.json', '..%2f..%2fetc%2fpasswd', 'Echo', 'ECHO'),
  fc.stringMatching(/^[A-Za-z0-9_.~%-]{0,12}$/),
);
const query = fc.oneof(
  fc.constant(''),
  fc.array(fc.tuple(fc.constantFrom('name', 'force', 'sha256', 'functions', 'x'), fc.stringMatching(/^[A-Za-z0-9_%.-]{0,20}$/)), { maxLength: 3 }).map(
    (kv) => (kv.length ? '?' + kv.map(([k, v]) => `${k}=${v}`).join('&') : ''),
  ),
);
const urlPath = fc.oneof(
  fc.constantFrom('/', '/plugins/functions', '/plugins/sources', '/plugins/functions/echo', '/plugins/functions/echo/register', '/plugins/udfs', '/plugins/udfs/echo', '/plugins/audit', '/streams', '/streams/s', '/rules', '/rules/r', '/rules/r/status', '/rules/r/start'),
  fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => '/' + s.join('/')),
).chain((p) => query.map((q) => p + q));

const boundary = fc.stringMatching(/^[A-Za-z0-9'()+_,.-]{1,40}$/);

/** Multipart bodies: fields, file parts, odd headers, missing or wrong closing boundaries, truncation. */
function multipart(zip: Buffer) {
  const part = fc.oneof(
    fc.record({ name: fc.constantFrom('name', 'file', 'functions', 'sha256', 'x'), value: fc.string({ maxLength: 40 }) }).map(
      ({ name, value }) => `Content-Disposition: form-data; name="${name}"\r\n\r\n${value}`,
    ),
    fc.constantFrom('file', 'zip').map((n) => Buffer.concat([Buffer.from(`Content-Disposition: form-data; name="${n}"; filename="p.zip"\r\nContent-Type: application/zip\r\n\r\n`), zip]).toString('latin1')),
    fc.string({ maxLength: 80 }),
    fc.constant('Content-Disposition: form-data\r\n\r\nno name'),
  );
  return fc
    .record({ b: boundary, parts: fc.array(part, { maxLength: 20 }), close: fc.boolean(), cut: fc.option(fc.nat(4000)) })
    .map(({ b, parts, close, cut }) => {
      let text = parts.map((p) => `--${b}\r\n${p}\r\n`).join('') + (close ? `--${b}--\r\n` : '');
      if (cut !== null) text = text.slice(0, cut);
      return { type: `multipart/form-data; boundary=${b}`, body: Buffer.from(text, 'latin1') };
    });
}

describe('REST fuzz', () => {
  const root = tempRoot('fuzz');
  const data = path.join(root, 'data');
  let host: HostProcess;
  let zips: Awaited<ReturnType<typeof sampleZips>>;
  let token = '';

  before(async () => {
    zips = await sampleZips(path.join(root, 'zips'));
    host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0'] });
    token = fs.readFileSync(path.join(data, 'etc/api-token'), 'utf8').trim();
  });
  after(async () => {
    await host?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('answers thousands of malformed requests without a 5xx, and stays alive and consistent', { timeout: 240_000 }, async (t) => {
    const zip = fs.readFileSync(zips.echo);
    const jsonBody = fc.oneof(
      fc.json({ maxDepth: 3 }),
      fc
        .record({
          name: fc.oneof(fc.constantFrom('echo', 'Echo', 'vector', '', 'a/b', '../x', 'x'.repeat(300)), fc.string({ maxLength: 20 }), fc.integer()),
          file: fc.oneof(
            fc.constantFrom(zips.echo, zips.vector, '/etc/passwd', '/etc/shadow', '/proc/self/environ', '/dev/zero', '/', 'file:///etc/passwd', 'file://x', 'http://127.0.0.1:1/x.zip', 'ftp://x', 'http://[::1', ''),
            fc.string({ maxLength: 30 }),
          ),
          sha256: fc.option(fc.oneof(fc.constant('00'), fc.stringMatching(/^[0-9a-f]{64}$/))),
          functions: fc.option(fc.oneof(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), fc.string({ maxLength: 10 }), fc.integer())),
          force: fc.option(fc.boolean()),
          sql: fc.option(fc.oneof(fc.constant('CREATE STREAM s (x float) WITH (TYPE="memory", DATASOURCE="f")'), fc.string({ maxLength: 60 }))),
          id: fc.option(fc.string({ maxLength: 10 })),
          actions: fc.option(fc.constantFrom([], [{ log: {} }], 'x', [{ nope: 1 }])),
        })
        .map((o) => JSON.stringify(o)),
    );
    const body = fc.oneof(
      fc.constant({ type: undefined as string | undefined, body: undefined as Buffer | undefined }),
      jsonBody.map((j) => ({ type: 'application/json', body: Buffer.from(j) })),
      fc.string({ maxLength: 200 }).map((s) => ({ type: 'application/json', body: Buffer.from(s) })),
      multipart(zip),
      fc.uint8Array({ maxLength: 2000 }).map((b) => ({ type: 'application/zip', body: Buffer.from(b) })),
      fc.constant({ type: 'application/zip', body: zip }),
      fc.tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data', 'multipart/mixed; boundary=x', 'application/json; charset=latin1', 'foo', ''), fc.string({ maxLength: 100 })).map(
        ([type, s]) => ({ type, body: Buffer.from(s) }),
      ),
    );
    const auth = fc.oneof(
      { weight: 8, arbitrary: fc.constant(`Bearer ${token}`) },
      { weight: 1, arbitrary: fc.constantFrom(undefined, '', 'Bearer', `bearer ${token}`, `Bearer ${token}x`, 'Basic Zm9vOmJhcg==', `Bearer  ${token} `) },
      { weight: 1, arbitrary: fc.stringMatching(/^[ -~]{0,60}$/).map((s) => s) },
    );
    const request = fc
      .record({
        method: fc.oneof(
          { weight: 20, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') },
          { weight: 1, arbitrary: fc.constantFrom('CONNECT', 'TRACE', 'PROPFIND', 'FOO', 'get') },
        ),
        path: urlPath,
        body,
        auth,
        origin: fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('http://evil.example', 'null', host.url) }),
        extra: fc.option(fc.constantFrom<[string, string]>(['content-encoding', 'gzip'], ['transfer-encoding', 'chunked'], ['expect', '100-continue'], ['x-forwarded-host', 'evil.example'], ['content-length', '5'])),
      })
      .map(({ method, path: p, body: b, auth: a, origin, extra }): Req => {
        const headers: Record<string, string> = {};
        if (a !== undefined) headers.authorization = a;
        if (b.type !== undefined) headers['content-type'] = b.type;
        if (origin) headers.origin = origin;
        if (extra && extra[0] !== 'content-length' && extra[0] !== 'transfer-encoding') headers[extra[0]] = extra[1];
        return { method, path: p, headers, body: method === 'GET' || method === 'HEAD' ? undefined : b.body };
      });

    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        let res: { status: number; body: string };
        try {
          res = await send(host.url, r);
        } catch (e) {
          throw new Error(`${r.method} ${r.path} ${JSON.stringify(r.headers)}: no HTTP answer (${(e as Error).message})`);
        }
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        assert.ok(res.status > 0 && res.status < 500, `${r.method} ${r.path} ${JSON.stringify(r.headers)} → ${res.status} ${res.body.slice(0, 300)}`);
        assert.doesNotMatch(res.body, /\n\s+at /, 'no stack trace');
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 2500), interruptAfterTimeLimit: 150_000, markInterruptAsFailure: false, verbose: 1, includeErrorInReport: true, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
    );
    const total = [...seen.values()].reduce((a, b) => a + b, 0);
    t.diagnostic(`${total} requests; statuses ${JSON.stringify([...seen].sort())}`);
    assert.ok(total >= 1000, `only ${total} requests ran within the time bound`);
    assert.ok([...seen.keys()].some((s) => s === 401) && [...seen.keys()].some((s) => s === 200 || s === 201), `statuses seen: ${JSON.stringify([...seen])}`);

    // alive, and what it lists is what is on disk
    assert.equal(host.child.exitCode, null, 'the host is alive');
    assert.equal((await fetch(`${host.url}/ping`)).status, 200);
    for (const type of ['functions', 'sources', 'sinks']) {
      const listed = ((await host.api('GET', `/plugins/${type}`)).body as string[]).sort();
      const records = fs
        .readdirSync(path.join(data, 'plugins/records'))
        .filter((f) => f.startsWith(`${type}.`) && f.endsWith('.json'))
        .map((f) => f.slice(type.length + 1, -5))
        .sort();
      assert.deepEqual(listed, records, type);
      for (const name of listed) {
        const d = (await host.api('GET', `/plugins/${type}/${name}`)).body;
        assert.ok(fs.existsSync(d.file), `${d.file} exists`);
        assert.equal(d.state, 'loaded');
      }
    }
    assert.deepEqual(fs.readdirSync(path.join(data, 'tmp')), [], 'no temp file left');
    // and it still does its job
    const fresh = await host.api('POST', '/plugins/functions', { name: 'countPlusOne', file: zips.count });
    assert.ok(fresh.status === 201 || fresh.status === 409, fresh.text);
  });
});
