/**
 * REST sink against a real node:http server. Delivery semantics under retry: each attempt re-sends
 * the whole message, so after a 500 the server sees that message twice, and every row arrives in
 * exactly one successful attempt; messages already delivered are never re-sent.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSink, createSinkRunner } from '../../src/connectors/index.js';
import { isStreamplugError } from '../../src/errors.js';

interface Seen {
  method: string;
  url: string;
  type?: string;
  token?: string;
  body: string;
}

describe('rest sink', () => {
  let server: http.Server;
  let base = '';
  const seen: Seen[] = [];
  /** Statuses to answer with, in order; 200 once exhausted. 0 means never answer. */
  let script: number[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, type: req.headers['content-type'], token: req.headers['x-token'] as string | undefined, body });
        const status = script.shift() ?? 200;
        if (status === 0) return; // hold: the client times out
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : `boom ${status}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const reset = (s: number[]) => {
    seen.length = 0;
    script = s;
  };

  it('retries a batch after a 500: two identical requests, rows delivered once', async () => {
    reset([500]);
    const r = createSinkRunner('rest', { url: `${base}/ingest`, retryCount: 2, retryInterval: 1 });
    await r.open();
    await r.collect([{ a: 1 }, { a: 2 }]);
    await r.drain();
    const body = '[{"a":1},{"a":2}]';
    assert.deepEqual(seen, [
      { method: 'POST', url: '/ingest', type: 'application/json', token: undefined, body },
      { method: 'POST', url: '/ingest', type: 'application/json', token: undefined, body },
    ]);
    const m = r.metrics();
    assert.deepEqual([m.recordsIn, m.recordsOut, m.messagesOut, m.exceptions, m.droppedMessages], [2, 2, 1, 1, 0]);
    assert.match(m.lastError ?? '', /HTTP 500 "boom 500", expected 2xx/);
    await r.close();
  });

  it('with sendSingle only the failed row is sent again', async () => {
    reset([200, 503]);
    const r = createSinkRunner('rest', { url: `${base}/one`, sendSingle: true, retryCount: 1, retryInterval: 1 });
    await r.open();
    await r.collect([{ n: 1 }, { n: 2 }, { n: 3 }]);
    await r.drain();
    assert.deepEqual(seen.map((s) => s.body), ['{"n":1}', '{"n":2}', '{"n":2}', '{"n":3}']);
    assert.equal(r.metrics().recordsOut, 3);
    await r.close();
  });

  it('PUT with headers and a text template body', async () => {
    reset([]);
    const r = createSinkRunner('rest', {
      url: `${base}/put`, method: 'put', headers: { 'x-token': 'abc' }, bodyType: 'text', sendSingle: true, dataTemplate: 'temp={{.t}}',
    });
    await r.open();
    await r.collect([{ t: 20.5 }]);
    await r.drain();
    assert.deepEqual(seen, [{ method: 'PUT', url: '/put', type: 'text/plain; charset=utf-8', token: 'abc', body: 'temp=20.5' }]);
    await r.close();
  });

  it('a non-2xx answer is an error carrying the status and body', async () => {
    reset([404]);
    const sink = createSink('rest', { url: `${base}/missing` });
    await sink.open();
    const err = await sink.collect([{ a: 1 }]).then(() => undefined, (e: unknown) => e);
    assert.ok(isStreamplugError(err));
    assert.equal(err.code, 'E_SINK_FAILED');
    assert.equal(err.details?.status, 404);
    assert.equal(err.details?.body, 'boom 404');
  });

  it('times out on an endpoint that never answers', async () => {
    reset([0]);
    const r = createSinkRunner('rest', { url: `${base}/slow`, timeout: 50 });
    await r.open();
    await r.collect([{ a: 1 }]);
    await r.drain();
    const m = r.metrics();
    assert.equal(m.droppedMessages, 1);
    assert.match(m.lastError ?? '', /no answer within 50 ms/);
    await r.close();
  });

  it('refuses a bad url or method when created', () => {
    assert.throws(() => createSink('rest', { url: 'ftp://x' }), { code: 'E_CONNECTOR_CONFIG' });
    assert.throws(() => createSink('rest', {}), { code: 'E_CONNECTOR_CONFIG' });
    assert.throws(() => createSink('rest', { url: base, method: 'DELETE' }), { code: 'E_CONNECTOR_CONFIG' });
  });
});
