/**
 * MQTT source and sink against real brokers: the embedded aedes broker always, and Mosquitto when it
 * is on the PATH. Real mqtt.js clients on the other side publish and receive.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { createSource, createSinkRunner, type ConnectorStatus, type Row } from '../../src/connectors/index.js';
import { aedesKind, freePort, mosquittoKind, tempDir, waitFor, type TestBroker } from './helpers.js';

interface Got {
  rows: Row[];
  topic?: string;
}

function recorder() {
  const got: Got[] = [];
  const statuses: ConnectorStatus[] = [];
  return {
    got,
    statuses,
    emit: (rows: Row[], meta?: { topic?: string; ts: number }) => {
      assert.equal(typeof meta?.ts, 'number');
      got.push({ rows, topic: meta?.topic });
    },
    onStatus: (s: ConnectorStatus) => statuses.push(s),
  };
}

async function subscriber(url: string, filter: string) {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const msgs: { topic: string; payload: string; retain: boolean }[] = [];
  client.on('message', (topic, payload, packet) => msgs.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, msgs };
}

for (const kind of [aedesKind, mosquittoKind]) {
  describe(`mqtt connectors against ${kind.name}`, { skip: kind.skip }, () => {
    let broker: TestBroker;
    before(async () => {
      broker = await kind.start();
    });
    after(async () => {
      await broker?.close();
    });

    it('source receives what a client publishes, through wildcard filters, and counts bad JSON', async () => {
      const src = createSource('mqtt', 'sensors/+/temp, alerts/#', { server: broker.url, qos: 1 }, { ruleId: 'r1' });
      const r = recorder();
      await src.start(r.emit, r.onStatus);
      assert.deepEqual(r.statuses.map((s) => s.state), ['connecting', 'connected']);
      const pub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      try {
        await pub.publishAsync('sensors/a/temp', '{"t":21.5}', { qos: 1 });
        await pub.publishAsync('sensors/a/hum', '{"h":40}', { qos: 1 });
        await pub.publishAsync('sensors/b/temp', 'not json', { qos: 1 });
        await pub.publishAsync('alerts/x/y', '[{"a":1},{"a":2}]', { qos: 1 });
        await pub.publishAsync('sensors/c/temp', '{"t":22}', { qos: 1 });
        await waitFor('three decoded messages', () => r.got.length >= 3);
        assert.deepEqual(r.got, [
          { rows: [{ t: 21.5 }], topic: 'sensors/a/temp' },
          { rows: [{ a: 1 }, { a: 2 }], topic: 'alerts/x/y' },
          { rows: [{ t: 22 }], topic: 'sensors/c/temp' },
        ]);
        const m = src.metrics!();
        assert.equal(m.messagesIn, 4);
        assert.equal(m.rowsOut, 4);
        assert.equal(m.decodeErrors, 1);
        assert.match(m.lastDecodeError ?? '', /not JSON/);
      } finally {
        await pub.endAsync();
        await src.stop();
      }
      assert.equal(r.statuses.at(-1)?.state, 'stopped');
    });

    it('sink publishes what a client receives: sendSingle rows and a templated batch', async () => {
      const sub = await subscriber(broker.url, 'out/#');
      const single = createSinkRunner('mqtt', { server: broker.url, topic: 'out/single', qos: 1, sendSingle: true });
      const batch = createSinkRunner('mqtt', { server: broker.url, topic: 'out/batch', qos: 1, dataTemplate: '{{range .}}{{.a}};{{end}}' });
      try {
        await single.open();
        await batch.open();
        await single.collect([{ a: 1 }, { a: 2, b: 'x' }]);
        await single.drain();
        await batch.collect([{ a: 1 }, { a: 2 }]);
        await batch.drain();
        await waitFor('three messages', () => sub.msgs.length >= 3);
        assert.deepEqual(sub.msgs, [
          { topic: 'out/single', payload: '{"a":1}', retain: false },
          { topic: 'out/single', payload: '{"a":2,"b":"x"}', retain: false },
          { topic: 'out/batch', payload: '1;2;', retain: false },
        ]);
        assert.deepEqual(
          [single.metrics().recordsOut, single.metrics().messagesOut, single.metrics().exceptions],
          [2, 2, 0],
        );
      } finally {
        await single.close();
        await batch.close();
        await sub.client.endAsync();
      }
    });

    it('sink retained flag: a client subscribing later gets the retained message, not the plain one', async () => {
      const kept = createSinkRunner('mqtt', { server: broker.url, topic: 'state/dev1', qos: 1, retained: true, sendSingle: true });
      const plain = createSinkRunner('mqtt', { server: broker.url, topic: 'state/dev2', qos: 1, sendSingle: true });
      await kept.open();
      await plain.open();
      await kept.collect([{ on: true }]);
      await plain.collect([{ on: false }]);
      await kept.drain();
      await plain.drain();
      const sub = await subscriber(broker.url, 'state/#');
      try {
        await sub.client.publishAsync('state/marker', '{}', { qos: 1 });
        await waitFor('the marker', () => sub.msgs.some((m) => m.topic === 'state/marker'));
        assert.deepEqual(sub.msgs, [
          { topic: 'state/dev1', payload: '{"on":true}', retain: true },
          { topic: 'state/marker', payload: '{}', retain: false },
        ]);
      } finally {
        await sub.client.endAsync();
        await kept.close();
        await plain.close();
      }
    });

    it('CONF_KEY picks a named connection from <data>/etc/mqtt_source.json over its default', async () => {
      const dataDir = tempDir('mqttconf');
      mkdirSync(path.join(dataDir, 'etc'));
      // The default points nowhere useful; only the named entry reaches the broker.
      writeFileSync(
        path.join(dataDir, 'etc', 'mqtt_source.json'),
        JSON.stringify({ default: { server: 'tcp://127.0.0.1:1', qos: 0 }, local: { server: broker.url, qos: 1 } }),
      );
      assert.throws(() => createSource('mqtt', 'conf/t', { CONF_KEY: 'nope' }, { dataDir }), { code: 'E_CONNECTOR_CONFIG' });
      const src = createSource('mqtt', 'conf/t', { CONF_KEY: 'local', FORMAT: 'json' }, { dataDir });
      const r = recorder();
      await src.start(r.emit, r.onStatus);
      assert.equal(r.statuses.at(-1)?.state, 'connected');
      const pub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      await pub.publishAsync('conf/t', '{"ok":1}', { qos: 1 });
      await waitFor('the message', () => r.got.length === 1);
      assert.deepEqual(r.got, [{ rows: [{ ok: 1 }], topic: 'conf/t' }]);
      await pub.endAsync();
      await src.stop();
    });

    it('source and sink reconnect after the broker restarts; the sink retries the message it could not send', async () => {
      const src = createSource('mqtt', 'rc/in', { server: broker.url, qos: 1, reconnectPeriod: 100 });
      const r = recorder();
      await src.start(r.emit, r.onStatus);
      const sink = createSinkRunner('mqtt', {
        server: broker.url, topic: 'rc/out', qos: 1, retained: true, sendSingle: true,
        reconnectPeriod: 100, retryCount: 1000, retryInterval: 20,
      });
      await sink.open();
      try {
        await broker.down();
        await waitFor('source reconnecting', () => r.statuses.some((s) => s.state === 'reconnecting'));
        await sink.collect([{ n: 1 }]);
        await waitFor('a failed send while the broker is down', () => sink.metrics().exceptions > 0);
        const seen = r.statuses.length;
        await broker.up();
        await waitFor('source connected again', () => r.statuses.slice(seen).some((s) => s.state === 'connected'));
        await sink.drain();
        const m = sink.metrics();
        assert.equal(m.recordsOut, 1);
        assert.equal(m.droppedMessages, 0);
        assert.match(m.lastError ?? '', /not connected/);

        const pub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
        await pub.publishAsync('rc/in', '{"n":2}', { qos: 1 });
        await waitFor('the message after restart', () => r.got.length === 1);
        assert.deepEqual(r.got, [{ rows: [{ n: 2 }], topic: 'rc/in' }]);
        await pub.endAsync();

        const sub = await subscriber(broker.url, 'rc/out');
        await waitFor('the retried message', () => sub.msgs.length === 1);
        assert.deepEqual(sub.msgs, [{ topic: 'rc/out', payload: '{"n":1}', retain: true }]);
        await sub.client.endAsync();
      } finally {
        await src.stop();
        await sink.close();
      }
    });
  });
}

describe('mqtt connectors without a broker', () => {
  it('the source starts anyway, reports the failure and keeps retrying; the sink refuses to open', async () => {
    const server = `tcp://127.0.0.1:${await freePort()}`;
    const r = recorder();
    const src = createSource('mqtt', 't', { server, reconnectPeriod: 50 });
    await src.start(r.emit, r.onStatus);
    await waitFor('a retry', () => r.statuses.some((s) => s.state === 'reconnecting'));
    assert.equal(r.statuses[0].state, 'connecting');
    assert.match(r.statuses.find((s) => s.state === 'error')?.error ?? '', /ECONNREFUSED/);
    await src.stop();
    assert.equal(r.statuses.at(-1)?.state, 'stopped');

    const sink = createSinkRunner('mqtt', { server, topic: 'x' });
    await assert.rejects(sink.open(), { code: 'E_SINK_FAILED' });
    assert.match(sink.metrics().lastError ?? '', /cannot connect/);
    await sink.close();
  });

  it('refuses bad connection properties when created', () => {
    for (const props of [{ server: 'http://x' }, { qos: 3 }, { protocolVersion: '4.0' }, { FORMAT: 'xml' }])
      assert.throws(() => createSource('mqtt', 't', props), { code: 'E_CONNECTOR_CONFIG' }, JSON.stringify(props));
    assert.throws(() => createSource('mqtt', 'a/#/b', {}), { code: 'E_CONNECTOR_CONFIG' });
    assert.throws(() => createSinkRunner('mqtt', { topic: 'a/+' }), { code: 'E_CONNECTOR_CONFIG' });
  });
});
