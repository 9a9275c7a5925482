/**
 * Persistent MQTT sessions against a real Mosquitto (with persistence on): a stream with
 * cleanSession false and QoS 1 loses nothing across a broker restart (messages published before the
 * host reconnected wait in its session) nor across a kill -9 of the host (the restarted host comes
 * back with the same client id and receives what was published while it was down). The broker
 * outage shows the rule degraded, logged once each way.
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
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${this.dir}/\nautosave_interval 1\nlog_dest stderr\n`,
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
});
