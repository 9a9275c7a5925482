/**
 * One NATS node dies while the hosts run: a 3-node JetStream cluster with a replicated stream; two
 * `streamplug start` hosts are given only node 1's URL (they learn the others from the server) and
 * node 1 is killed with SIGKILL mid-stream. The hosts must reconnect to the survivors, report it, and
 * every message must reach a sink.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createStream, natsSkip, startNatsCluster, type NatsCluster } from '../connectors/nats-helpers.js';
import { waitFor } from '../connectors/helpers.js';
import type { HostProcess } from '../helpers/host-process.js';
import { fileSize, publishRange, startNatsHost, union } from './nats-scale-helpers.js';

const COUNT = 10_000;

describe('NATS JetStream: a cluster node is killed while the hosts run', { skip: natsSkip(), timeout: 240_000 }, () => {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  const hosts: HostProcess[] = [];

  before(async () => {
    cluster = await startNatsCluster();
    // the test's own client may use every node; the hosts get node 1 only
    nc = await connect({ servers: cluster.urls.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    await createStream(nc, 'S', ['scale.in'], 3);
    const conf = { server: cluster.nodes[0].url, stream: 'S', durable: 'D', ackWait: 3000 };
    for (let i = 0; i < 2; i++) hosts.push(await startNatsHost(conf, 'scale.in', `nf${i}`));
  });

  after(async () => {
    await Promise.all(hosts.map((h) => h.kill()));
    await nc?.close();
    await cluster?.close();
  });

  it('the hosts fail over to the other nodes and lose nothing', async () => {
    let published = 0;
    const publishing = publishRange(nc, 'scale.in', 0, COUNT, (n) => (published = n), 64);
    await waitFor('a third of the messages in the sinks', () => hosts.map(fileSize).reduce((a, b) => a + b, 0) > 0 && published >= COUNT / 3, 60_000);
    await cluster.nodes[0].kill();
    await publishing;

    let u = union(hosts, COUNT);
    const end = Date.now() + 90_000;
    while (u.distinct < COUNT && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 200));
      u = union(hosts, COUNT);
    }
    console.log(`# nats node failure: distinct ${u.distinct}/${COUNT}, duplicates ${u.duplicates}, per host ${u.perHost.join('/')}`);
    assert.deepEqual(u.missing.slice(0, 20), [], `${u.missing.length} ids never reached a sink`);
    for (const h of hosts) {
      const st = (await h.api('GET', '/rules/r/status')).body;
      assert.equal(st.status, 'running');
      assert.equal(st.source.state, 'connected', `host ${h.url} did not come back: ${JSON.stringify(st.source)}`);
    }
  });
});
