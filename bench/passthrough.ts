/**
 * Source -> sink passthrough through the host, rows of ~100 B and ~1 KB.
 *   native  random (burst, JSON text) -> bounded native queue -> JS, one crossing per batch, the
 *           batch still encoded (one Buffer of JSON lines, never parsed) -> filesink (the same bytes
 *           handed to its native worker thread)
 *   js      a pure-JS source building the same rows -> a pure-JS JSON-lines file sink (JSON.stringify
 *           per row, 1 MB buffer)
 *   floor   native random -> JS (encoded batches) -> discarded
 *   rule    native random -> the rules service (stream, `SELECT * FROM s`, filesink action): the
 *           same fast path through SourceHub, RunningRule and SinkRunner (rule start/stop included)
 *   isolated  as native, with random and filesink loaded with isolation "process": each in a worker
 *           process of its own; batches cross the shared-memory arena twice (worker -> host -> worker).
 *           100 B rows only; target >= 50% of native@100B.
 * Prints rows/s and CPU µs per row (process CPU: every thread, native ones included), median of
 * RUNS runs; targets are printed, never asserted. `node dist/bench/passthrough.js [--json]`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSink, createSource } from '../src/connectors/index.js';
import type { EncodedBatch, Row } from '../src/connectors/types.js';
import { PluginRegistry } from '../src/plugins/index.js';
import { createRuleService } from '../src/rules/index.js';
import { openStore } from '../src/store/index.js';
import type { NativeSinkConnector, NativeSourceConnector } from '../src/plugins/native-io.js';
import { samplesDir } from '../test/helpers/paths.js';

const RUNS = 5;
const json = process.argv.includes('--json');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-bench-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// {"count":5x,"pad":"xxx…"}: 25 bytes of JSON around the padding
const SIZES = [
  { label: '100B', pad: 75, rows: 1_000_000 },
  { label: '1KB', pad: 999, rows: 200_000 },
];

interface Result {
  rowsPerSec: number;
  cpuUsPerRow: number;
}

async function timed(rows: number, body: () => Promise<void>): Promise<Result> {
  const samples: Result[] = [];
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await body();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    samples.push({ rowsPerSec: rows / s, cpuUsPerRow: (c.user + c.system) / rows });
  }
  samples.sort((a, b) => a.rowsPerSec - b.rowsPerSec);
  return samples[Math.floor(samples.length / 2)];
}

function randomSource(pad: number, rows: number): NativeSourceConnector {
  return createSource('random', '', {
    CONFIG: JSON.stringify({ burst: true, seed: 10, pattern: { count: 50 }, pad, count: rows }),
    BUFFER_LENGTH: '8192',
    BATCH_SIZE: '2048',
  }) as NativeSourceConnector;
}

async function native(pad: number, rows: number, toSink: boolean): Promise<void> {
  const file = path.join(tmp, 'native.jsonl');
  fs.rmSync(file, { force: true });
  const sink = toSink ? (createSink('filesink', { path: file, bufferBytes: 1 << 20, queueLength: 8 }) as NativeSinkConnector) : undefined;
  await sink?.open();
  const src = randomSource(pad, rows);
  let n = 0;
  let pending: Promise<void> = Promise.resolve();
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const onRows = (batch: Row[]) => {
    n += batch.length;
    if (sink) pending = pending.then(() => sink.collect(batch));
    if (n >= rows) done();
  };
  // The fast path: batches arrive as JSON lines and go to the sink as they are.
  const onEncoded = (batch: EncodedBatch) => {
    n += batch.count;
    if (sink) pending = pending.then(() => sink.collectEncoded!(batch));
    if (n >= rows) done();
  };
  await src.start(onRows, () => undefined, onEncoded);
  await finished;
  await pending;
  await src.stop();
  await sink?.close();
}

/** The same behaviour in plain JS: rows built in batches, JSON lines buffered to a file. */
async function pureJs(pad: number, rows: number): Promise<void> {
  const file = path.join(tmp, 'js.jsonl');
  fs.rmSync(file, { force: true });
  const fd = fs.openSync(file, 'a');
  const padding = 'x'.repeat(pad);
  let buffered = '';
  const sinkCollect = async (batch: Row[]): Promise<void> => {
    for (const r of batch) buffered += JSON.stringify(r) + '\n';
    if (buffered.length >= 1 << 20) {
      fs.writeSync(fd, buffered);
      buffered = '';
    }
  };
  let state = 0x12345678;
  for (let sent = 0; sent < rows; ) {
    const batch: Row[] = [];
    for (let i = 0; i < 2048 && sent < rows; i++, sent++) {
      state = (state * 1103515245 + 12345) >>> 0;
      batch.push({ count: 50 + (state % 10), pad: padding });
    }
    await sinkCollect(batch);
    if (sent % 65536 < 2048) await new Promise((r) => setImmediate(r)); // a source yields to I/O
  }
  fs.writeSync(fd, buffered);
  fs.closeSync(fd);
}

const registry = new PluginRegistry({ onLog: () => undefined });
await registry.load(path.join(samplesDir, 'random.so'));
await registry.load(path.join(samplesDir, 'filesink.so'));
const store = openStore(path.join(tmp, 'data'));
const service = createRuleService({ dataDir: path.join(tmp, 'data'), store, functions: registry });
let ruleRuns = 0;

/** The same through a rule: CREATE STREAM (random) + SELECT * -> filesink, until every row went out. */
async function rule(pad: number, rows: number): Promise<void> {
  const id = `r${++ruleRuns}`;
  const file = path.join(tmp, 'rule.jsonl');
  fs.rmSync(file, { force: true });
  const config = JSON.stringify({ burst: true, seed: 10, pattern: { count: 50 }, pad, count: rows });
  service.createStream(`CREATE STREAM ${id} () WITH (TYPE="random", CONFIG='${config}', BUFFER_LENGTH="8192", BATCH_SIZE="2048")`);
  await service.createRule({ id, sql: `SELECT * FROM ${id}`, actions: [{ filesink: { path: file, bufferBytes: 1 << 20, queueLength: 8 } }] });
  while ((service.ruleStatus(id).sinks[0]?.recordsOut ?? 0) < rows) await new Promise((r) => setTimeout(r, 1));
  await service.stopRule(id); // flushes the file
  const st = service.ruleStatus(id);
  if (st.fastPath?.rows !== rows) throw new Error(`rule ${id} took the fast path for ${st.fastPath?.rows} of ${rows} rows`);
  await service.deleteRule(id);
  service.dropStream(id);
}

const out: { name: string; value: number; unit: string }[] = [];
const table: string[][] = [];
for (const { label, pad, rows } of SIZES) {
  const n = await timed(rows, () => native(pad, rows, true));
  const j = await timed(rows, () => pureJs(pad, rows));
  const f = await timed(rows, () => native(pad, rows, false));
  const r = await timed(rows, () => rule(pad, rows));
  out.push({ name: `native@${label}`, value: Math.round(n.rowsPerSec), unit: 'rows/s' });
  out.push({ name: `js@${label}`, value: Math.round(j.rowsPerSec), unit: 'rows/s' });
  out.push({ name: `floor@${label}`, value: Math.round(f.rowsPerSec), unit: 'rows/s' });
  out.push({ name: `rule@${label}`, value: Math.round(r.rowsPerSec), unit: 'rows/s' });
  const fmt = (x: Result) => [Math.round(x.rowsPerSec).toLocaleString('en'), x.cpuUsPerRow.toFixed(2)];
  table.push([label, ...fmt(n), ...fmt(j), ...fmt(f), ...fmt(r), (n.rowsPerSec / j.rowsPerSec).toFixed(2)]);
}
await service.close();
store.close();
registry.unloadAll();

// The same plugins again, each in a worker process of its own (isolation "process").
const isolatedRegistry = new PluginRegistry({ onLog: () => undefined });
await isolatedRegistry.load(path.join(samplesDir, 'random.so'), { isolation: 'process' });
await isolatedRegistry.load(path.join(samplesDir, 'filesink.so'), { isolation: 'process' });
const iso = await timed(SIZES[0].rows, () => native(SIZES[0].pad, SIZES[0].rows, true));
isolatedRegistry.unloadAll();
out.push({ name: 'isolated@100B', value: Math.round(iso.rowsPerSec), unit: 'rows/s' });

if (json) {
  console.log(JSON.stringify(out));
} else {
  console.log(`passthrough: native random -> host -> filesink vs pure JS (median of ${RUNS} runs; CPU = all threads)`);
  console.log('row    native rows/s  µs CPU/row   js rows/s  µs CPU/row   floor rows/s  µs CPU/row   rule rows/s  µs CPU/row   native/js');
  for (const r of table) {
    console.log(`${r[0].padEnd(6)} ${r[1].padStart(13)} ${r[2].padStart(11)} ${r[3].padStart(11)} ${r[4].padStart(11)} ${r[5].padStart(14)} ${r[6].padStart(11)} ${r[7].padStart(12)} ${r[8].padStart(11)} ${r[9].padStart(11)}`);
  }
  const n100 = out.find((o) => o.name === 'native@100B')!.value;
  const ratio = n100 / out.find((o) => o.name === 'js@100B')!.value;
  console.log(`target native >= 3x js at 100 B: ${ratio >= 3 ? 'PASS' : 'MISS'} (${ratio.toFixed(2)}x)`);
  console.log(`target native >= 1M 100-byte rows/s: ${n100 >= 1e6 ? 'PASS' : 'MISS'} (${n100.toLocaleString('en')})`);
  const isoShare = iso.rowsPerSec / n100;
  console.log(`isolated@100B ${Math.round(iso.rowsPerSec).toLocaleString('en')} rows/s, ${iso.cpuUsPerRow.toFixed(2)} µs CPU/row (host process only; the workers' CPU is not counted)`);
  console.log(`target isolated >= 50% of native at 100 B: ${isoShare >= 0.5 ? 'PASS' : 'MISS'} (${(isoShare * 100).toFixed(0)}%)`);
}
