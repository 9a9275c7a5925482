/**
 * Named configs (etc/<type>_source.json) are layered default ← CONF_KEY entry ← the connector's own
 * properties, with names matched case-insensitively: a stream's upper-case WITH options must win over
 * the file's camelCase keys (they once sat side by side and the file's won).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PropReader, resolveMqttProps } from '../../src/connectors/index.js';
import { readNatsSourceOptions } from '../../src/connectors/nats/source.js';
import { tempDir } from './helpers.js';

describe('named configs', () => {
  const dir = tempDir('named');
  fs.mkdirSync(path.join(dir, 'etc'));
  fs.writeFileSync(path.join(dir, 'etc', 'mqtt_source.json'), JSON.stringify({ default: { server: 'tcp://h:1883', qos: 1 }, other: { qos: 2, clientId: 'c' } }));
  fs.writeFileSync(path.join(dir, 'etc', 'nats_source.json'), JSON.stringify({ default: { server: 'nats://h:4222', stream: 'A', durable: 'AD', ackWait: 9000 }, b: { stream: 'B' } }));

  it('stream options override the file whatever their case', () => {
    const p = new PropReader('t', resolveMqttProps({ QOS: '0', CONF_KEY: 'other' }, { dataDir: dir }, 't'));
    assert.equal(p.number('qos'), 0);
    assert.equal(p.string('clientId'), 'c');
    assert.equal(p.string('server'), 'tcp://h:1883');
    const n = readNatsSourceOptions('b.in', { STREAM: 'S2', DURABLE: 'D2', CONF_KEY: 'default' }, { dataDir: dir });
    assert.equal(n.js?.stream, 'S2');
    assert.equal(n.js?.durable, 'D2');
    assert.equal(n.js?.ackWaitMs, 9000);
  });

  it('the CONF_KEY entry overrides default, and nats_source.json is read like mqtt_source.json', () => {
    const n = readNatsSourceOptions('b.in', { CONF_KEY: 'b' }, { dataDir: dir });
    assert.equal(n.js?.stream, 'B');
    assert.equal(n.js?.durable, 'AD');
    assert.deepEqual(n.connection.servers, ['nats://h:4222']);
  });
});
