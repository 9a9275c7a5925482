/** Real brokers and small waiting helpers for the connector tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedBroker } from '../../src/connectors/mqtt/broker.js';
import { skipWithout } from '../helpers/optional-tools.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `streamplug-${prefix}-`));
}

/** Waits until cond() holds, polling; fails with `what` after `ms` (a bound, not an assertion on speed). */
export async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A broker the MQTT suite can stop and start again on the same port. */
export interface TestBroker {
  url: string;
  port: number;
  /** Stops the broker but keeps its port and config for up(). */
  down(): Promise<void>;
  /** Starts it again on the same port (a fresh broker: no sessions, no retained messages). */
  up(): Promise<void>;
  close(): Promise<void>;
}

export interface BrokerKind {
  name: string;
  /** Undefined when available, else why the suite is skipped. */
  skip?: string;
  start(): Promise<TestBroker>;
}

export const aedesKind: BrokerKind = {
  name: 'aedes (embedded)',
  async start() {
    let b = await startEmbeddedBroker({ host: '127.0.0.1', port: 0 });
    const port = b.port;
    return {
      url: b.url,
      port,
      down: () => b.close(),
      async up() {
        b = await startEmbeddedBroker({ host: '127.0.0.1', port });
      },
      close: () => b.close(),
    };
  },
};

export const mosquittoKind: BrokerKind = {
  name: 'mosquitto',
  skip: skipWithout('mosquitto') || undefined,
  async start() {
    const port = await freePort();
    const dir = tempDir('mosquitto');
    const conf = path.join(dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n`);
    let proc: ChildProcess | undefined;
    const launch = async () => {
      proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      proc.stderr?.on('data', (d) => (err += d));
      await waitFor(`mosquitto on port ${port} (${err})`, () => proc?.exitCode === null, 5000);
      const end = Date.now() + 10_000;
      while (!(await portOpen(port))) {
        if (proc.exitCode !== null || Date.now() > end) throw new Error(`mosquitto did not start: ${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const halt = async () => {
      const p = proc;
      proc = undefined;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    };
    await launch();
    return {
      url: `mqtt://127.0.0.1:${port}`,
      port,
      down: halt,
      up: launch,
      async close() {
        await halt();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
