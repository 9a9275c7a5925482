/**
 * Rules throughput: MQTT -> `SELECT … WHERE temperature > 50` -> file sink, in messages/s and engine CPU
 * per message, with a built-in expression (`temperature * 1.8`) and with the native batched function
 * (`scale(temperature, 1.8)` from vector.so), then 100 and 1,000 rules sharing one source. In the same
 * run: the publisher's ceiling (broker with no subscriber) and the floor (broker -> source -> discard).
 *
 * `node dist/bench/rules.js [--json] [--seconds N]`. The load generator runs in a child process (this
 * file with --load): raw TCP clients writing pre-encoded MQTT 3.1.1 PUBLISH (QoS 0) packets, so the
 * publisher outruns the engine. Against the embedded broker (aedes, in that child process, as
 * `startEmbeddedBroker` runs it) and against Mosquitto when it is on the PATH. Targets are printed,
 * never asserted.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginRegistry } from '../src/plugins/registry.js';
import { openStore } from '../src/store/index.js';
import { createSource, startEmbeddedBroker } from '../src/connectors/index.js';
import { createRuleService, type RuleService } from '../src/rules/index.js';
import { samplesDir } from '../test/helpers/paths.js';

const TOPIC = 'bench/sensors';
const CLIENTS = 2;
const BLOCK = 1000; // distinct messages, pre-encoded once

// ------------------------------------------------------------------ load generator (child process)

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function packet(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), varint(body.length), body]);
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function connectPacket(clientId: string): Buffer {
  // protocol "MQTT" level 4, clean session, keep-alive 0 (no pings needed in a short run)
  return packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 0]), str(clientId)]));
}

function publishBlock(): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < BLOCK; i++) {
    const payload = JSON.stringify({ id: i, temperature: 20 + ((i * 37) % 61), humidity: 40 + (i % 20) });
    parts.push(packet(0x30, Buffer.concat([str(TOPIC), Buffer.from(payload)])));
  }
  return Buffer.concat(parts);
}

async function rawClient(port: number, id: string): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.once('connect', () => {
      s.write(connectPacket(id));
      s.once('data', (d) => (d[0] === 0x20 && d[3] === 0 ? resolve() : reject(new Error(`CONNACK refused: ${d.toString('hex')}`))));
    });
  });
  s.on('data', () => undefined);
  return s;
}

/** Publishes for `ms` on CLIENTS connections, respecting socket backpressure; returns messages written. */
async function blast(port: number, ms: number): Promise<number> {
  const block = publishBlock();
  const socks = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => rawClient(port, `bench_pub_${process.pid}_${i}_${Date.now()}`)));
  const end = Date.now() + ms;
  let sent = 0;
  await Promise.all(
    socks.map(async (s) => {
      while (Date.now() < end) {
        sent += BLOCK;
        if (!s.write(block)) await new Promise((r) => s.once('drain', r));
      }
    }),
  );
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.end(() => r()))));
  return sent;
}

async function loadMain(): Promise<void> {
  const embedded = process.argv.includes('--embedded');
  let port = Number(process.argv[process.argv.indexOf('--port') + 1] || 0);
  if (embedded) {
    const b = await startEmbeddedBroker({ host: '127.0.0.1', port: 0 });
    port = b.port;
  }
  process.send!({ ready: port });
  process.on('message', async (m: { blast?: number; exit?: boolean }) => {
    if (m.exit) process.exit(0);
    if (m.blast) {
      const t0 = Date.now();
      const sent = await blast(port, m.blast);
      process.send!({ sent, ms: Date.now() - t0 });
    }
  });
}

// ------------------------------------------------------------------ engine side (this process)

interface Result {
  name: string;
  value: number;
  unit: string;
}

class Load {
  private constructor(readonly child: ChildProcess, readonly port: number) {}

  static async start(args: string[]): Promise<Load> {
    const child = fork(fileURLToPath(import.meta.url), ['--load', ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { ready: number }) => resolve(m.ready));
      child.once('exit', (c) => reject(new Error(`load generator exited with ${c}`)));
    });
    return new Load(child, port);
  }

  blast(ms: number): Promise<{ sent: number; ms: number }> {
    this.child.send({ blast: ms });
    return new Promise((resolve) => this.child.once('message', resolve as (m: unknown) => void));
  }

  stop(): void {
    this.child.send({ exit: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes for warm-up + measure, counting messages the engine saw during the measure window only,
 * and the engine process's CPU in that window.
 */
async function measure(load: Load, seconds: number, count: () => number): Promise<{ rate: number; cpuUsPerMsg: number }> {
  const warm = 500;
  const blasting = load.blast(warm + seconds * 1000 + 100);
  await sleep(warm);
  const c0 = count();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await sleep(seconds * 1000);
  const c1 = count();
  const cpu = process.cpuUsage(cpu0);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await blasting;
  // No drain: the case's teardown disconnects the source, and the broker drops what it still queued.
  const n = c1 - c0;
  return { rate: n / secs, cpuUsPerMsg: n ? (cpu.user + cpu.system) / n : 0 };
}

function ruleSql(kind: 'builtin' | 'native', k?: number, n?: number): string {
  const f = kind === 'native' ? 'scale(temperature, 1.8)' : 'temperature * 1.8';
  const where = k === undefined ? 'temperature > 50' : `temperature > 50 AND id % ${n} = ${k}`;
  return `SELECT id, ${f} AS f FROM sensors WHERE ${where}`;
}

async function runBroker(label: string, load: Load, seconds: number, reg: PluginRegistry, ruleCounts: number[]): Promise<Result[]> {
  const results: Result[] = [];
  const suffix = label === 'embedded' ? '' : `[${label}]`;
  const url = `mqtt://127.0.0.1:${load.port}`;
  const report = (name: string, rate: number, cpu?: number, extra = '') => {
    results.push({ name: name + suffix, value: Math.round(rate), unit: 'msg/s' });
    if (cpu !== undefined) results.push({ name: `${name}${suffix}:cpu`, value: Math.round(cpu * 100) / 100, unit: 'µs/msg' });
    if (!json) console.log(`  ${(name + suffix).padEnd(26)} ${Math.round(rate).toLocaleString('en').padStart(10)} msg/s${cpu !== undefined ? `  ${cpu.toFixed(2).padStart(7)} µs CPU/msg` : ''}${extra}`);
  };

  // ceiling: the publisher against the broker alone
  const ceil = await load.blast(seconds * 1000);
  report('publisher-ceiling', (ceil.sent / ceil.ms) * 1000);

  // floor: broker -> MQTT source -> discard
  {
    let n = 0;
    const src = createSource('mqtt', TOPIC, { server: url, qos: 0 }, {});
    await src.start((rows) => (n += rows.length), () => undefined);
    const m = await measure(load, seconds, () => n);
    await src.stop();
    report('floor', m.rate, m.cpuUsPerMsg);
  }

  /** A fresh service per case: its close() cuts the source first, so a backlog never spills into the next case. */
  const withService = async <T>(fn: (service: RuleService) => Promise<T>): Promise<T> => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-bench-rules-'));
    const store = openStore(dataDir);
    const service = createRuleService({ dataDir, store, functions: reg, broker: { url } });
    try {
      service.createStream(`CREATE STREAM sensors (id bigint, temperature float, humidity float) WITH (DATASOURCE="${TOPIC}", QOS="0")`);
      return await fn(service);
    } finally {
      await service.close();
      store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  };
  const sourceIn = (service: RuleService, id: string) => () => service.ruleStatus(id).operators[0]?.recordsIn ?? 0;
  const sink = (file: string) => [{ file: { path: file, interval: 500 } }];

  for (const [name, kind] of [['rule@1', 'builtin'], ['rule-native@1', 'native']] as const) {
    await withService(async (service) => {
      const r = await service.createRule({ id: 'one', sql: ruleSql(kind), actions: sink(`out/${name}.jsonl`) });
      if (r.status !== 'running') throw new Error(`${name}: ${r.message}`);
      const m = await measure(load, seconds, sourceIn(service, 'one'));
      const src = service.ruleStatus('one').source;
      const perBatch = src?.batches ? (src.rowsOut ?? 0) / src.batches : 0;
      report(name, m.rate, m.cpuUsPerMsg, `  (${perBatch.toFixed(0)} messages per batch on average)`);
    });
  }

  for (const n of ruleCounts) {
    await withService(async (service) => {
      const t0 = Date.now();
      const ids: string[] = [];
      for (let k = 0; k < n; k++) {
        const id = `r${n}_${k}`;
        ids.push(id);
        // Every rule reads every message; each passes its own slice of sensors to its own file.
        const r = await service.createRule({ id, sql: ruleSql(k % 2 ? 'native' : 'builtin', k, n), actions: sink(`out/many/${id}.jsonl`) });
        if (r.status !== 'running') throw new Error(`${id}: ${r.message}`);
      }
      const setup = Date.now() - t0;
      const m = await measure(load, seconds, sourceIn(service, ids[0]));
      const shared = service.ruleStatus(ids[0]).source?.rules;
      report(`rules@${n}`, m.rate, m.cpuUsPerMsg, `  (${Math.round(m.rate * n).toLocaleString('en')} rule-messages/s, ${shared} rules on one source, created in ${setup} ms)`);
    });
  }
  return results;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function startMosquitto(): Promise<{ port: number; stop(): void } | undefined> {
  if (spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error) return undefined;
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-bench-mosq-'));
  const conf = path.join(dir, 'mosquitto.conf');
  // QoS 0 messages to a busy subscriber are queued, not dropped, up to these limits
  fs.writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_queued_bytes 0\n`);
  const proc = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return { port, stop: () => (proc.kill('SIGTERM'), fs.rmSync(dir, { recursive: true, force: true })) };
    await sleep(25);
  }
  proc.kill('SIGTERM');
  return undefined;
}

const json = process.argv.includes('--json');

async function main(): Promise<void> {
  const si = process.argv.indexOf('--seconds');
  const seconds = si > 0 ? Number(process.argv[si + 1]) : 2;
  const reg = new PluginRegistry({ onLog: () => undefined });
  await reg.load(path.join(samplesDir, 'vector.so'));
  const results: Result[] = [];
  const started = Date.now();

  if (!json) console.log(`bench/rules: ${seconds} s per case after 0.5 s warm-up; engine in this process, load generator in a child (${CLIENTS} raw MQTT clients, QoS 0)\n\nembedded broker (aedes):`);
  const emb = await Load.start(['--embedded']);
  try {
    results.push(...(await runBroker('embedded', emb, seconds, reg, [100, 1000])));
  } finally {
    emb.stop();
  }

  const mosq = await startMosquitto();
  if (mosq) {
    if (!json) console.log('\nmosquitto:');
    const load = await Load.start(['--port', String(mosq.port)]);
    try {
      results.push(...(await runBroker('mosquitto', load, seconds, reg, [100])));
    } finally {
      load.stop();
      mosq.stop();
    }
  } else if (!json) console.log('\nmosquitto: not on the PATH, skipped (apt-get install -y mosquitto)');

  if (json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } else {
    const get = (n: string) => results.find((r) => r.name === n)?.value ?? 0;
    console.log(`\ntargets (printed, not asserted):`);
    console.log(`  one rule >= 100,000 msg/s: ${get('rule@1') >= 100_000 ? 'PASS' : 'MISS'} (${get('rule@1').toLocaleString('en')})`);
    console.log(`  native no slower than built-in: ${get('rule-native@1') >= get('rule@1') * 0.95 ? 'PASS' : 'MISS'} (${get('rule-native@1').toLocaleString('en')} vs ${get('rule@1').toLocaleString('en')}, 5% noise allowed)`);
    console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  reg.unloadAll();
  process.exit(0);
}

if (process.argv.includes('--load')) await loadMain();
else await main();
