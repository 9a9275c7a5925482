/**
 * Timeouts and limits on a real host process: a stalled upload holds nobody else up, a client that
 * goes away cancels its queued install, multipart limits answer 4xx at once without leaking file
 * descriptors or temp files, malformed bodies are 400, a cut download 502, no hash oracle.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { clientHeaders, startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { PluginManager } from '../../src/manager/manager.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { makeZip, pluginState, sample } from '../manager/zips.js';
import { eventually, filesIn, openFds, rawRequest, sampleZips, tempRoot } from './helpers.js';

/** Opens a raw upload that sends `first` bytes of a body announced as `length` bytes, then stalls. */
function stalledUpload(url: string, headers: Record<string, string>, route: string, first: Buffer, length: number): { socket: net.Socket; closed: Promise<string> } {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  let answer = '';
  socket.on('data', (c) => (answer += c));
  const closed = new Promise<string>((r) => socket.on('close', () => r(answer)));
  socket.on('error', () => undefined);
  const head = [`POST ${route} HTTP/1.1`, `Host: ${u.host}`, 'Content-Type: application/zip', `Content-Length: ${length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  socket.write(head);
  socket.write(first);
  return { socket, closed };
}

/** A multipart POST as a browser or curl -F sends it (host.api sends JSON). */
async function postForm(host: HostProcess, route: string, form: FormData): Promise<{ status: number; text: string; body: any }> {
  const res = await fetch(host.url + route, { method: 'POST', headers: clientHeaders(host.dataDir), body: form });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, text, body };
}

describe('timeouts and limits', () => {
  const root = tempRoot('limits');
  const data = path.join(root, 'data');
  let zips: Awaited<ReturnType<typeof sampleZips>>;
  let host: HostProcess;
  const tmp = path.join(data, 'tmp');

  before(async () => {
    zips = await sampleZips(path.join(root, 'zips'));
    host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0', '--allow-private-urls', '--idle-timeout', '1500'] });
  });
  after(async () => {
    await host?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('a stalled raw upload does not delay a concurrent install by more than 1 s, and is closed by the idle timeout', async () => {
    // the same install without a stalled upload around: what "not delayed" is measured against
    let t0 = Date.now();
    assert.equal((await host.api('POST', '/plugins/functions', { name: 'vector', file: zips.vector })).status, 201);
    const baseline = Date.now() - t0;
    assert.equal((await host.api('DELETE', '/plugins/functions/vector')).status, 200);
    const zip = fs.readFileSync(zips.echo);
    const stalled = stalledUpload(host.url, clientHeaders(data), '/plugins/functions?name=echo', zip.subarray(0, 100), zip.length);
    await eventually('the stalled upload spooling', () => filesIn(tmp).some((f) => f.startsWith('upload-')));
    t0 = Date.now();
    const r = await host.api('POST', '/plugins/functions', { name: 'vector', file: zips.vector });
    const took = Date.now() - t0;
    assert.equal(r.status, 201, r.text);
    assert.ok(took - baseline < 1000, `the concurrent install took ${took} ms, ${baseline} ms without the stalled upload`);
    // a 1 byte/s trickle is no better: the queue stays free while it trickles
    const trickle = stalledUpload(host.url, clientHeaders(data), '/plugins/functions?name=countPlusOne', Buffer.alloc(0), 1000);
    const timer = setInterval(() => trickle.socket.write(Buffer.from([0x50])), 1000);
    try {
      const t1 = Date.now();
      assert.equal((await host.api('DELETE', '/plugins/functions/vector')).status, 200);
      assert.ok(Date.now() - t1 < 1000 + baseline, 'a delete waits for no trickling upload');
    } finally {
      clearInterval(timer);
      trickle.socket.destroy();
    }
    // the server closes the stalled connection itself (idle timeout) and removes its partial upload
    await stalled.closed;
    await eventually('the partial upload removed', () => !filesIn(tmp).some((f) => f.startsWith('upload-')));
    assert.deepEqual((await host.api('GET', '/plugins/functions')).body, []);
  });

  it('a client that goes away cancels its queued install', async () => {
    // Hold the queue: an install whose download stalls inside the install lock.
    const zip = fs.readFileSync(zips.vector);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const server = http.createServer(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(zip.length) });
      res.write(zip.subarray(0, 10));
      await released;
      res.end(zip.subarray(10));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const slowUrl = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/vector.zip`;
      const first = host.api('POST', '/plugins/functions', { name: 'vector', file: slowUrl });
      await eventually('the first install downloading', () => filesIn(tmp).some((f) => f.startsWith('install-')));
      const ac = new AbortController();
      const queued = fetch(`${host.url}/plugins/functions`, {
        method: 'POST',
        headers: { ...clientHeaders(data), 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'echo', file: zips.echo }),
        signal: ac.signal,
      }).catch((e: Error) => e);
      await new Promise((r) => setTimeout(r, 200)); // queued behind the first
      ac.abort();
      assert.ok((await queued) instanceof Error);
      await new Promise((r) => setTimeout(r, 100));
      release();
      assert.equal((await first).status, 201);
      await eventually('the cancelled install audited', async () =>
        ((await host.api('GET', '/plugins/audit')).body as { name: string; code?: string }[]).some((a) => a.name === 'echo' && a.code === 'E_CANCELLED'),
      );
      assert.deepEqual((await host.api('GET', '/plugins/functions')).body, ['vector'], 'echo never installed');
      assert.equal((await host.api('DELETE', '/plugins/functions/vector')).status, 200);
    } finally {
      release();
      server.closeAllConnections();
      server.close();
    }
  });

  it('a multipart request with 17 fields before the file answers 4xx at once and leaks nothing', async () => {
    const pid = host.child.pid!;
    const fdsBefore = openFds(pid);
    const tmpBefore = filesIn(tmp);
    const zip = fs.readFileSync(zips.echo);
    for (let round = 0; round < 20; round++) {
      const form = new FormData();
      for (let i = 0; i < 17; i++) form.append(`f${i}`, 'v');
      form.append('file', new Blob([zip]), 'echo.zip');
      const r = await postForm(host, '/plugins/functions', form);
      assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${r.text}`);
      assert.match(r.body.message, /fields limit/, r.text);
    }
    // many parts, a huge part header, a huge field: the same
    const boundary = 'B0UNDARY';
    const parts = (n: number) => Array.from({ length: n }, (_, i) => `--${boundary}\r\nContent-Disposition: form-data; name="p${i}"\r\n\r\nx\r\n`).join('') + `--${boundary}--\r\n`;
    const bigHeader = `--${boundary}\r\nContent-Disposition: form-data; name="a"\r\nX-Pad: ${'y'.repeat(100_000)}\r\n\r\nx\r\n--${boundary}--\r\n`;
    const bigField = `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n${'n'.repeat(200_000)}\r\n--${boundary}--\r\n`;
    for (const body of [parts(40), bigHeader, bigField]) {
      const r = await rawRequest({ url: host.url }, 'POST', '/plugins/functions', { ...clientHeaders(data), 'content-type': `multipart/form-data; boundary=${boundary}` }, body);
      assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${r.body}`);
    }
    await eventually('fds back to where they were', () => openFds(pid) <= fdsBefore);
    assert.deepEqual(filesIn(tmp), tmpBefore, 'no temp file left');
    assert.deepEqual((await host.api('GET', '/plugins/functions')).body, []);
  });

  it('a malformed multipart body is 400; a download cut mid-body is 502 E_FETCH', async () => {
    const boundary = 'XX';
    const zip = fs.readFileSync(zips.echo);
    const unterminated = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\necho\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="e.zip"\r\n\r\n`),
      zip,
    ]);
    const garbage = Buffer.from('this is not multipart at all');
    for (const body of [unterminated, garbage]) {
      const r = await rawRequest({ url: host.url }, 'POST', '/plugins/functions', { ...clientHeaders(data), 'content-type': `multipart/form-data; boundary=${boundary}` }, body);
      assert.equal(r.status, 400, r.body);
      assert.equal(JSON.parse(r.body).error, 'E_BAD_REQUEST');
    }
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(zip.length) });
      res.write(zip.subarray(0, zip.length >> 1), () => res.socket?.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const r = await host.api('POST', '/plugins/functions', { name: 'echo', file: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/echo.zip` });
      assert.equal(r.status, 502, r.text);
      assert.equal(r.body.error, 'E_FETCH');
    } finally {
      server.close();
    }
    assert.deepEqual(filesIn(tmp), []);
    assert.deepEqual(pluginState(data).filter((f) => f.startsWith('plugins/')), []);
  });

  it('no hash oracle: a wrong sha256 never tells the real one, nor whether a path exists', async () => {
    const file = path.join(root, 'secret.txt');
    fs.writeFileSync(file, 'top secret');
    const crypto = await import('node:crypto');
    const real = crypto.createHash('sha256').update('top secret').digest('hex');
    // an existing file, a missing one, a folder, an unreadable device: one answer for all, with or without sha256
    const answers = new Set<string>();
    for (const named of [file, path.join(root, 'missing.zip'), root, '/etc/shadow', '/nonexistent/x.zip', `file://${file}`]) {
      for (const extra of [{}, { sha256: '00' }, { sha256: real }]) {
        const r = await host.api('POST', '/plugins/functions', { name: 'x', file: named, ...extra });
        assert.equal(r.status, 400, r.text);
        assert.ok(!r.text.includes(real), r.text);
        answers.add(`${r.body.error}`);
      }
    }
    assert.deepEqual([...answers], ['E_FILE_REFUSED']);
    // a real zip with a wrong sha256 is refused without its hash
    const zip = path.join(root, 'real.zip');
    const bytes = await makeZip(zip, [{ name: 'echo.so', file: sample('echo.so') }]);
    const zipHash = crypto.createHash('sha256').update(bytes).digest('hex');
    const r = await host.api('POST', '/plugins/functions', { name: 'echo', file: zip, sha256: '00' });
    assert.equal(r.body.error, 'E_SHA256', r.text);
    assert.ok(!r.text.includes(zipHash), r.text);
  });

  it('a valid but very long name is a 400 that names no server path', async () => {
    const name = 'n'.repeat(250);
    const zip = path.join(root, 'long.zip');
    await makeZip(zip, [{ name: `${name}.so`, file: sample('echo.so') }]);
    const form = new FormData();
    form.append('name', name);
    form.append('file', new Blob([fs.readFileSync(zip)]), 'long.zip');
    const r = await postForm(host, '/plugins/functions', form);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error, 'E_LIMIT', r.text);
    assert.ok(!r.text.includes(data), r.text);
    // in a path, fastify's parameter limit answers first (414)
    const d = await host.api('DELETE', `/plugins/functions/${name}`);
    assert.equal(d.status, 414, d.text);
    assert.ok(!d.text.includes(data), d.text);
  });

  it('metadata is limited to 64 KiB', async () => {
    const big = path.join(root, 'bigmeta.zip');
    await makeZip(big, [{ name: 'echo.so', file: sample('echo.so') }, { name: 'echo.json', data: JSON.stringify({ version: '1.0.0', pad: 'x'.repeat(70_000) }) }]);
    const r = await host.api('POST', '/plugins/functions', { name: 'echo', file: big });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /metadata is limited to 65536 bytes/);
  });
});

describe('file:// installs and configured roots', () => {
  it('with --file-root, paths outside are refused alike whether they exist or not', async () => {
    const root = tempRoot('roots');
    const zips = await sampleZips(path.join(root, 'allowed'));
    const host = await startHostProcess({ dataDir: path.join(root, 'data'), args: ['--mqtt-port', '0', '--file-root', path.join(root, 'allowed')] });
    try {
      const answers = [];
      for (const file of ['/etc/passwd', '/etc/does-not-exist', 'file:///etc/passwd', path.join(root, 'allowed', '..', 'data', 'etc', 'api-token')]) {
        const r = await host.api('POST', '/plugins/functions', { name: 'x', file });
        assert.equal(r.status, 400, file);
        answers.push([r.body.error, r.body.message]);
      }
      assert.equal(new Set(answers.map((a) => JSON.stringify(a))).size, 1, 'one answer for all');
      fs.symlinkSync('/etc/passwd', path.join(root, 'allowed', 'link.zip'));
      assert.equal((await host.api('POST', '/plugins/functions', { name: 'x', file: path.join(root, 'allowed', 'link.zip') })).body.error, 'E_URL_FORBIDDEN');
      assert.equal((await host.api('POST', '/plugins/functions', { name: 'echo', file: zips.echo })).status, 201);
    } finally {
      await host.stop();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('downloads that stall', () => {
  it('fail with E_FETCH after the idle timeout instead of holding the install queue', async () => {
    const root = tempRoot('stall');
    const zips = await sampleZips(path.join(root, 'zips'));
    const registry = new PluginRegistry({ onLog: () => undefined });
    const manager = new PluginManager({ dataDir: path.join(root, 'data'), registry, allowPrivateUrls: true, downloadIdleTimeoutMs: 300 });
    await manager.start();
    const sockets = new Set<net.Socket>();
    // /headers: never answers; /body: answers headers and 10 bytes, then nothing
    const server = http.createServer((req, res) => {
      if (req.url === '/body') {
        res.writeHead(200, { 'content-type': 'application/zip', 'content-length': '100000' });
        res.write(Buffer.alloc(10));
      }
    });
    server.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    try {
      for (const route of ['/headers', '/body']) {
        await assert.rejects(manager.install({ type: 'functions', name: 'vector', source: { file: base + route } }), (e: Error & { code: string }) => {
          assert.equal(e.code, 'E_FETCH', e.message);
          assert.match(e.message, route === '/body' ? /stalled: nothing arrived for 300 ms after 10 bytes/ : /no answer within 300 ms/);
          return true;
        });
      }
      // the queue is free again
      await manager.install({ type: 'functions', name: 'vector', source: { file: zips.vector } });
      assert.deepEqual(manager.list('functions'), ['vector']);
      assert.deepEqual(filesIn(path.join(root, 'data', 'tmp')), []);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
      registry.unloadAll();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
