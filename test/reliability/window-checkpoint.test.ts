/**
 * At-least-once windows across a crash: a rule with qos 1 checkpoints the rows its window holds; the
 * host is killed -9 in the middle of a tumbling window, started again, and the rest of the rows
 * arrive (over MQTT, through a persistent session); the window's result equals the uninterrupted one.
 * Without qos the same crash loses the rows before it. Plus the journal's own contract, in process.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { startHostProcess } from '../helpers/host-process.js';
import { freePort, waitFor } from './helpers.js';
import { JournaledWindow } from '../../src/engine/window-checkpoint.js';
import { createWindow } from '../../src/engine/windows.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-wincp-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const WINDOW_S = 30;

describe('window checkpoints', { timeout: 150_000 }, () => {
  it('a journaled window snapshots exactly the rows it holds and restores them into a fresh one', () => {
    const spec = { type: 'hopping', size: 10, hop: 5, unit: 'SS', pos: 0 } as const;
    const a = new JournaledWindow(createWindow(spec as never));
    a.push([{ n: 1 }], 1000);
    a.push([{ n: 2 }, { n: 3 }], 6000);
    const emitted = a.advance(10_000);
    assert.equal(emitted.length, 1);
    a.push([{ n: 4 }], 11_000);
    a.advance(15_000); // the window [5s, 15s) closes; row 1 is no longer held by any open window
    const snap = a.snapshot();
    assert.deepEqual(snap.entries.map((e) => e.row.n), [2, 3, 4].slice(3 - a.buffered()));
    const b = new JournaledWindow(createWindow(spec as never));
    assert.equal(b.restore(JSON.parse(JSON.stringify(snap))), snap.entries.length);
    assert.deepEqual(b.advance(20_000), a.advance(20_000), 'the restored window emits what the original does');
  });

  it('kill -9 mid-window with qos 1: the result equals the uninterrupted one; qos 0 loses the rows before the crash', async () => {
    const mqttPort = await freePort();
    const data = path.join(root, 'data');
    const args = ['--mqtt-port', String(mqttPort)];
    let host = await startHostProcess({ dataDir: data, args });
    try {
      assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM s (n bigint) WITH (DATASOURCE="in/rows")' })).status, 201);
      const sql = `SELECT count(*) AS c, sum(n) AS s FROM s GROUP BY TUMBLINGWINDOW(ss, ${WINDOW_S})`;
      for (const [id, qos] of [['q1', 1], ['q0', 0]] as const) {
        const r = await host.api('POST', '/rules', { id, sql, actions: [{ file: { path: `out/${id}.jsonl`, flush: 'batch' } }], options: { qos, checkpointInterval: 100 } });
        assert.equal(r.status, 201, r.text);
      }
      // Start near the beginning of a window so that the crash and the restart fall inside it.
      while (Date.now() % (WINDOW_S * 1000) > 1000) await sleep(100);
      const windowEnd = Math.floor(Date.now() / (WINDOW_S * 1000)) * WINDOW_S * 1000 + WINDOW_S * 1000;
      let pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
      const published = Date.now();
      for (let n = 1; n <= 20; n++) await pub.publishAsync('in/rows', JSON.stringify({ n }), { qos: 1 });
      await pub.endAsync();
      await waitFor('q1 took 20 rows', async () => (await host.api('GET', '/rules/q1/status')).body.operators.find((o: { name: string }) => o.name === 'window').recordsIn === 20);
      // checkpointInterval is 100 ms: after a few of them the window's 20 rows are saved (a save happens
      // only when the window changed, so checkpointAt is that of the last change).
      await sleep(600);
      assert.ok(((await host.api('GET', '/rules/q1/status')).body.checkpointAt ?? 0) > published, 'a checkpoint after the rows');
      await host.kill('SIGKILL');
      host = await startHostProcess({ dataDir: data, args });
      assert.ok(Date.now() < windowEnd, 'the crash and the restart stayed inside one window (the machine was too slow: rerun)');
      assert.match(host.stdout(), /rule q1: 20 window row\(s\) restored/);
      pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
      for (let n = 21; n <= 30; n++) await pub.publishAsync('in/rows', JSON.stringify({ n }), { qos: 1 });
      await pub.endAsync();
      assert.ok(Date.now() < windowEnd, 'the test stayed inside one window (the machine was too slow: rerun)');
      const read = (id: string) => {
        const f = path.join(data, 'out', `${id}.jsonl`);
        return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
      };
      await waitFor('both windows closed', () => read('q1').length === 1 && read('q0').length === 1, WINDOW_S * 1000 + 10_000);
      assert.deepEqual(read('q1'), [{ c: 30, s: 465 }], 'uninterrupted: 30 rows, sum 465');
      assert.deepEqual(read('q0'), [{ c: 10, s: 255 }], 'without qos the rows before the crash are gone');
    } finally {
      await host.stop();
    }
  });
});
