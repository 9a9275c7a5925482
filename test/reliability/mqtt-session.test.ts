/**
 * Persistent MQTT sessions against a real Mosquitto (with persistence on): a stream with
 * cleanSession false and QoS 1 loses nothing across a broker restart (messages published before the
 * host reconnected wait in its session) nor across a kill -9 of the host (the restarted host comes
 * back with the same client id and receives what was published while it was down). The broker
 * outage shows the rule degraded, logged once each way. And a windowed rule with qos 1 acknowledges
 * only what a checkpoint holds: rows received but not yet checkpointed when the host is killed -9 come
 * again from the broker, so the window's result equals the uninterrupted one.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { startHostProcess } from '../helpers/host-process.js';
import { freePort, Target, waitFor } from './helpers.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-session-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const hasMosquitto = !spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error;

/** Mosquitto that keeps sessions on disk across restarts. */
class Broker {
  private proc?: ChildProcess;
  readonly dir = fs.mkdtempSync(path.join(root, 'mosq-'));
  constructor(readonly port: number) {
    // Mosquitto started as root drops to its own user, which must reach and write this folder.
    fs.chmodSync(root, 0o755);
    fs.chmodSync(this.dir, 0o777);
    fs.writeFileSync(
      path.join(this.dir, 'mosquitto.conf'),
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${this.dir}/\nautosave_interval 1\nlog_dest stderr\nmax_inflight_messages 0\n`,
    );
  }
  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }
  async up(): Promise<void> {
    this.proc = spawn('mosquitto', ['-c', path.join(this.dir, 'mosquitto.conf')], { stdio: 'ignore' });
    await waitFor('mosquitto listening', () => new Promise<boolean>((r) => {
      const s = net.connect(this.port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    }), 10_000);
  }
  /** SIGTERM: Mosquitto writes its sessions to disk and exits. */
  async down(): Promise<void> {
    const p = this.proc!;
    this.proc = undefined;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
  }
}

async function publish(url: string, from: number, to: number): Promise<void> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, clean: true });
  for (let n = from; n < to; n++) await c.publishAsync('in/rows', JSON.stringify({ n }), { qos: 1 });
  await c.endAsync();
}

describe('persistent MQTT sessions with Mosquitto', { skip: hasMosquitto ? undefined : 'mosquitto is not on the PATH', timeout: 120_000 }, () => {
  it('zero loss across a broker restart and across kill -9 of the host', async () => {
    const broker = new Broker(await freePort());
    await broker.up();
    const target = new Target(await freePort());
    await target.up();
    const data = path.join(root, 'data');
    fs.mkdirSync(path.join(data, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(data, 'etc', 'mqtt_source.json'), JSON.stringify({ persist: { cleanSession: false, qos: 1 } }));
    const args = ['--mqtt-url', broker.url];
    let host = await startHostProcess({ dataDir: data, args });
    try {
      assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM s (n bigint) WITH (DATASOURCE="in/rows", FORMAT="json", CONF_KEY="persist")' })).status, 201);
      const r = await host.api('POST', '/rules', { id: 'r', sql: 'SELECT n FROM s', actions: [{ rest: { url: `http://127.0.0.1:${target.port}/in`, sendSingle: true, enableCache: true, retryInterval: 200 } }] });
      assert.equal(r.status, 201, r.text);
      await waitFor('source connected', async () => (await host.api('GET', '/rules/r/status')).body.source?.state === 'connected');
      await publish(broker.url, 0, 50);
      await waitFor('50 rows', () => target.rows.length === 50);

      // The broker restarts; what is published before the host is back waits in its session.
      await broker.down();
      await waitFor('r degraded', async () => (await host.api('GET', '/rules/r/status')).body.status === 'degraded');
      const deg = (await host.api('GET', '/rules/r/status')).body.degraded;
      assert.match(deg.reason, /^source: (reconnecting|error)/);
      await broker.up();
      await publish(broker.url, 50, 100);
      await waitFor('100 rows after the broker restart', () => target.rows.length >= 100, 30_000).catch(async (e) => {
        throw new Error(`${e.message}: got ${target.rows.length}; status ${(await host.api('GET', '/rules/r/status')).text}`);
      });
      await waitFor('r running', async () => (await host.api('GET', '/rules/r/status')).body.status === 'running');
      assert.deepEqual(target.rows, Array.from({ length: 100 }, (_, i) => i));
      const out = host.stdout();
      assert.equal(out.split('\n').filter((l) => /rule r is degraded/.test(l)).length, 1, 'the outage is logged once');
      assert.equal(out.split('\n').filter((l) => /rule r recovered/.test(l)).length, 1, 'the recovery is logged once');

      // The host crashes; what is published meanwhile is delivered after the restart.
      await host.kill('SIGKILL');
      await publish(broker.url, 100, 150);
      host = await startHostProcess({ dataDir: data, args });
      await waitFor('150 rows after the host restart', () => new Set(target.rows).size === 150, 30_000);
      await sleep(300);
      const firsts = target.rows.filter((n, i) => target.rows.indexOf(n) === i);
      assert.deepEqual(firsts, Array.from({ length: 150 }, (_, i) => i), 'every row, in order (at least once)');
    } finally {
      await host.stop();
      await broker.down().catch(() => undefined);
      await target.down().catch(() => undefined);
    }
  });

  it('kill -9 mid-window with rule qos 1: rows received after the last checkpoint come again; the result equals the uninterrupted one', async () => {
    const WINDOW_S = 20;
    const broker = new Broker(await freePort());
    await broker.up();
    const data = path.join(root, 'data-window');
    fs.mkdirSync(path.join(data, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(data, 'etc', 'mqtt_source.json'), JSON.stringify({ persist: { cleanSession: false, qos: 1 } }));
    const args = ['--mqtt-url', broker.url];
    let host = await startHostProcess({ dataDir: data, args });
    try {
      assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM s (n bigint) WITH (DATASOURCE="in/rows", FORMAT="json", CONF_KEY="persist")' })).status, 201);
      const sql = `SELECT count(*) AS c, sum(n) AS s FROM s GROUP BY TUMBLINGWINDOW(ss, ${WINDOW_S})`;
      // No periodic checkpoint during the test: nothing the window takes is saved before the kill.
      const r = await host.api('POST', '/rules', { id: 'w', sql, actions: [{ file: { path: 'out/w.jsonl', flush: 'batch' } }], options: { qos: 1, checkpointInterval: 600_000 } });
      assert.equal(r.status, 201, r.text);
      const status = async () => (await host.api('GET', '/rules/w/status')).body;
      await waitFor('source connected', async () => (await status()).source?.state === 'connected');
      while (Date.now() % (WINDOW_S * 1000) > 1000) await sleep(100);
      const windowEnd = Math.floor(Date.now() / (WINDOW_S * 1000)) * WINDOW_S * 1000 + WINDOW_S * 1000;
      await publish(broker.url, 1, 21);
      await waitFor('the window took 20 rows', async () => (await status()).operators.find((o: { name: string }) => o.name === 'window').recordsIn === 20);
      const before = (await status()).source;
      assert.equal(before.acksHeld, 20, `no checkpoint holds them yet, so none is acknowledged: ${JSON.stringify(before)}`);
      await host.kill('SIGKILL');
      host = await startHostProcess({ dataDir: data, args });
      assert.doesNotMatch(host.stdout(), /window row\(s\) restored/, 'nothing came from a checkpoint');
      await waitFor('the broker sent the 20 again', async () => (await status()).operators.find((o: { name: string }) => o.name === 'window')?.recordsIn === 20);
      await publish(broker.url, 21, 31);
      assert.ok(Date.now() < windowEnd, 'the crash and the restart stayed inside one window (the machine was too slow: rerun)');
      const read = () => {
        const f = path.join(data, 'out', 'w.jsonl');
        return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
      };
      await waitFor('the window closed', () => read().length === 1, WINDOW_S * 1000 + 10_000);
      assert.deepEqual(read(), [{ c: 30, s: 465 }], 'uninterrupted: 30 rows, sum 465');
    } finally {
      await host.stop();
      await broker.down().catch(() => undefined);
    }
  });
});
