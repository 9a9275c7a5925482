/**
 * MQTT over TLS: the embedded broker serves a self-signed certificate made by openssl; the source
 * connects when given the CA (rootCaPath) or insecureSkipVerify, and reports an error otherwise.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { createSource, startEmbeddedBroker, type ConnectorStatus, type EmbeddedBroker, type Row } from '../../src/connectors/index.js';
import { tempDir, waitFor } from './helpers.js';

const dir = tempDir('tls');
const keyFile = path.join(dir, 'key.pem');
const certFile = path.join(dir, 'cert.pem');
const made = spawnSync(
  'openssl',
  ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
  { stdio: 'ignore' },
);
const skip = made.error || made.status !== 0 ? 'openssl is not available to make a test certificate' : undefined;

describe('mqtt source over TLS', { skip }, () => {
  let broker: EmbeddedBroker;
  before(async () => {
    broker = await startEmbeddedBroker({ port: 0, tls: { key: readFileSync(keyFile), cert: readFileSync(certFile) } });
  });
  after(async () => {
    await broker?.close();
  });

  async function startSource(props: Record<string, unknown>) {
    const got: Row[][] = [];
    const statuses: ConnectorStatus[] = [];
    const src = createSource('mqtt', 'secure/t', { server: `ssl://localhost:${broker.port}`, reconnectPeriod: 0, ...props });
    await src.start((rows) => got.push(rows), (s) => statuses.push(s));
    return { src, got, statuses };
  }

  async function roundTrip(props: Record<string, unknown>) {
    const { src, got, statuses } = await startSource(props);
    try {
      assert.equal(statuses.at(-1)?.state, 'connected', JSON.stringify(statuses));
      const pub = await mqtt.connectAsync(`mqtts://localhost:${broker.port}`, { ca: readFileSync(certFile), reconnectPeriod: 0 });
      await pub.publishAsync('secure/t', '{"s":1}', { qos: 1 });
      await waitFor('the message over TLS', () => got.length === 1);
      assert.deepEqual(got, [[{ s: 1 }]]);
      await pub.endAsync();
    } finally {
      await src.stop();
    }
  }

  it('connects with rootCaPath', () => roundTrip({ rootCaPath: certFile }));
  it('connects with the CA inline (ca)', () => roundTrip({ ca: readFileSync(certFile, 'utf8') }));
  it('connects with insecureSkipVerify', () => roundTrip({ insecureSkipVerify: true }));

  it('reports an error status when the certificate cannot be verified', async () => {
    const { src, statuses } = await startSource({});
    try {
      const err = statuses.find((s) => s.state === 'error');
      assert.ok(err, JSON.stringify(statuses));
      assert.match(err.error ?? '', /certificate/i);
      assert.ok(!statuses.some((s) => s.state === 'connected'));
    } finally {
      await src.stop();
    }
  });

  it('rejects an unreadable rootCaPath when created', () => {
    assert.throws(() => createSource('mqtt', 't', { server: `ssl://localhost:${broker.port}`, rootCaPath: path.join(dir, 'missing.pem') }), {
      code: 'E_CONNECTOR_CONFIG',
    });
  });
});
