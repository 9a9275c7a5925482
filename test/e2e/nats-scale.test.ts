/**
 * Scale-out on NATS JetStream, for real: a 3-node nats-server cluster (own ports and store dirs), a
 * replicated stream S on `scale.in`, three `streamplug start` processes sharing durable consumer D
 * (etc/nats_source.json), each with a file sink. 30,000 messages; one host is killed with SIGKILL
 * after about 5,000. Every id must be in the union of the sinks' files; duplicates are counted and
 * bounded by what can be in flight; the survivors pick up the dead host's messages within AckWait.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createStream, natsSkip, startNatsCluster, type NatsCluster } from '../connectors/nats-helpers.js';
import { waitFor } from '../connectors/helpers.js';
import type { HostProcess } from '../helpers/host-process.js';
import { fileSize, publishRange, startNatsHost, union } from './nats-scale-helpers.js';

const COUNT = 30_000;
const KILL_AFTER = 5_000;
const ACK_WAIT = 3_000;
const MAX_ACK_PENDING = 2_000;

describe('NATS JetStream: three hosts share one durable consumer, one is killed', { skip: natsSkip(), timeout: 240_000 }, () => {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  const hosts: HostProcess[] = [];

  before(async () => {
    cluster = await startNatsCluster();
    nc = await connect({ servers: cluster.urls.split(',') });
    await createStream(nc, 'S', ['scale.in'], 3);
    const conf = { server: cluster.urls, stream: 'S', durable: 'D', ackWait: ACK_WAIT, maxAckPending: MAX_ACK_PENDING };
    for (let i = 0; i < 3; i++) hosts.push(await startNatsHost(conf, 'scale.in', `h${i}`, false));
  });

  after(async () => {
    await Promise.all(hosts.map((h) => h.kill()));
    await nc?.close();
    await cluster?.close();
  });

  it('loses nothing when a host dies, bounds duplicates, and the survivors take over within AckWait', async () => {
    // A backlog first, so the hosts work flat out (messages in flight at each) when one is killed.
    const BACKLOG = COUNT / 2;
    await publishRange(nc, 'scale.in', 0, BACKLOG);
    await Promise.all(hosts.map(async (h) => assert.equal((await h.api('POST', '/rules/r/start')).status, 200)));
    let publishedAt = 0;
    const publishing = publishRange(nc, 'scale.in', BACKLOG, COUNT).then(() => (publishedAt = Date.now()));
    // Watch the file sizes (cheap enough to poll every few ms) and kill the host with the most rows.
    const lineBytes = JSON.stringify({ id: 15000, v: 50, ts: Date.now() }).length + 1;
    let sizes = hosts.map(() => 0);
    await waitFor(`about ${KILL_AFTER} rows in the sinks`, () => (sizes = hosts.map(fileSize)).reduce((a, b) => a + b, 0) >= KILL_AFTER * lineBytes, 60_000);
    const victimIndex = sizes.indexOf(Math.max(...sizes));
    const victim = hosts[victimIndex];
    await victim.kill('SIGKILL');
    const before = union(hosts, COUNT);
    const killedAt = Date.now();
    const survivors = hosts.filter((h) => h !== victim);
    await publishing;

    let u = union(hosts, COUNT);
    const end = Date.now() + 120_000;
    while (u.distinct < COUNT && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 200));
      u = union(hosts, COUNT);
    }
    const completeAt = Date.now();
    console.log(`# nats scale: ${COUNT} published, distinct ${u.distinct}, written ${u.total}, duplicates ${u.duplicates}, per host ${u.perHost.join('/')}, complete ${completeAt - Math.max(killedAt + ACK_WAIT, publishedAt)} ms after max(kill+AckWait, publish end)`);
    assert.deepEqual(u.missing.slice(0, 20), [], `${u.missing.length} ids never reached a sink`);
    assert.equal(u.distinct, COUNT);
    // the victim had rows in its file before it died, so it really took a share
    assert.ok(u.perHost.every((n) => n > 0), `a host took no share: ${u.perHost.join('/')}`);
    // duplicates come only from what was unacknowledged when the host died
    assert.ok(u.duplicates <= MAX_ACK_PENDING, `duplicates ${u.duplicates} exceed what can be in flight (${MAX_ACK_PENDING})`);
    // generous bound: redelivery after AckWait, plus slack for a 2-core machine shared with others
    assert.ok(completeAt - Math.max(killedAt + ACK_WAIT, publishedAt) < 20_000, 'survivors did not take over in time');

    // the status shows the consumer and the broker's pending / redelivered counts
    const st = (await survivors[0].api('GET', '/rules/r/status')).body;
    const c = st.source.consumer;
    assert.equal(c.kind, 'jetstream');
    assert.equal(c.name, 'D');
    assert.equal(st.source.state, 'connected');
    assert.equal(c.stream, 'S');
    for (const k of ['pending', 'ackPending', 'redelivered', 'acked', 'receivedRedelivered']) assert.equal(typeof c[k], 'number', `consumer.${k}`);
    const survivorsRedelivered = await Promise.all(survivors.map(async (h) => (await h.api('GET', '/rules/r/status')).body.source.consumer.receivedRedelivered as number));
    console.log(`# nats scale: killed host ${victimIndex} after ${before.total} rows; redeliveries received by survivors ${survivorsRedelivered.join('/')}, broker redelivered ${c.redelivered}`);
    // what the dead host held came back to the survivors
    assert.ok(survivorsRedelivered.reduce((a, b) => a + b, 0) > 0, 'no redelivery reached the survivors: the killed host held nothing in flight');
  });
});
