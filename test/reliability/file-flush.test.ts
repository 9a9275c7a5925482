/**
 * The file sink's flush policy against kill -9 of a real host: with "batch" and "fsync" every row the
 * sink reported delivered is in the file after the crash; with the default "interval" (a long one
 * here) the rows still buffered are lost, which is what the policy exists to prevent.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { startHostProcess } from '../helpers/host-process.js';
import { freePort, waitFor } from './helpers.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-flush-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const lines = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);

describe('file sink flush policy across kill -9', { timeout: 60_000 }, () => {
  it('batch and fsync lose nothing delivered; interval loses what was buffered', async () => {
    const data = path.join(root, 'data');
    const mqttPort = await freePort();
    const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', String(mqttPort)] });
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
    try {
      assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM s (n bigint) WITH (DATASOURCE="in/rows", FORMAT="json")' })).status, 201);
      for (const flush of ['batch', 'fsync', 'interval']) {
        const r = await host.api('POST', '/rules', { id: flush, sql: 'SELECT n FROM s', actions: [{ file: { path: `out/${flush}.jsonl`, flush, interval: 60_000 } }] });
        assert.equal(r.status, 201, r.text);
      }
      for (let n = 0; n < 300; n++) await pub.publishAsync('in/rows', JSON.stringify({ n }), { qos: 1 });
      for (const id of ['batch', 'fsync', 'interval'])
        await waitFor(`${id} delivered 300`, async () => (await host.api('GET', `/rules/${id}/status`)).body.sinks[0].recordsOut === 300);
      await host.kill('SIGKILL');
      const want = Array.from({ length: 300 }, (_, n) => JSON.stringify({ n }));
      assert.deepEqual(lines(path.join(data, 'out/batch.jsonl')), want);
      assert.deepEqual(lines(path.join(data, 'out/fsync.jsonl')), want);
      assert.ok(lines(path.join(data, 'out/interval.jsonl')).length < 300, 'the interval policy still held rows in memory');
    } finally {
      await pub.endAsync();
      await host.stop();
    }
  });

  it('refuses an unknown flush policy', async () => {
    const { createSink } = await import('../../src/connectors/index.js');
    assert.throws(() => createSink('file', { path: 'x.jsonl', flush: 'sometimes' }), { code: 'E_CONNECTOR_CONFIG' });
  });
});
