/**
 * The issue's bar, as an operator would run it, with defaults only: one `nats-server -js`, stream S
 * on `scale.in` created with the project's client, three hosts whose etc/nats_source.json holds just
 * server, stream and durable, `CREATE STREAM n () WITH (TYPE="nats", DATASOURCE="scale.in",
 * FORMAT="json", CONF_KEY="default")`, `SELECT * FROM n` to a file sink with its default properties.
 * 30,000 messages published with plain (core) publishes, one host killed with SIGKILL after about
 * 5,000; every id must be in the union of the sinks' files.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { natsSkip, startNatsServer, type NatsCluster } from '../connectors/nats-helpers.js';
import { freePort, tempDir } from '../connectors/helpers.js';
import { startHostProcess, type HostProcess } from '../helpers/host-process.js';

const COUNT = 30_000;

function ids(h: HostProcess): number[] {
  let text = '';
  try {
    text = fs.readFileSync(path.join(h.dataDir, 'out.jsonl'), 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').flatMap((l) => {
    try {
      return l ? [(JSON.parse(l) as { id: number }).id] : [];
    } catch {
      return [];
    }
  });
}

describe('the bar: three hosts with nats_source.json defaults, one killed, nothing lost', { skip: natsSkip(), timeout: 180_000 }, () => {
  let server: NatsCluster;
  let nc: NatsConnection;
  const hosts: HostProcess[] = [];

  before(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.urls });
    await (await jetstreamManager(nc)).streams.add({ name: 'S', subjects: ['scale.in'] });
    for (let i = 0; i < 3; i++) {
      const dataDir = tempDir(`bar-${i}`);
      fs.mkdirSync(path.join(dataDir, 'etc'));
      fs.writeFileSync(path.join(dataDir, 'etc', 'nats_source.json'), JSON.stringify({ default: { server: server.urls, stream: 'S', durable: 'D' } }));
      const h = await startHostProcess({ dataDir, args: ['--mqtt-port', String(await freePort())] });
      hosts.push(h);
      assert.equal((await h.api('POST', '/streams', { sql: 'CREATE STREAM n () WITH (TYPE="nats", DATASOURCE="scale.in", FORMAT="json", CONF_KEY="default")' })).status, 201);
      assert.equal((await h.api('POST', '/rules', { id: 'r', sql: 'SELECT * FROM n', actions: [{ file: { path: 'out.jsonl' } }] })).status, 201);
    }
  });
  after(async () => {
    await Promise.all(hosts.map((h) => h.kill()));
    await nc?.close();
    await server?.close();
  });

  it('finds every message id in the union of the sinks', async () => {
    for (let i = 0; i < COUNT; i++) {
      nc.publish('scale.in', JSON.stringify({ id: i, temperature: i % 50 }));
      if (i % 1000 === 999) await nc.flush();
      if (i === 5000) await hosts[1].kill('SIGKILL');
    }
    await nc.flush();
    const info = await (await jetstreamManager(nc)).streams.info('S');
    assert.equal(info.state.messages, COUNT, 'the stream did not store every message');
    let seen = new Set<number>();
    const end = Date.now() + 90_000; // bounded; ackWait (5 s by default) is what the survivors wait for
    while ((seen = new Set(hosts.flatMap(ids))).size < COUNT && Date.now() < end) await new Promise((r) => setTimeout(r, 250));
    const missing = COUNT - seen.size;
    const total = hosts.reduce((a, h) => a + ids(h).length, 0);
    console.log(`# bar: ${COUNT} published, ${seen.size} distinct ids written, ${total - seen.size} duplicates, per host ${hosts.map((h) => ids(h).length).join('/')}`);
    assert.equal(missing, 0, `${missing} ids never reached a sink`);
  });
});
