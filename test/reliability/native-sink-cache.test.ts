/**
 * The sink cache in front of a native sink plugin (test/io/fixtures/iofx.c, built from plugin.h here):
 * with enableCache the plugin's worker tries each batch once and reports whether it was taken, so a
 * sink that answers SP_RETRY for a while sends the rows to the runner's cache, and they are resent in
 * order once it takes them again: every row arrives once, in order. Without the cache the worker's
 * own retries apply as before (rows beyond them are dropped and counted).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { openService, publish, tempDir, waitFor, type Opened } from '../rules/helpers.js';
import { buildIoFx } from '../io/fixtures.js';

const N = 60;

describe('sink cache with a native sink plugin', { timeout: 60_000 }, () => {
  let reg: PluginRegistry;
  let o: Opened;
  let dir: string;
  before(async () => {
    reg = new PluginRegistry({ onLog: () => undefined });
    await reg.load(buildIoFx());
    dir = tempDir('native-sink-cache');
    o = openService(dir, reg);
  });
  after(async () => {
    await o?.close();
    reg?.unloadAll();
  });

  const lines = (file: string) =>
    fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { n: number }).n) : [];

  it('a sink that fails (SP_RETRY) then recovers: every row delivered once, in order, through the cache', async () => {
    o.service.createStream('CREATE STREAM c1 () WITH (TYPE="memory", DATASOURCE="nsc/one")');
    const file = path.join(dir, 'cached.jsonl');
    // The first 8 collects answer SP_RETRY: the first message fails, goes to the cache, and so does
    // everything behind it until the resends get through.
    const r = await o.service.createRule({
      id: 'cached',
      sql: 'SELECT * FROM c1',
      actions: [{ fx_sink: { path: file, retries: 8, enableCache: true, memoryCacheThreshold: 16, bufferPageSize: 4, resendInterval: 20, retryInterval: 20 } }],
    });
    assert.equal(r.status, 'running', r.message);
    for (let n = 0; n < N; n++) {
      publish('nsc/one', [{ n }]);
      if (n % 10 === 9) await new Promise((res) => setTimeout(res, 30)); // separate messages, some during the outage
    }
    await waitFor('every row in the file', () => lines(file).length >= N);
    await new Promise((res) => setTimeout(res, 200)); // a duplicate would arrive now
    assert.deepEqual(lines(file), Array.from({ length: N }, (_, i) => i), 'once each, in order');
    const sink = o.service.ruleStatus('cached').sinks[0];
    assert.ok(sink.cachedTotal > 0, `the outage went through the cache: ${JSON.stringify(sink)}`);
    assert.ok(sink.resent > 0, JSON.stringify(sink));
    assert.equal(sink.droppedRecords, 0, JSON.stringify(sink));
    assert.equal(sink.recordsOut, N, JSON.stringify(sink));
    assert.equal(sink.cached, 0);
  });

  it('without the cache the worker retries on its own and drops after maxRetries, counted', async () => {
    o.service.createStream('CREATE STREAM c2 () WITH (TYPE="memory", DATASOURCE="nsc/two")');
    const file = path.join(dir, 'plain.jsonl');
    await o.service.createRule({ id: 'plain', sql: 'SELECT * FROM c2', actions: [{ fx_sink: { path: file, retries: 3, maxRetries: 1, retryBackoff: 5 } }] });
    publish('nsc/two', [{ n: 0 }]);
    await new Promise((res) => setTimeout(res, 200));
    publish('nsc/two', [{ n: 1 }]);
    await waitFor('row 1', () => lines(file).includes(1));
    // Batch 0: 2 attempts (SP_RETRY twice), dropped; batch 1: one more SP_RETRY, then taken.
    assert.deepEqual(lines(file), [1]);
  });
});
