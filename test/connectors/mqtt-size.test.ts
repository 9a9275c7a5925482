/**
 * maxMessageSize of the MQTT source, against real brokers (embedded aedes; Mosquitto when present):
 * an oversized message is counted as an error and skipped unbuffered, QoS 1 and 2 ones are still
 * acknowledged (the broker does not redeliver them forever), and the messages around it arrive.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { createSource, type Row } from '../../src/connectors/index.js';
import { MqttSizeFilter } from '../../src/connectors/mqtt/size-limit.js';
import { aedesKind, mosquittoKind, waitFor, type TestBroker } from './helpers.js';

for (const kind of [aedesKind, mosquittoKind]) {
  describe(`mqtt source maxMessageSize against ${kind.name}`, { skip: kind.skip }, () => {
    let broker: TestBroker;
    before(async () => {
      broker = await kind.start();
    });
    after(async () => {
      await broker?.close();
    });

    for (const qos of [0, 1, 2] as const) {
      it(`QoS ${qos}: an oversized message is an error, not a row, and the next ones arrive`, async () => {
        const src = createSource('mqtt', `big/${qos}`, { server: broker.url, qos, maxMessageSize: 1024 }, { ruleId: `size${qos}` });
        const rows: Row[] = [];
        await src.start((r) => rows.push(...r), () => undefined);
        const pub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
        try {
          await pub.publishAsync(`big/${qos}`, '{"n":1}', { qos });
          await pub.publishAsync(`big/${qos}`, JSON.stringify({ n: 2, pad: 'x'.repeat(2 * 1024 * 1024) }), { qos });
          await pub.publishAsync(`big/${qos}`, '{"n":3}', { qos });
          await waitFor('the last small message', () => rows.some((r) => r.n === 3));
          assert.deepEqual(rows.map((r) => r.n), [1, 3]);
          const m = src.metrics!();
          assert.equal(m.messagesIn, 3);
          assert.equal(m.decodeErrors, 1);
          assert.match(m.lastDecodeError ?? '', /larger than maxMessageSize 1024/);
          assert.equal(m.tooLarge, 1);
        } finally {
          await pub.endAsync();
          await src.stop();
        }
      });
    }
  });
}

describe('MqttSizeFilter framing', () => {
  it('passes small packets byte-exact in any chunking and skips a large PUBLISH, acking QoS 1', () => {
    const publish = (qos: number, topic: string, id: number, payload: Buffer) => {
      const t = Buffer.from(topic);
      const vh = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, qos ? Buffer.from([id >> 8, id & 0xff]) : Buffer.alloc(0)]);
      const len = vh.length + payload.length;
      const varint: number[] = [];
      let x = len;
      do {
        let b = x % 128;
        x = Math.floor(x / 128);
        if (x > 0) b |= 0x80;
        varint.push(b);
      } while (x > 0);
      return Buffer.concat([Buffer.from([0x30 | (qos << 1), ...varint]), vh, payload]);
    };
    const small = publish(0, 'a', 0, Buffer.from('hello'));
    const big = publish(1, 'topic/x', 0x1234, Buffer.alloc(300_000, 7));
    const pingresp = Buffer.from([0xd0, 0x00]);
    const stream = Buffer.concat([small, big, pingresp, small]);
    for (const size of [1, 2, 3, 7, 64, 4096, stream.length]) {
      const out: Buffer[] = [];
      const acks: Buffer[] = [];
      const sizes: number[] = [];
      const f = new MqttSizeFilter(1000, (b) => out.push(Buffer.from(b)), (n) => sizes.push(n), (b) => acks.push(b));
      for (let i = 0; i < stream.length; i += size) f.push(stream.subarray(i, i + size));
      assert.deepEqual(Buffer.concat(out), Buffer.concat([small, pingresp, small]), `chunk size ${size}`);
      assert.deepEqual(sizes, [big.length - 4]);
      assert.deepEqual(acks, [Buffer.from([0x40, 0x02, 0x12, 0x34])]);
    }
  });
});
