/**
 * The sink cache (enableCache and friends) and the bounded queue without it, on SinkRunner with a
 * real SQLite store: order, exact counters, the memory bound, disk pages, and the cache kept or
 * cleaned across a stop.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kvPageStore, sinkCacheScope, SinkRunner, type Row, type SinkConnector } from '../../src/connectors/index.js';
import { openStore } from '../../src/store/index.js';

/** A sink whose target can be taken down and brought back; records what it delivered. */
class Target implements SinkConnector {
  readonly got: Row[] = [];
  down = false;
  attempts = 0;
  async open(): Promise<void> {}
  async collect(rows: Row[]): Promise<void> {
    this.attempts++;
    await new Promise((r) => setImmediate(r));
    if (this.down) throw new Error('target down');
    this.got.push(...rows);
  }
  async close(): Promise<void> {}
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-cache-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const settle = () => new Promise((r) => setImmediate(r));

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const ids = (rows: Row[]) => rows.map((r) => r.n as number);
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('sink cache', () => {
  it('an outage: rows go to memory then disk pages, memory stays bounded, all are resent in order once', async () => {
    const store = openStore(path.join(root, 'outage'));
    const pages = kvPageStore(store, sinkCacheScope('r', 0));
    const t = new Target();
    const props = { sendSingle: true, enableCache: true, memoryCacheThreshold: 8, bufferPageSize: 4, bufferLength: 4, retryInterval: 5 };
    const r = new SinkRunner(t, props, { cacheStore: pages });
    await r.open();
    await r.collect([{ n: 0 }, { n: 1 }]);
    await until('first rows', () => t.got.length === 2);
    t.down = true;
    let maxMem = 0;
    for (let n = 2; n < 200; n++) {
      await r.collect([{ n }]);
      const m = r.metrics();
      maxMem = Math.max(maxMem, m.cached - m.cachedOnDisk);
      if (n % 10 === 0) await settle();
    }
    const during = r.metrics();
    assert.equal(during.connected, false);
    assert.ok(during.cached > 150, `most rows are cached (${during.cached})`);
    assert.ok(during.cachedOnDisk > 0 && pages.keys().length > 0, 'pages went to the store');
    // memoryCacheThreshold plus the head page and what a failure puts back in front (bufferLength + 1).
    assert.ok(maxMem <= 8 + 4 + 5, `memory held ${maxMem} messages`);
    assert.equal(during.droppedMessages, 0);
    t.down = false;
    await until('resend', () => r.metrics().cached === 0 && t.got.length === 200);
    assert.deepEqual(ids(t.got), range(0, 200), 'every row once, in order');
    const m = r.metrics();
    assert.equal(m.messagesIn, 200);
    assert.equal(m.messagesOut, 200);
    assert.equal(m.resent, m.cachedTotal);
    assert.equal(m.resent, 198);
    assert.equal(m.connected, true);
    assert.deepEqual([m.buffered, m.cached, m.droppedMessages], [0, 0, 0]);
    assert.deepEqual(pages.keys(), [], 'resent pages are deleted from the store');
    await r.close();
    store.close();
  });

  it('a full cache drops and counts exactly what it cannot hold', async () => {
    const store = openStore(path.join(root, 'full'));
    const t = new Target();
    t.down = true;
    const props = { sendSingle: true, enableCache: true, memoryCacheThreshold: 4, bufferPageSize: 2, maxDiskCache: 6, bufferLength: 2, retryInterval: 3_600_000 };
    const r = new SinkRunner(t, props, { cacheStore: kvPageStore(store, sinkCacheScope('r', 0)) });
    await r.open();
    for (let n = 0; n < 50; n++) await r.collect([{ n }]);
    await until('first failure', () => r.metrics().connected === false);
    const m = r.metrics();
    assert.equal(m.messagesIn, 50);
    assert.ok(m.cached <= 4 + 6 + 3, `cache holds ${m.cached}`);
    assert.equal(m.messagesIn, m.messagesOut + m.droppedMessages + m.cached + m.buffered, JSON.stringify(m));
    assert.ok(m.droppedMessages > 0);
    assert.equal(m.droppedRecords, m.droppedMessages);
    await r.close();
    store.close();
  });

  it('a stopped sink keeps its cache on disk and the next run resends it first; cleanCacheAtStop forgets it', async () => {
    const store = openStore(path.join(root, 'keep'));
    const scope = sinkCacheScope('keep', 1);
    const props = { sendSingle: true, enableCache: true, memoryCacheThreshold: 4, bufferPageSize: 2, retryInterval: 3_600_000 };
    const t1 = new Target();
    t1.down = true;
    const r1 = new SinkRunner(t1, props, { cacheStore: kvPageStore(store, scope) });
    await r1.open();
    for (let n = 0; n < 10; n++) await r1.collect([{ n }]);
    await until('cached', () => r1.metrics().cached === 10);
    await r1.close();
    assert.equal(r1.metrics().droppedMessages, 0);
    assert.ok(store.kvKeys(scope).length > 0);

    const t2 = new Target();
    const r2 = new SinkRunner(t2, props, { cacheStore: kvPageStore(store, scope) });
    await r2.open();
    await r2.collect([{ n: 10 }]);
    await until('resent', () => t2.got.length === 11);
    assert.deepEqual(ids(t2.got), range(0, 11));
    assert.equal(r2.metrics().resent, 11, 'the new row queued behind the cache');
    await r2.close();
    assert.deepEqual(store.kvKeys(scope), []);

    const t3 = new Target();
    t3.down = true;
    const r3 = new SinkRunner(t3, { ...props, cleanCacheAtStop: true }, { cacheStore: kvPageStore(store, scope) });
    await r3.open();
    for (let n = 0; n < 10; n++) await r3.collect([{ n }]);
    await until('cached', () => r3.metrics().cached === 10);
    await r3.close();
    assert.deepEqual(store.kvKeys(scope), []);
    assert.equal(r3.metrics().droppedMessages, 10);
    assert.equal(r3.metrics().droppedRecords, 10);
    store.close();
  });

  it('a damaged page in the store is reported and counted, the rest is still resent', async () => {
    const store = openStore(path.join(root, 'damaged'));
    const scope = sinkCacheScope('d', 0);
    const props = { sendSingle: true, enableCache: true, memoryCacheThreshold: 2, bufferPageSize: 2, retryInterval: 3_600_000 };
    const t1 = new Target();
    t1.down = true;
    const r1 = new SinkRunner(t1, props, { cacheStore: kvPageStore(store, scope) });
    await r1.open();
    for (let n = 0; n < 6; n++) await r1.collect([{ n }]);
    await until('cached', () => r1.metrics().cached === 6);
    await r1.close();
    const keys = store.kvKeys(scope);
    store.kvPut(scope, keys[0], 'not a page');
    const t2 = new Target();
    const r2 = new SinkRunner(t2, props, { cacheStore: kvPageStore(store, scope) });
    await r2.open();
    await until('rest resent', () => r2.metrics().cached === 0);
    const lost = Number(keys[0].split('-')[1]);
    assert.equal(r2.metrics().droppedMessages, lost);
    assert.match(r2.metrics().lastError ?? '', /missing or damaged/);
    assert.deepEqual(ids(t2.got), range(lost, 6));
    await r2.close();
    store.close();
  });
});

describe('bounded queue without the cache', () => {
  it('bufferFullPolicy drop: a message meeting a full queue is dropped and counted, never held', async () => {
    const t = new Target();
    t.down = true;
    const r = new SinkRunner(t, { sendSingle: true, bufferLength: 3, bufferFullPolicy: 'drop', retryCount: 0, retryInterval: 1 });
    await r.open();
    const pending = [];
    for (let n = 0; n < 100; n++) pending.push(r.collect([{ n }]));
    await Promise.all(pending); // nothing waits
    await r.drain();
    const m = r.metrics();
    assert.equal(m.messagesIn, 100);
    assert.equal(m.droppedMessages, 100);
    assert.ok(t.attempts <= 4, `only what fit the queue was tried (${t.attempts})`);
    await r.close();
  });

  it('bufferFullPolicy block: at most bufferLength callers wait; beyond that messages are dropped and counted', async () => {
    const t = new Target();
    t.down = true;
    const r = new SinkRunner(t, { sendSingle: true, bufferLength: 3, retryCount: 1_000_000, retryInterval: 3_600_000 });
    await r.open();
    for (let n = 0; n < 100; n++) void r.collect([{ n }]);
    await settle();
    const m = r.metrics();
    // 1 in flight, 3 queued, 3 callers waiting: 93 dropped.
    assert.equal(m.buffered, 3);
    assert.equal(m.droppedMessages, 93);
    await r.close();
  });
});
