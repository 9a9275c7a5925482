/** Native sinks through the host: worker thread, retry with backoff, fatal errors, typed batches, close. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ISOLATION_MODES } from '../helpers/isolation.js';
import { createSink } from '../../src/connectors/index.js';
import { PluginRegistry } from '../../src/plugins/index.js';
import type { NativeSinkConnector } from '../../src/plugins/native-io.js';
import { buildIoFx, ioTmp, NOTHING_LIVE, rssMb, settledIoLive, until } from './fixtures.js';


let n = 0;
function sink(type: string, props: Record<string, unknown>): { sink: NativeSinkConnector; file: string } {
  const file = path.join(ioTmp, `out-${++n}.txt`);
  return { sink: createSink(type, { path: file, retryBackoff: 5, ...props }) as NativeSinkConnector, file };
}
const lines = (file: string): unknown[] => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const batch = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ seq: from + i, name: `r${from + i}` }));

// Every behaviour below holds in both isolation modes (src/plugins/isolated/io.ts runs io.cc in a worker).
for (const mode of ISOLATION_MODES) describe(`isolation ${mode}`, () => {
  const registry = new PluginRegistry({ onLog: () => undefined });
  before(async () => {
    await registry.load(buildIoFx(), { isolation: mode });
  });
  after(() => registry.unloadAll());

  describe('native sink', () => {
    it('delivers batches in order on its worker thread, as JSON lines', async () => {
      const { sink: s, file } = sink('fx_sink', {});
      await s.open();
      for (let i = 0; i < 50; i++) await s.collect(batch(i * 100, 100));
      await s.close();
      assert.deepEqual(lines(file), batch(0, 5000));
      const st = s.stats()!;
      assert.deepEqual([st.in, st.out, st.dropped, st.errors, st.depth], [5000, 5000, 0, 0, 0]);
    });

    it('a sink that fails N times with SP_RETRY then succeeds delivers every row, each batch at least once', async () => {
      const { sink: s, file } = sink('fx_sink', { retries: 4, maxRetries: 10 });
      await s.open();
      await s.collect(batch(0, 10));
      await s.collect(batch(10, 10));
      await s.close();
      assert.deepEqual(lines(file), batch(0, 20));
      const st = s.stats()!;
      assert.equal(st.errors, 4);
      assert.equal(st.retries, 4);
      assert.match(st.lastError, /sink fx_sink \(plugin iofx\) collect failed: busy, try later/);
      assert.equal(st.state, 'connected', 'recovered after the retries');
    });

    it('gives up on a batch after maxRetries and counts its rows as dropped', async () => {
      const { sink: s, file } = sink('fx_sink', { retries: 3, maxRetries: 2 });
      await s.open();
      await s.collect(batch(0, 7));
      await s.collect(batch(7, 5));
      await s.close();
      assert.deepEqual(lines(file), batch(7, 5));
      assert.equal(s.stats()!.dropped, 7);
    });

    it('a fatal SP_ERROR stops the sink with a clear status; later collects fail', async () => {
      const { sink: s } = sink('fx_sink', { fatalat: 2 });
      await s.open();
      await s.collect(batch(0, 3));
      await s.collect(batch(3, 3));
      await until(() => s.stats()!.finished, 'the worker to stop');
      assert.deepEqual(s.status(), { state: 'error', error: 'sink fx_sink (plugin iofx) collect failed: disk on fire' });
      await assert.rejects(s.collect(batch(6, 1)), { code: 'E_SINK_FAILED', message: /disk on fire/ });
      assert.equal(s.stats()!.dropped, 3);
      await s.close();
    });

    it('refuses a bad config through the plugin\'s validate hook', () => {
      assert.throws(() => sink('fx_sink', { retries: -1 }), { code: 'E_CONNECTOR_CONFIG', message: /sink fx_sink \(plugin iofx\) refused its configuration: retries is negative/ });
    });

    it('a slow sink does not block the JS thread; collect waits only while its queue is full', async () => {
      const { sink: s, file } = sink('fx_sink', { slowms: 30, queueLength: 2 });
      await s.open();
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      for (let i = 0; i < 8; i++) await s.collect(batch(i, 1));
      clearInterval(timer);
      assert.ok(ticks > 5, 'timers kept firing while the sink worked');
      await s.close();
      assert.equal(lines(file).length, 8);
    });

    it('typed sinks receive columns: numbers, strings, booleans, nulls, nested values as JSON', async () => {
      const { sink: s, file } = sink('fx_typed', {});
      await s.open();
      await s.collect([{ a: 1, s: 'x', b: true, o: { k: 1 } }, { a: 2.5, b: false, o: [1] }]);
      await s.close();
      assert.equal(fs.readFileSync(file, 'utf8'), 'a:3:1|2.5;\ns:4:x|null;\nb:1:1|0;\no:4:{"k":1}|[1];\n');
    });

    it('closing under load delivers everything acknowledged before close', async () => {
      const { sink: s, file } = sink('fx_sink', { queueLength: 64 });
      await s.open();
      const pending = [];
      for (let i = 0; i < 200; i++) pending.push(s.collect(batch(i * 10, 10)));
      await Promise.all(pending);
      await s.close();
      assert.equal(lines(file).length, 2000);
    });

    it('a sink slow in close is abandoned after closeTimeout: E_CLOSE_TIMEOUT, no hang', async () => {
      const { sink: s } = sink('fx_sink', { closems: 3000, closeTimeout: 150 });
      await s.open();
      await s.collect(batch(0, 1));
      const t0 = Date.now();
      await assert.rejects(s.close(), { code: 'E_CLOSE_TIMEOUT', message: /sink fx_sink \(plugin iofx\) did not finish delivering and closing within 150 ms/ });
      assert.ok(Date.now() - t0 < 2500);
    });
  });

  describe('native sink lifecycle', { skip: mode === 'process' && 'counts the addon\'s own instances: in-process only' }, () => {
    it('10,000 open/collect/close cycles leave no sink, thread or batch behind', async (t) => {
      const file = path.join(ioTmp, 'cycles.jsonl');
      const typedFile = path.join(ioTmp, 'cycles-typed.txt');
      const before = await settledIoLive();
      assert.deepEqual(before, NOTHING_LIVE, 'nothing live before the cycles');
      const rss0 = rssMb();
      for (let i = 0; i < 10000; i++) {
        // Turns: JSON lines (encoded sink) and typed columns; both append to one file each.
        const typed = i % 2 === 1;
        const s = createSink(typed ? 'fx_typed' : 'fx_sink', { path: typed ? typedFile : file }) as NativeSinkConnector;
        await s.open();
        await s.collect([{ seq: i, name: `r${i}` }]);
        await s.close();
      }
      const live = await settledIoLive();
      t.diagnostic(`RSS ${rss0.toFixed(1)} -> ${rssMb().toFixed(1)} MB over 10,000 cycles (information only)`);
      assert.deepEqual(live, NOTHING_LIVE, 'every sink, its worker thread and its batches are gone');
      assert.deepEqual(lines(file).map((r) => (r as { seq: number }).seq), Array.from({ length: 5000 }, (_, i) => 2 * i));
      assert.equal(fs.readFileSync(typedFile, 'utf8').split('\n').filter((l) => l.startsWith('seq:')).length, 5000);
    });
  });
});
