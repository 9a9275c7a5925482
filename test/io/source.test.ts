/** Native sources through the host: ordering, backpressure policies, errors, close. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ISOLATION_MODES } from '../helpers/isolation.js';
import { createSource } from '../../src/connectors/index.js';
import type { ConnectorStatus, Row } from '../../src/connectors/types.js';
import { PluginRegistry } from '../../src/plugins/index.js';
import type { NativeSourceConnector } from '../../src/plugins/native-io.js';
import { blockJs, buildIoFx, NOTHING_LIVE, rssMb, settledIoLive, until } from './fixtures.js';

const logs: string[] = [];

function source(type: string, config: object, extra: Record<string, string> = {}): NativeSourceConnector {
  return createSource(type, '', { CONFIG: JSON.stringify(config), ...extra }) as NativeSourceConnector;
}

async function collect(src: NativeSourceConnector, until_: (rows: Row[]) => boolean, statuses: ConnectorStatus[] = []): Promise<Row[]> {
  const rows: Row[] = [];
  await src.start((r) => rows.push(...r), (s) => statuses.push(s));
  await until(() => until_(rows), 'rows');
  return rows;
}

// Every behaviour below holds in both isolation modes (src/plugins/isolated/io.ts runs io.cc in a worker).
for (const mode of ISOLATION_MODES) describe(`isolation ${mode}`, () => {
  const registry = new PluginRegistry({ onLog: (l) => logs.push(l.message) });
  before(async () => {
    await registry.load(buildIoFx(), { isolation: mode });
  });
  after(() => registry.unloadAll());

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

  describe('native source: batch push (source_push_many)', () => {
    it('delivers every message in order through a small blocking queue, blocks larger than the queue', async () => {
      logs.length = 0;
      const src = source('fx_many', { count: 20000, block: 1000 }, { BUFFER_LENGTH: '64', BATCH_SIZE: '50' });
      const rows = await collect(src, (r) => r.length >= 20000);
      await src.stop();
      assert.equal(rows.length, 20000);
      rows.forEach((r, i) => assert.equal(r.seq, i));
      const s = src.stats()!;
      assert.deepEqual([s.in, s.out, s.dropped, s.depth], [20000, 20000, 0, 0]);
      await until(() => logs.includes('acked 20000'), `the plugin to report acked 20000 (got: ${logs.join('; ')})`);
    });

    it('mixes canonical and other messages in one block: JSON lines and rows, in order', async () => {
      const src = source('fx_many', { count: 1000, block: 100, spaced: 1 });
      const rows = await collect(src, (r) => r.length >= 1000);
      await src.stop();
      assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: 1000 }, (_, i) => i));
    });

    it('applies drop-newest and drop-oldest per message, counting each drop', async () => {
      for (const [overflow, first] of [['drop-newest', 0], ['drop-oldest', 900]] as const) {
        logs.length = 0;
        const src = source('fx_many', { count: 1000, block: 1000, inopen: 1 }, { BUFFER_LENGTH: '100', OVERFLOW: overflow });
        const rows: Row[] = [];
        const started = src.start((r) => rows.push(...r), () => undefined);
        blockJs(300); // one call of 1000 messages into a queue of 100 while JS cannot drain
        await started;
        await until(() => rows.length >= 100 && src.stats()!.depth === 0, 'drain');
        await src.stop();
        assert.equal(src.stats()!.dropped, 900, overflow);
        assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: 100 }, (_, i) => first + i), overflow);
        await until(() => logs.includes('acked 1000'), `acked 1000 (got: ${logs.join('; ')})`); // dropped ones count as taken
      }
    });

    it('a stop while the producer waits for room returns SP_ERROR; what it accepted reached JS', async () => {
      logs.length = 0;
      const src = source('fx_many', { count: -1, block: 1000 }, { BUFFER_LENGTH: '256' });
      const rows = await collect(src, (r) => r.length >= 5000);
      await src.stop();
      const s = src.stats()!;
      assert.equal(rows.length, s.in, 'every accepted message reached JS');
      rows.forEach((r, i) => assert.equal(r.seq, i));
      await until(() => logs.includes(`acked ${s.in}`), `the plugin to report acked ${s.in} (got: ${logs.join('; ')})`);
    });

    it('refuses decreasing offsets, taking nothing', async () => {
      logs.length = 0;
      const src = source('fx_many', { count: 0, bad: 1 });
      await src.start(() => undefined, () => undefined);
      await src.stop();
      await until(() => logs.includes('bad offsets: status 1, accepted 0'), `the refusal (got: ${logs.join('; ')})`);
      assert.equal(src.stats()!.in, 0);
    });
  });

  describe('native source lifecycle', { skip: mode === 'process' && 'counts the addon\'s own instances: in-process only' }, () => {
    it('10,000 open/push/close cycles leave no source, thread, queued item or lent buffer behind', async (t) => {
      const cycle = async (i: number) => {
        // Turns: one message pushed in open, a batch push from run, and the plugin's own thread.
        const [type, config] = i % 3 === 0 ? ['fx_seq', { count: 1, inopen: 1 }] : i % 3 === 1 ? ['fx_many', { count: 1 }] : ['fx_threads', { threads: 1, count: 1 }];
        const src = source(type, config);
        const rows: Row[] = [];
        await src.start((r) => rows.push(...r), () => undefined);
        await until(() => rows.length === 1, `cycle ${i}: the row of ${type}`);
        await src.stop();
        assert.equal(rows.length, 1);
      };
      const before = await settledIoLive();
      assert.deepEqual(before, NOTHING_LIVE, 'nothing live before the cycles');
      const rss0 = rssMb();
      for (let i = 0; i < 10000; i++) await cycle(i);
      const live = await settledIoLive();
      t.diagnostic(`RSS ${rss0.toFixed(1)} -> ${rssMb().toFixed(1)} MB over 10,000 cycles (information only)`);
      assert.deepEqual(live, NOTHING_LIVE, 'every source, its thread, queue and lent buffers are gone');
    });
  });
});
