/**
 * The NATS source and sink against a real nats-server (JetStream on): core subjects and queue
 * groups, raw payloads, the sink on a subject and on a stream with publish acks, the bad
 * configurations an operator can write, poison messages, and at-least-once when a sink fails.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstreamManager } from '@nats-io/jetstream';
import { createSink, createSource, type ConnectorStatus, type Row, type SourceConnector } from '../../src/connectors/index.js';
import { createStream, natsSkip, startNatsServer, type NatsCluster } from './nats-helpers.js';
import { freePort, tempDir, waitFor } from './helpers.js';
import { cliPath, startHostProcess, type HostProcess } from '../helpers/host-process.js';

interface Started {
  src: SourceConnector;
  rows: Row[];
  status: ConnectorStatus[];
}

async function startSource(subject: string, props: Record<string, unknown>, dataDir?: string): Promise<Started> {
  const src = createSource('nats', subject, props, { dataDir, ruleId: 't' });
  const rows: Row[] = [];
  const status: ConnectorStatus[] = [];
  await src.start((r, meta) => {
    rows.push(...r);
    meta?.onDelivered?.(true);
  }, (s) => status.push(s));
  return { src, rows, status };
}

describe('NATS connectors against nats-server', { skip: natsSkip(), timeout: 120_000 }, () => {
  let server: NatsCluster;
  let nc: NatsConnection;
  const stops: (() => Promise<unknown>)[] = [];

  before(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.urls });
  });
  after(async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await nc?.close();
    await server?.close();
  });

  it('core subject: members of one queue group share the messages, a plain subscriber gets them all', async () => {
    const a = await startSource('core.q', { server: server.urls, queue: 'g' });
    const b = await startSource('core.q', { server: server.urls, queue: 'g' });
    const all = await startSource('core.q', { server: server.urls });
    stops.push(() => a.src.stop(), () => b.src.stop(), () => all.src.stop());
    assert.equal(a.status.at(-1)?.state, 'connected');
    for (let i = 0; i < 400; i++) nc.publish('core.q', JSON.stringify({ id: i }));
    await nc.flush();
    await waitFor('all 400 at the plain subscriber and shared by the group', () => all.rows.length === 400 && a.rows.length + b.rows.length === 400);
    assert.ok(a.rows.length > 0 && b.rows.length > 0, `queue group did not share: ${a.rows.length}/${b.rows.length}`);
    const ids = new Set([...a.rows, ...b.rows].map((r) => r.id));
    assert.equal(ids.size, 400, 'a message reached two members of the queue group');
    assert.deepEqual(a.src.metrics?.()?.consumer?.kind, 'queue');
  });

  it('FORMAT raw hands the payload over as bytes in `self`; bad JSON is counted, not thrown', async () => {
    const raw = await startSource('core.raw', { server: server.urls, FORMAT: 'raw' });
    const js = await startSource('core.json', { server: server.urls });
    stops.push(() => raw.src.stop(), () => js.src.stop());
    nc.publish('core.raw', new Uint8Array([0, 1, 2, 255]));
    nc.publish('core.json', 'not json');
    nc.publish('core.json', '[1,2]');
    nc.publish('core.json', '{"ok":1}');
    await nc.flush();
    await waitFor('raw row and the good JSON row', () => raw.rows.length === 1 && js.rows.length === 1);
    assert.deepEqual([...(raw.rows[0].self as Uint8Array)], [0, 1, 2, 255]);
    assert.deepEqual(js.rows, [{ ok: 1 }]);
    assert.equal(js.src.metrics?.()?.decodeErrors, 2);
  });

  it('the sink publishes to a subject, and to a JetStream stream only with a publish ack', async () => {
    const got: string[] = [];
    const sub = nc.subscribe('out.core', { callback: (_e, m) => void got.push(m.string()) });
    stops.push(async () => sub.unsubscribe());
    await nc.flush();
    const core = createSink('nats', { server: server.urls, subject: 'out.core' }, {});
    await core.open();
    await core.collect([{ a: 1 }]);
    await waitFor('the core message', () => got.length === 1);
    assert.deepEqual(JSON.parse(got[0]), [{ a: 1 }]);
    await core.close();

    await createStream(nc, 'OUT', ['out.js']);
    const sink = createSink('nats', { server: server.urls, subject: 'out.js', stream: 'OUT' }, {});
    await sink.open();
    for (let i = 0; i < 5; i++) await sink.collect([{ i }]);
    const info = await (await jetstreamManager(nc)).streams.info('OUT');
    assert.equal(info.state.messages, 5);
    await sink.close();

    // a subject no stream captures: the publish is not confirmed, so the send fails (and is retried by the runner)
    const lost = createSink('nats', { server: server.urls, subject: 'nowhere.x', stream: 'OUT', ackTimeout: 1000 }, {});
    await lost.open();
    await assert.rejects(lost.collect([{ i: 0 }]), (e: Error & { code?: string }) => e.code === 'E_SINK_FAILED' && /did not confirm/.test(e.message));
    await lost.close();
  });

  it('refuses bad configurations with E_CONNECTOR_CONFIG and says what to fix', async () => {
    const bad = (subject: string, props: Record<string, unknown>, re: RegExp, dataDir?: string) =>
      assert.throws(() => createSource('nats', subject, props, { dataDir }), (e: Error & { code?: string }) => e.code === 'E_CONNECTOR_CONFIG' && re.test(e.message), `${JSON.stringify(props)}`);
    bad('a', { server: 'http://x:1' }, /nats:\/\/host:port/);
    bad('a', { durable: 'D' }, /stream/);
    bad('a', { stream: 'S', durable: 'has space' }, /letters, digits/);
    bad('a', { stream: 'S', queue: 'g' }, /no queue with a JetStream/);
    bad('a', { stream: 'S', maxDeliver: 0 }, /positive integer, or -1/);
    bad('a', { stream: 'S', ackWait: 5 }, /at least 100/);
    bad('a b', {}, /without spaces/);
    bad('a', { credsFile: '/nonexistent.creds' }, /readable \.creds/);
    bad('a', { rootCaPath: '/nonexistent.pem' }, /readable PEM/);
    const dir = tempDir('nats-conf');
    fs.mkdirSync(path.join(dir, 'etc'));
    fs.writeFileSync(path.join(dir, 'etc', 'nats_source.json'), '{"default": ');
    bad('a', {}, /not valid JSON/, dir);
    fs.writeFileSync(path.join(dir, 'etc', 'nats_source.json'), JSON.stringify({ default: { server: server.urls } }));
    bad('a', { CONF_KEY: 'nope' }, /CONF_KEY "nope" is not a named config in etc\/nats_source.json/, dir);
    assert.throws(() => createSink('nats', { server: server.urls, subject: 'a.*' }, {}), /without spaces or wildcards/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('with no server: start() resolves with an error status, keeps retrying, and stop() ends it', async () => {
    const dead = `nats://127.0.0.1:${await freePort()}`;
    const s = await startSource('x', { server: dead, stream: 'S', durable: 'D' });
    assert.equal(s.status.at(-1)?.state, 'error');
    assert.match(s.status.at(-1)?.error ?? '', /cannot connect to nats:\/\/127\.0\.0\.1:\d+.*retrying/);
    await s.src.stop();
    // stopped before any outcome: neither start() nor stop() hangs
    const src = createSource('nats', 'x', { server: dead }, {});
    const started = src.start(() => undefined, () => undefined);
    await src.stop();
    await started;
  });

  it('a durable that filters another subject is refused in the status, not silently shared', async () => {
    await createStream(nc, 'F', ['f.>']);
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add('F', { durable_name: 'FD', ack_policy: AckPolicy.Explicit, filter_subject: 'f.a' });
    const s = await startSource('f.b', { server: server.urls, stream: 'F', durable: 'FD' });
    stops.push(() => s.src.stop());
    const last = s.status.at(-1);
    assert.equal(last?.state, 'error');
    assert.match(last?.error ?? '', /filters subject "f\.a" but DATASOURCE is "f\.b"/);
  });

  it('a DATASOURCE outside the stream\'s subjects is named in the status, not reported as "consumer not found"', async () => {
    await createStream(nc, 'O', ['o.in']);
    const s = await startSource('other.subject', { server: server.urls, stream: 'O', durable: 'OD' });
    stops.push(() => s.src.stop());
    const last = s.status.at(-1);
    assert.equal(last?.state, 'error');
    assert.match(last?.error ?? '', /cannot create durable consumer "OD" on stream "O" for DATASOURCE "other\.subject"/);
    assert.match(last?.error ?? '', /must be a subject of stream "O" \(its subjects: "o\.in"\)/);
    assert.doesNotMatch(last?.error ?? '', /consumer not found/);
  });

  it('a durable deleted on the server while a host reads it is created again and reading goes on', async () => {
    await createStream(nc, 'R', ['r.in']);
    const s = await startSource('r.in', { server: server.urls, stream: 'R', durable: 'RD', pullExpires: 1000 });
    stops.push(() => s.src.stop());
    nc.publish('r.in', JSON.stringify({ id: 0 }));
    await waitFor('the first row', () => s.rows.length === 1);
    await (await jetstreamManager(nc)).consumers.delete('R', 'RD');
    nc.publish('r.in', JSON.stringify({ id: 1 }));
    await waitFor('the row published after the consumer was deleted', () => s.rows.some((r) => r.id === 1), 30_000);
    const info = await (await jetstreamManager(nc)).consumers.info('R', 'RD');
    assert.equal(info.config.ack_policy, AckPolicy.Explicit);
  });

  it('maxMessageSize: a larger message is dropped before decoding and counted (core and JetStream, where it is terminated)', async () => {
    const core = await startSource('core.big', { server: server.urls, maxMessageSize: 100 });
    await createStream(nc, 'BIG', ['big.in']);
    const js = await startSource('big.in', { server: server.urls, stream: 'BIG', durable: 'BD', ackWait: 500, maxMessageSize: 100 });
    stops.push(() => core.src.stop(), () => js.src.stop());
    const big = JSON.stringify({ pad: 'x'.repeat(200) });
    for (const subject of ['core.big', 'big.in']) {
      nc.publish(subject, big);
      nc.publish(subject, '{"small":1}');
    }
    await nc.flush();
    await waitFor('the small rows', () => core.rows.length === 1 && js.rows.length === 1);
    await new Promise((r) => setTimeout(r, 1200)); // past ackWait: a redelivery would show
    for (const s of [core, js]) {
      assert.deepEqual(s.rows, [{ small: 1 }]);
      const m = s.src.metrics?.();
      assert.equal(m?.tooLarge, 1, JSON.stringify(m));
      assert.match(String(m?.lastDecodeError), /larger than maxMessageSize 100/);
    }
    const info = await (await jetstreamManager(nc)).consumers.info('BIG', 'BD');
    assert.equal(info.num_ack_pending, 0);
    assert.equal(info.num_redelivered, 0);
  });

  it('a poison message is terminated (not redelivered for ever); others flow', async () => {
    await createStream(nc, 'P', ['p.in']);
    const s = await startSource('p.in', { server: server.urls, stream: 'P', durable: 'PD', ackWait: 500 });
    stops.push(() => s.src.stop());
    nc.publish('p.in', 'garbage');
    nc.publish('p.in', '{"good":true}');
    await waitFor('the good row', () => s.rows.length === 1);
    await new Promise((r) => setTimeout(r, 1500)); // three ackWaits: a redelivery would show
    assert.equal(s.src.metrics?.()?.decodeErrors, 1);
    const info = await (await jetstreamManager(nc)).consumers.info('P', 'PD');
    assert.equal(info.num_ack_pending, 0);
    assert.equal(info.num_redelivered, 0);
  });
});

describe('NATS JetStream at-least-once through a host whose sink is down', { skip: natsSkip(), timeout: 120_000 }, () => {
  let server: NatsCluster;
  let nc: NatsConnection;
  let host: HostProcess;
  let http1: http.Server | undefined;

  before(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.urls });
    await createStream(nc, 'A', ['a.in']);
  });
  after(async () => {
    await host?.kill();
    http1?.close();
    await nc?.close();
    await server?.close();
  });

  it('rows a sink dropped are not acknowledged: they come back and arrive once the sink is up', async () => {
    const port = await freePort();
    const dataDir = tempDir('nats-alo');
    fs.mkdirSync(path.join(dataDir, 'etc'));
    fs.writeFileSync(path.join(dataDir, 'etc', 'nats_source.json'), JSON.stringify({ default: { server: server.urls, stream: 'A', durable: 'AD', ackWait: 1000 } }));
    host = await startHostProcess({ dataDir, args: ['--mqtt-port', String(await freePort())] });
    assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM a () WITH (TYPE="nats", DATASOURCE="a.in", CONF_KEY="default")' })).status, 201);
    const rule = { id: 'r', sql: 'SELECT * FROM a', actions: [{ rest: { url: `http://127.0.0.1:${port}/in`, method: 'post', retryCount: 0, sendSingle: true } }] };
    assert.equal((await host.api('POST', '/rules', rule)).status, 201);
    for (let i = 0; i < 20; i++) nc.publish('a.in', JSON.stringify({ id: i }));
    await nc.flush();
    let st: any;
    const end = Date.now() + 20_000;
    do {
      await new Promise((r) => setTimeout(r, 200));
      st = (await host.api('GET', '/rules/r/status')).body;
    } while ((st.source?.consumer?.nacked ?? 0) < 20 && Date.now() < end);
    assert.ok(st.source.consumer.nacked >= 20, `expected the dropped rows to be nacked: ${JSON.stringify(st.source.consumer)}`);
    assert.equal(st.source.consumer.acked, 0);
    // the CLI shows the consumer too
    const cli = spawnSync(process.execPath, [cliPath, 'rule', 'status', 'r', '--host', host.url, '--data', dataDir], { encoding: 'utf8', timeout: 20_000 });
    assert.match(cli.stdout, /consumer jetstream AD on A: pending \d+ {2}ack pending \d+ {2}redelivered \d+ {2}\(this host: acked 0, nacked \d+/);

    const got = new Set<number>();
    http1 = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        got.add((JSON.parse(body) as { id: number }).id);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => http1!.listen(port, '127.0.0.1', () => r()));
    await waitFor('every row at the sink once it is up', () => got.size === 20, 30_000);
  });

  it('with two rules on the stream, a message is acknowledged only when both rules delivered it', async () => {
    const port = await freePort();
    await createStream(nc, 'B', ['b.in']);
    // the stream's own options override nats_source.json's (stream A, durable AD)
    assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM b () WITH (TYPE="nats", DATASOURCE="b.in", CONF_KEY="default", STREAM="B", DURABLE="BD")' })).status, 201);
    const fileRule = { id: 'tofile', sql: 'SELECT * FROM b', actions: [{ file: { path: 'out/b.jsonl' } }] };
    const restRule = { id: 'torest', sql: 'SELECT * FROM b', actions: [{ rest: { url: `http://127.0.0.1:${port}/in`, method: 'post', retryCount: 0, sendSingle: true } }] };
    assert.equal((await host.api('POST', '/rules', fileRule)).status, 201);
    assert.equal((await host.api('POST', '/rules', restRule)).status, 201);
    for (let i = 0; i < 10; i++) nc.publish('b.in', JSON.stringify({ id: i }));
    await nc.flush();
    const file = path.join(host.dataDir, 'out', 'b.jsonl');
    const written = () => new Set(fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).id) : []);
    await waitFor('the file rule has every row', () => written().size === 10, 20_000).catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify((await host.api('GET', '/rules/tofile/status')).body.source)}`);
    });
    await new Promise((r) => setTimeout(r, 1500));
    const st = (await host.api('GET', '/rules/tofile/status')).body.source.consumer;
    assert.equal(st.acked, 0, 'acknowledged although the rest rule never delivered');
    assert.ok(st.nacked >= 10);

    const got = new Set<number>();
    const srv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => (got.add((JSON.parse(body) as { id: number }).id), res.end('ok')));
    });
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
    try {
      await waitFor('the rest rule has every row', () => got.size === 10, 30_000);
      const end = Date.now() + 20_000;
      let c: any;
      do {
        await new Promise((r) => setTimeout(r, 300));
        c = (await host.api('GET', '/rules/tofile/status')).body.source.consumer;
      } while (!(c.acked >= 10 && c.ackPending === 0 && c.pending === 0) && Date.now() < end);
      assert.ok(c.acked >= 10 && c.ackPending === 0 && c.pending === 0, `not everything acknowledged: ${JSON.stringify(c)}`);
    } finally {
      srv.close();
    }
  });
});

describe('NATS over TLS with credentials: the options are passed through', { skip: natsSkip(), timeout: 60_000 }, () => {
  const dir = tempDir('nats-tls');
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  const made = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile,
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { stdio: 'ignore' },
  );
  let server: NatsCluster;
  const stops: (() => Promise<unknown>)[] = [];
  before(async () => {
    if (made.error || made.status !== 0) throw new Error('openssl could not make a test certificate');
    server = await startNatsServer(`tls { cert_file: "${certFile}", key_file: "${keyFile}" }\nauthorization { user: alice, password: s3cret }`);
  });
  after(async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the CA and the user, and names the reason when either is wrong', async () => {
    const good = { server: server.urls, rootCaPath: certFile, user: 'alice', password: 's3cret' };
    const src = await startSource('sec.in', good);
    stops.push(() => src.src.stop());
    assert.equal(src.status.at(-1)?.state, 'connected');
    const sink = createSink('nats', { ...good, subject: 'sec.in' }, {});
    await sink.open();
    await sink.collect([{ secret: 1 }]);
    await waitFor('the row over TLS', () => src.rows.length === 1);
    assert.deepEqual(src.rows, [{ secret: 1 }]);
    await sink.close();

    const wrongPassword = await startSource('sec.in', { ...good, password: 'nope' });
    stops.push(() => wrongPassword.src.stop());
    assert.equal(wrongPassword.status.at(-1)?.state, 'error');
    assert.match(wrongPassword.status.at(-1)?.error ?? '', /authoriz/i);
    const noCa = await startSource('sec.in', { server: server.urls, user: 'alice', password: 's3cret' });
    stops.push(() => noCa.src.stop());
    assert.equal(noCa.status.at(-1)?.state, 'error');
    assert.match(noCa.status.at(-1)?.error ?? '', /certificate|TLS|self.signed/i);
    const refused = createSink('nats', { ...good, password: 'nope', subject: 'sec.in' }, {});
    await assert.rejects(refused.open(), (e: Error & { code?: string }) => e.code === 'E_SINK_FAILED' && /authoriz/i.test(e.message));
  });
});
