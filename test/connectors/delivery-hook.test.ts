/**
 * The delivery hook acknowledging sources rely on (EmitMeta.onDelivered → SourceHub →
 * RunningRule.settled → SinkRunner.settled → sink.flush): settled() resolves only once the rows are
 * where the sink puts them (for the file sink: in the file, though its own flush timer is an hour
 * away), says false when a message was dropped or the runner closes, and covers rows still waiting
 * for buffer space.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { createSinkRunner } from '../../src/connectors/index.js';
import { freePort, tempDir } from './helpers.js';

describe('SinkRunner.settled (the delivery hook)', () => {
  it('resolves true once the file sink wrote the rows, not when they were merely buffered', async () => {
    const file = path.join(tempDir('hook'), 'out.jsonl');
    const r = createSinkRunner('file', { path: file, interval: 3_600_000, bufferSize: 1 << 30 });
    await r.open();
    await r.collect([{ a: 1 }, { a: 2 }]);
    await r.collect([{ a: 3 }]);
    assert.equal(await r.settled(), true);
    assert.equal(readFileSync(file, 'utf8'), '{"a":1}\n{"a":2}\n{"a":3}\n');
    await r.close();
  });

  it('counts messages still waiting for buffer space (bufferLength 1)', async () => {
    const file = path.join(tempDir('hook'), 'out.jsonl');
    const r = createSinkRunner('file', { path: file, interval: 3_600_000, bufferLength: 1, sendSingle: true });
    await r.open();
    void r.collect(Array.from({ length: 50 }, (_, i) => ({ i })));
    assert.equal(await r.settled(), true);
    assert.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 50);
    await r.close();
  });

  it('resolves false when a message was dropped (sink down, no retries), true again once it delivers', async () => {
    const port = await freePort();
    const r = createSinkRunner('rest', { url: `http://127.0.0.1:${port}/x`, retryCount: 0 });
    await r.open();
    await r.collect([{ a: 1 }]);
    assert.equal(await r.settled(), false);
    const srv = http.createServer((req, res) => req.resume().on('end', () => res.end('ok')));
    await new Promise<void>((ok) => srv.listen(port, '127.0.0.1', () => ok()));
    try {
      await r.collect([{ a: 2 }]);
      assert.equal(await r.settled(), true);
    } finally {
      await r.close();
      srv.close();
    }
  });

  it('resolves false once the runner is closing (rows can no longer be accepted)', async () => {
    const r = createSinkRunner('nop', {});
    await r.open();
    const closing = r.close();
    assert.equal(await r.settled(), false);
    await closing;
  });
});
