/**
 * Real nats-server processes for the tests: one server with JetStream, or a 3-node cluster with
 * JetStream, each node on its own loopback ports and store directory. Without nats-server on the
 * PATH the suites skip with a notice, except under CI=true, where a missing tool fails.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { freePort, tempDir } from './helpers.js';

function hasNatsServer(): boolean {
  return !spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).error;
}

/** undefined when nats-server is usable; else why the suite is skipped. Throws under CI=true. */
export function natsSkip(): string | undefined {
  if (hasNatsServer()) return undefined;
  const why = 'nats-server is not on the PATH (apt-get install -y nats-server)';
  if (process.env.CI === 'true') throw new Error(`${why}; CI must have it (.ci/run installs it)`);
  console.log(`# SKIP NATS tests: ${why}`);
  return why;
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

export interface NatsNode {
  name: string;
  port: number;
  url: string;
  pid: number;
  /** SIGKILL: a real crash. */
  kill(): Promise<void>;
  running(): boolean;
  log(): string;
}

export interface NatsCluster {
  nodes: NatsNode[];
  /** All client URLs, comma-separated (the form `server` takes). */
  urls: string;
  close(): Promise<void>;
}

async function launch(name: string, conf: string, port: number): Promise<NatsNode> {
  const proc: ChildProcess = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr?.on('data', (d) => (log = (log + d).slice(-20_000)));
  const end = Date.now() + 15_000;
  while (!(await portOpen(port))) {
    if (proc.exitCode !== null || Date.now() > end) {
      proc.kill('SIGKILL');
      throw new Error(`nats-server ${name} did not start on port ${port}: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const exited = new Promise<void>((r) => (proc.exitCode !== null ? r() : proc.once('exit', () => r())));
  return {
    name,
    port,
    url: `nats://127.0.0.1:${port}`,
    pid: proc.pid!,
    async kill() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
    running: () => proc.exitCode === null && proc.signalCode === null,
    log: () => log,
  };
}

/** One nats-server with JetStream (`-js`) on a free loopback port; `extraConf` is appended to its config (tls, authorization). */
export async function startNatsServer(extraConf = ''): Promise<NatsCluster> {
  const dir = tempDir('nats');
  const port = await freePort();
  const conf = path.join(dir, 'n1.conf');
  writeFileSync(conf, `server_name: n1\nhost: 127.0.0.1\nport: ${port}\njetstream { store_dir: "${path.join(dir, 'store')}" }\n${extraConf}\n`);
  const node = await launch('n1', conf, port);
  return {
    nodes: [node],
    urls: node.url,
    async close() {
      await node.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A 3-node JetStream cluster on loopback; resolves once JetStream has a meta leader. */
export async function startNatsCluster(): Promise<NatsCluster> {
  const dir = tempDir('nats-cluster');
  const ports = [await freePort(), await freePort(), await freePort()];
  const routes = [await freePort(), await freePort(), await freePort()];
  const nodes: NatsNode[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const conf = path.join(dir, `n${i + 1}.conf`);
      const others = routes.filter((_, j) => j !== i).map((r) => `nats-route://127.0.0.1:${r}`);
      writeFileSync(
        conf,
        [
          `server_name: n${i + 1}`,
          'host: 127.0.0.1',
          `port: ${ports[i]}`,
          `jetstream { store_dir: "${path.join(dir, `store${i + 1}`)}" }`,
          `cluster { name: sp, host: 127.0.0.1, port: ${routes[i]}, routes: [${others.join(', ')}] }`,
          '',
        ].join('\n'),
      );
      nodes.push(await launch(`n${i + 1}`, conf, ports[i]));
    }
    const cluster: NatsCluster = {
      nodes,
      urls: nodes.map((n) => n.url).join(','),
      async close() {
        await Promise.all(nodes.map((n) => n.kill()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
    // JetStream answers once the meta group elected a leader.
    const nc = await connect({ servers: nodes.map((n) => n.url) });
    try {
      const end = Date.now() + 30_000;
      for (;;) {
        try {
          const jsm = await jetstreamManager(nc, { timeout: 2000 });
          await jsm.getAccountInfo();
          break;
        } catch (e) {
          if (Date.now() > end) throw new Error(`JetStream cluster not ready: ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    } finally {
      await nc.close();
    }
    return cluster;
  } catch (e) {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Creates (or recreates) a file-backed work stream `name` on `subjects`, with `replicas` copies. */
export async function createStream(nc: NatsConnection, name: string, subjects: string[], replicas = 1): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(name).catch(() => undefined);
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      await jsm.streams.add({ name, subjects, storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: replicas });
      return;
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
