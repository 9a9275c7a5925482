/**
 * Limits: a message over the source's maxMessageSize (a real 10 MB MQTT message through a real host)
 * is dropped and counted, and the rows around it flow; a time window past maxWindowRows refuses the
 * rest of its rows as window errors; a COUNTWINDOW larger than the bound and a bad option are refused.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { startHostProcess } from '../helpers/host-process.js';
import { freePort, waitFor } from './helpers.js';
import { compileRule, parseStreamDef, type Row } from '../../src/engine/index.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-limits-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe('limits', { timeout: 60_000 }, () => {
  it('maxMessageSize: a 10 MB MQTT message is dropped and counted, the others pass; the default is 1 MiB', async () => {
    const mqttPort = await freePort();
    const host = await startHostProcess({ dataDir: path.join(root, 'mqtt'), args: ['--mqtt-port', String(mqttPort)] });
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
    try {
      assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM small (n bigint) WITH (DATASOURCE="in/small", MAXMESSAGESIZE="100")' })).status, 201);
      assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM dflt (n bigint) WITH (DATASOURCE="in/dflt")' })).status, 201);
      for (const s of ['small', 'dflt']) assert.equal((await host.api('POST', '/rules', { id: s, sql: `SELECT n FROM ${s}`, actions: [{ nop: {} }] })).status, 201);
      await pub.publishAsync('in/small', JSON.stringify({ n: 1 }), { qos: 1 });
      await pub.publishAsync('in/small', JSON.stringify({ n: 2, pad: 'x'.repeat(200) }), { qos: 1 });
      await pub.publishAsync('in/small', JSON.stringify({ n: 3 }), { qos: 1 });
      await pub.publishAsync('in/dflt', JSON.stringify({ n: 1, pad: 'x'.repeat(10 * 1024 * 1024) }), { qos: 1 });
      await pub.publishAsync('in/dflt', JSON.stringify({ n: 2, pad: 'x'.repeat(1000 * 1024) }), { qos: 1 });
      await waitFor('small: 3 messages', async () => (await host.api('GET', '/rules/small/status')).body.source.messagesIn === 3);
      await waitFor('dflt: 2 messages', async () => (await host.api('GET', '/rules/dflt/status')).body.source.messagesIn === 2);
      const small = (await host.api('GET', '/rules/small/status')).body;
      assert.deepEqual([small.source.rowsOut, small.source.decodeErrors, small.source.tooLarge], [2, 1, 1]);
      assert.match(small.source.lastDecodeError, /larger than maxMessageSize 100/);
      assert.equal(small.sinks[0].recordsIn, 2);
      const dflt = (await host.api('GET', '/rules/dflt/status')).body;
      assert.deepEqual([dflt.source.rowsOut, dflt.source.tooLarge], [1, 1], 'the 10 MB message is refused, the 1000 KiB one passes');
    } finally {
      await pub.endAsync();
      await host.stop();
    }
  });

  it('maxWindowRows: a full time window refuses and counts the rest; a too large COUNTWINDOW does not compile', () => {
    const def = parseStreamDef('CREATE STREAM s (n bigint) WITH (DATASOURCE="x")');
    const results: Row[][] = [];
    const errors: string[] = [];
    const rt = compileRule('w', 'SELECT count(*) AS c, sum(n) AS s FROM s GROUP BY TUMBLINGWINDOW(ss, 10)', {
      streams: () => def,
      onResult: (rows) => results.push(rows),
      onError: (e) => errors.push(e.code),
      maxWindowRows: 5,
    });
    rt.push([{ n: 1 }, { n: 2 }, { n: 3 }], 1000);
    rt.push([{ n: 4 }, { n: 5 }, { n: 6 }, { n: 7 }], 2000);
    rt.push([{ n: 8 }], 3000);
    rt.tick(10_000);
    assert.deepEqual(results, [[{ c: 5, s: 15 }]]);
    const win = rt.metrics().find((o) => o.name === 'window')!;
    assert.equal(win.exceptions, 2);
    assert.equal(win.lastError?.code, 'E_WINDOW_FULL');
    assert.deepEqual(errors, ['E_WINDOW_FULL', 'E_WINDOW_FULL']);
    // The next window starts empty.
    rt.push([{ n: 100 }], 11_000);
    rt.tick(20_000);
    assert.deepEqual(results[1], [{ c: 1, s: 100 }]);
    rt.close();
    assert.throws(() => compileRule('c', 'SELECT count(*) FROM s GROUP BY COUNTWINDOW(10)', { streams: () => def, maxWindowRows: 5 }), /maxWindowRows/);
  });

  it('maxWindowRows is checked as a rule option', async () => {
    const host = await startHostProcess({ dataDir: path.join(root, 'opt'), args: ['--mqtt-port', '0'] });
    try {
      assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="t")' })).status, 201);
      const bad = await host.api('POST', '/rules', { id: 'b', sql: 'SELECT * FROM s', actions: [{ nop: {} }], options: { maxWindowRows: 0 } });
      assert.equal(bad.status, 400);
      assert.match(bad.body.message, /maxWindowRows/);
      const big = await host.api('POST', '/rules', { id: 'c', sql: 'SELECT count(*) AS c FROM s GROUP BY COUNTWINDOW(50)', actions: [{ nop: {} }], options: { maxWindowRows: 10 } });
      assert.equal(big.status, 400);
      assert.match(big.body.message, /COUNTWINDOW\(50\).*maxWindowRows/);
    } finally {
      await host.stop();
    }
  });
});
