/** Native sources through the host: ordering, backpressure policies, errors, close. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createSource } from '../../src/connectors/index.js';
import type { ConnectorStatus, Row } from '../../src/connectors/types.js';
import { PluginRegistry } from '../../src/plugins/index.js';
import type { NativeSourceConnector } from '../../src/plugins/native-io.js';
import { blockJs, buildIoFx, until } from './fixtures.js';

const logs: string[] = [];
const registry = new PluginRegistry({ onLog: (l) => logs.push(l.message) });
before(() => registry.load(buildIoFx()));
after(() => registry.unloadAll());

function source(type: string, config: object, extra: Record<string, string> = {}): NativeSourceConnector {
  return createSource(type, '', { CONFIG: JSON.stringify(config), ...extra }) as NativeSourceConnector;
}

async function collect(src: NativeSourceConnector, until_: (rows: Row[]) => boolean, statuses: ConnectorStatus[] = []): Promise<Row[]> {
  const rows: Row[] = [];
  await src.start((r) => rows.push(...r), (s) => statuses.push(s));
  await until(() => until_(rows), 'rows');
  return rows;
}

describe('native source', () => {
  it('delivers every row of one producer in order, in batches (block policy, small queue)', async () => {
    const src = source('fx_seq', { count: 20000 }, { BUFFER_LENGTH: '64', BATCH_SIZE: '50' });
    const rows = await collect(src, (r) => r.length >= 20000);
    await src.stop();
    assert.equal(rows.length, 20000);
    rows.forEach((r, i) => assert.equal(r.seq, i));
    const s = src.stats()!;
    assert.equal(s.in, 20000);
    assert.equal(s.out, 20000);
    assert.equal(s.dropped, 0);
    assert.equal(s.depth, 0);
    assert.ok(s.maxLatencyMs >= 0);
  });

  it('keeps per-thread order with producer threads of the plugin\'s own', async () => {
    const src = source('fx_threads', { threads: 3, count: 5000 }, { BUFFER_LENGTH: '100' });
    const rows = await collect(src, (r) => r.length >= 15000);
    await src.stop();
    assert.equal(rows.length, 15000);
    const next = [0, 0, 0];
    for (const r of rows) {
      const t = r.t as number;
      assert.equal(r.seq, next[t], `thread ${t} out of order`);
      next[t]++;
    }
  });

  it('structured rows arrive typed, without JSON', async () => {
    const src = source('fx_seq', { count: 3, rows: 1 });
    const rows = await collect(src, (r) => r.length >= 3);
    await src.stop();
    assert.deepEqual(rows[1], { seq: 1, tag: 'fx', half: 0.5, even: false, nothing: null });
  });

  it('drop-newest keeps the first rows and counts every drop exactly', async () => {
    const src = source('fx_seq', { count: 1000, inopen: 1 }, { BUFFER_LENGTH: '100', OVERFLOW: 'drop-newest' });
    const rows: Row[] = [];
    const started = src.start((r) => rows.push(...r), () => undefined);
    blockJs(500); // the plugin pushes 1000 rows into a queue of 100 while JS cannot drain
    await started;
    await until(() => rows.length >= 100 && src.stats()!.depth === 0, 'drain');
    await src.stop();
    const s = src.stats()!;
    assert.equal(s.dropped, 900);
    assert.equal(s.in, 100);
    assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: 100 }, (_, i) => i));
  });

  it('drop-oldest keeps the last rows and counts every drop exactly', async () => {
    const src = source('fx_seq', { count: 1000, inopen: 1 }, { BUFFER_LENGTH: '100', OVERFLOW: 'drop-oldest' });
    const rows: Row[] = [];
    const started = src.start((r) => rows.push(...r), () => undefined);
    blockJs(500);
    await started;
    await until(() => src.stats()!.depth === 0 && rows.length >= 100, 'drain');
    await src.stop();
    const s = src.stats()!;
    assert.equal(s.dropped, 900);
    assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: 100 }, (_, i) => 900 + i));
  });

  it('block loses nothing: a producer faster than JS waits for room', async () => {
    const src = source('fx_seq', { count: 1000, inopen: 1 }, { BUFFER_LENGTH: '10', OVERFLOW: 'block' });
    const rows: Row[] = [];
    const started = src.start((r) => rows.push(...r), () => undefined);
    blockJs(200);
    await started;
    await until(() => rows.length >= 1000, 'all rows');
    await src.stop();
    assert.equal(src.stats()!.dropped, 0);
    assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: 1000 }, (_, i) => i));
  });

  it('a source that fails to open rejects start with its reason', async () => {
    const src = source('fx_seq', { fail: 1 });
    await assert.rejects(src.start(() => undefined, () => undefined), {
      code: 'E_SOURCE_FAILED',
      message: /source fx_seq \(plugin iofx\) open failed: cannot connect to fx:\/\/nowhere/,
    });
  });

  it('a source that reports an error is shown in error', async () => {
    const statuses: ConnectorStatus[] = [];
    const src = source('fx_seq', { count: 0, statuserror: 1 });
    await src.start(() => undefined, (s) => statuses.push(s));
    await until(() => statuses.some((s) => s.state === 'error'), 'error status');
    assert.deepEqual(statuses.find((s) => s.state === 'error'), { state: 'error', error: 'lost the device' });
    assert.equal(src.stats()!.errors, 1);
    await src.stop();
  });

  it('closing under load delivers every row the plugin got SP_OK for', async () => {
    logs.length = 0;
    const src = source('fx_seq', { count: -1 }, { BUFFER_LENGTH: '256' });
    const rows = await collect(src, (r) => r.length >= 5000);
    await src.stop();
    const s = src.stats()!;
    assert.equal(rows.length, s.in, 'every accepted row reached JS');
    rows.forEach((r, i) => assert.equal(r.seq, i));
    // the close hook logs how many pushes it got SP_OK for; logs cross to JS asynchronously
    await until(() => logs.includes(`acked ${s.in}`), `the plugin to report acked ${s.in} (got: ${logs.join('; ')})`);
  });

  it('a plugin slow in close does not hang the host: E_CLOSE_TIMEOUT, library kept mapped', async () => {
    const src = source('fx_seq', { count: 5, closems: 3000 }, { CLOSE_TIMEOUT: '200' });
    await collect(src, (r) => r.length >= 5);
    const t0 = Date.now();
    await assert.rejects(src.stop(), { code: 'E_CLOSE_TIMEOUT', message: /did not finish closing within 200 ms/ });
    assert.ok(Date.now() - t0 < 2500, 'stop returned before the hook did');
    assert.equal(src.metrics().closeTimedOut, true);
  });
});

describe('native source lifecycle', () => {
  it('10,000 open/close cycles leave no thread, queue or memory behind', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const cycle = async () => {
      const src = source('fx_seq', { count: 1, inopen: 1 });
      const rows: Row[] = [];
      await src.start((r) => rows.push(...r), () => undefined);
      await src.stop();
      assert.equal(rows.length, 1);
    };
    for (let i = 0; i < 500; i++) await cycle(); // warm up allocators and JIT
    gc();
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 10000; i++) await cycle();
    gc();
    await new Promise((r) => setTimeout(r, 50)); // finalizers of the collected handles
    gc();
    const grown = (process.memoryUsage().rss - rssBefore) / 1e6;
    assert.ok(grown < 8, `RSS grew ${grown.toFixed(1)} MB over 10,000 cycles`);
  });
});
