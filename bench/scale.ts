/**
 * Scale-out on NATS JetStream: 1, 2 and 3 `streamplug start` processes sharing one durable consumer,
 * on this one machine. Per run: a fresh stream holding COUNT JSON messages (published before the
 * rules start, so the hosts drain a backlog flat out), a new durable, the rule `SELECT * FROM n` with
 * a file sink on every host, started together; the clock stops when the sinks have every message.
 *
 * Prints msg/s in total and per host, the CPU cost per message (of the host processes, and of
 * nats-server, from /proc/<pid>/stat), and the loss and duplicates found in the union of the sinks'
 * files (both must be 0 here: no host dies). Median of RUNS runs per host count; ratios against one
 * host in the same run. `node dist/bench/scale.js [--json] [--count N] [--runs N]`.
 * On a 2-core machine the total cannot grow with hosts: the per-message cost and the absence of loss
 * are the figures (docs/benchmarks.md).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { createStream, startNatsServer } from '../test/connectors/nats-helpers.js';
import { freePort } from '../test/connectors/helpers.js';
import { startHostProcess, type HostProcess } from '../test/helpers/host-process.js';
import { publishRange } from '../test/e2e/nats-scale-helpers.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`bench/scale: ${name} must be a positive integer`);
    process.exit(2);
  }
  return v;
};
const COUNT = opt('--count', 60_000);
const RUNS = opt('--runs', 3);
const HOSTS = [1, 2, 3];
const log = (s: string) => {
  if (!json) console.log(s);
};

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux
function cpuUs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US; // utime + stime
}

function lines(file: string): number[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: number }).id);
  } catch {
    return [];
  }
}

interface Sample {
  total: number;
  perHost: number;
  hostCpuUs: number;
  serverCpuUs: number;
  lost: number;
  duplicates: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-bench-scale-'));
  const server = await startNatsServer();
  const serverPid = server.nodes[0].pid;
  const nc = await connect({ servers: server.urls });
  const hosts: HostProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const dataDir = path.join(tmp, `h${i}`);
      fs.mkdirSync(path.join(dataDir, 'etc'), { recursive: true });
      fs.writeFileSync(path.join(dataDir, 'etc', 'nats_source.json'), JSON.stringify({ default: { server: server.urls, stream: 'S', ackWait: 10_000 } }));
      hosts.push(await startHostProcess({ dataDir, args: ['--mqtt-port', String(await freePort())], env: { STREAMPLUG_LOG_LEVEL: 'warn' } }));
    }
    const results = new Map<number, Sample>();
    for (const n of HOSTS) {
      const samples: Sample[] = [];
      for (let run = 0; run < RUNS; run++) samples.push(await once(n, run, hosts.slice(0, n), nc, serverPid));
      const pick = (k: keyof Sample) => median(samples.map((s) => s[k]));
      results.set(n, { total: pick('total'), perHost: pick('perHost'), hostCpuUs: pick('hostCpuUs'), serverCpuUs: pick('serverCpuUs'), lost: Math.max(...samples.map((s) => s.lost)), duplicates: Math.max(...samples.map((s) => s.duplicates)) });
    }
    report(results);
  } finally {
    await Promise.all(hosts.map((h) => h.kill()));
    await nc.close();
    await server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function once(n: number, run: number, hosts: HostProcess[], nc: Awaited<ReturnType<typeof connect>>, serverPid: number): Promise<Sample> {
  await createStream(nc, 'S', ['scale.in']);
  await publishRange(nc, 'scale.in', 0, COUNT);
  const out = `out/scale-${n}-${run}.jsonl`;
  for (const h of hosts) {
    await h.api('DELETE', '/rules/r');
    await h.api('DELETE', '/streams/n');
    const s = await h.api('POST', '/streams', { sql: `CREATE STREAM n () WITH (TYPE="nats", DATASOURCE="scale.in", CONF_KEY="default", DURABLE="D${n}_${run}")` });
    const r = await h.api('POST', '/rules', { id: 'r', sql: 'SELECT * FROM n', actions: [{ file: { path: out } }], triggered: false });
    if (s.status !== 201 || r.status !== 201) throw new Error(`setup on ${h.url}: ${s.text} ${r.text}`);
  }
  const cpu0 = hosts.map((h) => cpuUs(h.child.pid!));
  const srv0 = cpuUs(serverPid);
  const t0 = process.hrtime.bigint();
  await Promise.all(hosts.map((h) => h.api('POST', '/rules/r/start')));
  const end = Date.now() + 300_000;
  for (;;) {
    const outs = await Promise.all(hosts.map(async (h) => ((await h.api('GET', '/rules/r/status')).body?.sinks?.[0]?.recordsOut as number) ?? 0));
    if (outs.reduce((a, b) => a + b, 0) >= COUNT) break;
    if (Date.now() > end) throw new Error(`only ${outs.join('+')} of ${COUNT} messages reached the sinks`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const hostCpu = hosts.reduce((a, h, i) => a + cpuUs(h.child.pid!) - cpu0[i], 0);
  const srvCpu = cpuUs(serverPid) - srv0;
  await Promise.all(hosts.map((h) => h.api('POST', '/rules/r/stop'))); // flushes the files
  const seen = new Uint8Array(COUNT);
  let total = 0;
  for (const h of hosts) {
    const ids = lines(path.join(h.dataDir, out));
    total += ids.length;
    for (const id of ids) seen[id] = 1;
  }
  const distinct = seen.reduce((a, b) => a + b, 0);
  const s: Sample = { total: COUNT / secs, perHost: COUNT / secs / n, hostCpuUs: hostCpu / COUNT, serverCpuUs: srvCpu / COUNT, lost: COUNT - distinct, duplicates: total - distinct };
  log(`  ${n} host(s) run ${run + 1}: ${Math.round(s.total)} msg/s, ${s.hostCpuUs.toFixed(1)} µs host CPU/msg, lost ${s.lost}, duplicates ${s.duplicates}`);
  return s;
}

function report(r: Map<number, Sample>): void {
  const one = r.get(1)!;
  if (json) {
    const out: { name: string; value: number; unit: string }[] = [];
    for (const [n, s] of r) {
      out.push({ name: `scale_nats_${n}_hosts_total`, value: Math.round(s.total), unit: 'msg/s' });
      out.push({ name: `scale_nats_${n}_hosts_per_host`, value: Math.round(s.perHost), unit: 'msg/s' });
      out.push({ name: `scale_nats_${n}_hosts_host_cpu_per_msg`, value: Number(s.hostCpuUs.toFixed(2)), unit: 'us' });
      out.push({ name: `scale_nats_${n}_hosts_server_cpu_per_msg`, value: Number(s.serverCpuUs.toFixed(2)), unit: 'us' });
      out.push({ name: `scale_nats_${n}_hosts_total_vs_1`, value: Number((s.total / one.total).toFixed(2)), unit: 'ratio' });
      out.push({ name: `scale_nats_${n}_hosts_lost`, value: s.lost, unit: 'messages' });
      out.push({ name: `scale_nats_${n}_hosts_duplicates`, value: s.duplicates, unit: 'messages' });
    }
    console.log(JSON.stringify(out));
    return;
  }
  console.log(`scale: NATS JetStream durable consumer shared by N hosts, ${COUNT} messages, file sink (median of ${RUNS} runs; ${os.cpus().length} CPUs)`);
  console.log('hosts  total msg/s  per host msg/s  vs 1 host  host µs CPU/msg  nats-server µs CPU/msg  lost  duplicates');
  for (const [n, s] of r)
    console.log(`${String(n).padStart(5)}  ${String(Math.round(s.total)).padStart(11)}  ${String(Math.round(s.perHost)).padStart(14)}  ${(s.total / one.total).toFixed(2).padStart(9)}  ${s.hostCpuUs.toFixed(1).padStart(15)}  ${s.serverCpuUs.toFixed(1).padStart(22)}  ${String(s.lost).padStart(4)}  ${String(s.duplicates).padStart(10)}`);
}

await main();
