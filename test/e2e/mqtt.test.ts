/**
 * End to end over real MQTT: a broker (the embedded aedes broker on port 0, and Mosquitto when it is on
 * the PATH), the native sample plugins through PluginRegistry, mqtt.js publishing the inputs, results
 * read back from MQTT and from the file sink, and a service restart on the same data directory.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { aedesKind, mosquittoKind, type TestBroker } from '../connectors/helpers.js';
import { openService, sampleRegistry, tempDir, waitFor, WORDS, WORD_COUNTS } from '../rules/helpers.js';
import type { PluginRegistry } from '../../src/plugins/registry.js';

async function subscriber(url: string, topic: string) {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const msgs: unknown[] = [];
  client.on('message', (_t, payload) => msgs.push(JSON.parse(payload.toString())));
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, msgs };
}

async function publishAll(url: string, topic: string, payloads: unknown[]) {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  for (const p of payloads) await client.publishAsync(topic, JSON.stringify(p), { qos: 1 });
  await client.endAsync();
}

const readLines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);

for (const kind of [aedesKind, mosquittoKind]) {
  describe(`rules end to end over MQTT: ${kind.name}`, { skip: kind.skip }, () => {
    let broker: TestBroker;
    let reg: PluginRegistry;
    before(async () => {
      broker = await kind.start();
      reg = await sampleRegistry();
    });
    after(async () => {
      reg?.unloadAll();
      await broker?.close();
    });

    it('accumulateWordCount gives 3, 6, 8, 16, 20, 25, 27, 30 to MQTT and to a file; a count window with native functions gives exact sums', async () => {
      const dir = tempDir('e2e-mqtt');
      const o = openService(dir, reg, { url: broker.url });
      const wcOut = await subscriber(broker.url, 'out/wc');
      const winOut = await subscriber(broker.url, 'out/win');
      try {
        o.service.createStream('CREATE STREAM words (words string) WITH (DATASOURCE="in/words", FORMAT="json")');
        o.service.createStream('CREATE STREAM sensors (id bigint, t float) WITH (DATASOURCE="in/sensors/+")');
        let r = await o.service.createRule({
          id: 'wc',
          sql: 'SELECT accumulateWordCount(words, ",") AS wc FROM words',
          actions: [{ mqtt: { topic: 'out/wc', sendSingle: true } }, { file: { path: 'out/wc.jsonl', interval: 0 } }],
        });
        assert.equal(r.status, 'running', r.message);
        r = await o.service.createRule({
          id: 'win',
          sql: 'SELECT countPlusOne(t) AS c, sum(scale(t, 2.0)) AS s, max(echo(t)) AS top FROM sensors WHERE t > 0 GROUP BY COUNTWINDOW(4)',
          actions: [{ mqtt: { topic: 'out/win' } }, { file: { path: 'out/win.jsonl', interval: 0 } }],
        });
        assert.equal(r.status, 'running', r.message);

        await publishAll(broker.url, 'in/words', WORDS.map((words) => ({ words })));
        await waitFor('8 word counts on MQTT', () => wcOut.msgs.length === 8);
        assert.deepEqual(wcOut.msgs, WORD_COUNTS.map((wc) => ({ wc })));

        const ts = [1.5, -3, 2, 4, 10, 0.25, 7, 3, 5];
        await publishAll(broker.url, 'in/sensors/a', ts.map((t, i) => ({ id: i, t })));
        await waitFor('2 count windows', () => winOut.msgs.length === 2);
        // as in eKuiper, the count window takes 4 rows as they come and WHERE then filters each window:
        // [1.5, -3, 2, 4] → [1.5, 2, 4]; [10, 0.25, 7, 3] → all four
        assert.deepEqual(winOut.msgs, [[{ c: 4, s: 15, top: 4 }], [{ c: 5, s: 40.5, top: 10 }]]);

        await o.service.stopRule('wc');
        await o.service.stopRule('win');
        assert.deepEqual(readLines(path.join(dir, 'out/wc.jsonl')), WORD_COUNTS.map((wc) => ({ wc })));
        assert.deepEqual(readLines(path.join(dir, 'out/win.jsonl')), [{ c: 4, s: 15, top: 4 }, { c: 5, s: 40.5, top: 10 }]);
        const st = o.service.ruleStatus('win');
        assert.equal(st.status, 'stopped');
        assert.equal(st.operators.find((op) => op.name === 'filter')?.recordsOut, 7); // of the 8 rows in the two windows
      } finally {
        await wcOut.client.endAsync();
        await winOut.client.endAsync();
        await o.close();
      }
    });

    it('a time window closes on its timer; after a restart on the same data directory the rules run again', async () => {
      const dir = tempDir('e2e-restart');
      let o = openService(dir, reg, { url: broker.url });
      const out = await subscriber(broker.url, 'out/tw');
      try {
        o.service.createStream('CREATE STREAM m (v float) WITH (DATASOURCE="in/tw")');
        await o.service.createRule({
          id: 'tw',
          sql: 'SELECT count(*) AS n, sum(scale(v, 10.0)) AS s FROM m GROUP BY TUMBLINGWINDOW(ms, 300)',
          actions: [{ mqtt: { topic: 'out/tw', sendSingle: true } }],
        });
        await publishAll(broker.url, 'in/tw', [{ v: 1 }, { v: 2 }]);
        const total = () => (out.msgs as { n: number; s: number }[]).reduce((a, m) => ({ n: a.n + m.n, s: a.s + m.s }), { n: 0, s: 0 });
        await waitFor('the window(s) of the first two rows', () => total().n === 2);
        assert.equal(total().s, 30);

        await o.close();
        o = openService(dir, reg, { url: broker.url });
        const report = await o.service.restore();
        assert.deepEqual(report.started, ['tw']);
        await publishAll(broker.url, 'in/tw', [{ v: 4 }]);
        await waitFor('a window after the restart', () => total().n === 3);
        assert.equal(total().s, 70);
        assert.equal(o.service.ruleStatus('tw').source?.state, 'connected');
      } finally {
        await out.client.endAsync();
        await o.close();
      }
    });
  });
}
