#!/usr/bin/env node
// Open / push / close native sources and open / collect / close native sinks over and over through
// the connector classes the host uses (createSource / createSink -> NativeSourceConnector /
// NativeSinkConnector), so that valgrind (scripts/valgrind-cycles.sh --io) sees every native path of
// native/host/io*.cc many times: the control and worker threads, source_push, source_push_many,
// row_*, the queue and its overflow policies, drains (JSON lines lent to JS, raw messages, rows),
// encoded batches shared with a sink, copied JSON lines, typed columns, close and the finalizers.
//
//   node --expose-gc scripts/valgrind-io-cycles.mjs [--cycles N]
//   (default 10000; needs `npm run build`, the addon, build/plugins and a C compiler for the
//   test fixture test/io/fixtures/iofx.c)
//
// Each cycle opens, uses and closes one source and one sink, so N cycles are N source and N sink
// open/close pairs. At the end every native source, sink, thread, queued item, sink batch and lent
// buffer must be gone (the addon's ioLive() counts back to zero). Prints one summary line; exits 1
// on a wrong answer or anything left live.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { PluginRegistry } = await import(path.join(root, 'dist/src/plugins/registry.js'));
const { createSink, createSource } = await import(path.join(root, 'dist/src/connectors/index.js'));
const { ioLive } = await import(path.join(root, 'dist/src/plugins/native-io.js'));

const option = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const cycles = Number(option('--cycles') ?? 10000);
if (!Number.isInteger(cycles) || cycles < 1) throw new Error(`--cycles must be a positive integer, got ${option('--cycles')}`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-valgrind-io-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
// The fixture source with a thread of its own (fx_threads) and the batch-push one (fx_many).
const iofx = path.join(tmp, 'iofx.so');
execFileSync('cc', ['-shared', '-fPIC', '-O2', '-g', '-pthread', '-std=c99', `-I${path.join(root, 'native/include')}`,
  path.join(root, 'test/io/fixtures/iofx.c'), '-o', iofx], { stdio: ['ignore', 'ignore', 'inherit'] });

function check(ok, what) {
  if (!ok) {
    console.error(`valgrind-io-cycles: wrong answer: ${what}`);
    process.exit(1);
  }
}

const registry = new PluginRegistry({ onLog: () => {} });
await registry.load(path.join(root, 'build', 'plugins', 'random.so'));
await registry.load(path.join(root, 'build', 'plugins', 'filesink.so'));
await registry.load(iofx);

const props = (config, extra = {}) => ({ CONFIG: JSON.stringify(config), ...extra });
// [what, stream properties, rows expected]; the sources take turns.
const sources = [
  // burst: blocks through source_push_many, canonical JSON -> JSON lines lent to JS
  ['random', props({ burst: true, seed: 10, pattern: { count: 50 }, pad: 20, count: 8 }), 8],
  // structured rows through row_begin / row_* / row_push
  ['random', props({ burst: true, mode: 'rows', seed: 3, pattern: { a: 1, b: 2 }, sequence: true, count: 4 }), 4],
  // canonical and non-canonical messages mixed in blocks, a queue smaller than a block (block policy)
  ['fx_many', props({ count: 6, block: 3, spaced: 1 }, { BUFFER_LENGTH: '2' }), 6],
  // the plugin's own producer thread (no run hook), single source_push calls, drop-oldest
  ['fx_threads', props({ threads: 1, count: 3 }, { BUFFER_LENGTH: '8', OVERFLOW: 'drop-oldest' }), 3],
];
const outFile = path.join(tmp, 'out.jsonl');
const typedFile = path.join(tmp, 'typed.txt');
let encodedRows = 0;
let typedBatches = 0;

async function sourceCycle(i) {
  const [type, p, expected] = sources[i % sources.length];
  const src = createSource(type, '', p);
  const rows = [];
  const encoded = [];
  let n = 0;
  let done;
  const all = new Promise((resolve) => (done = resolve));
  const onRows = (r) => {
    rows.push(...r);
    if ((n += r.length) >= expected) done();
  };
  const onEncoded = (batch) => {
    encoded.push(batch);
    if ((n += batch.count) >= expected) done();
  };
  await src.start(onRows, () => {}, onEncoded);
  await all;
  await src.stop();
  check(n === expected, `${type}: ${n} rows, expected ${expected}`);
  return { rows, encoded };
}

async function sinkCycle(i, { rows, encoded }) {
  const turn = i % 3;
  const sink = createSink(turn === 2 ? 'fx_typed' : 'filesink', { path: turn === 2 ? typedFile : outFile, bufferBytes: 64 });
  await sink.open();
  if (turn === 0 && encoded.length > 0) {
    for (const batch of encoded) await sink.collectEncoded(batch); // shared with the source's drain, no copy
    encodedRows += encoded.reduce((a, b) => a + b.count, 0);
  } else {
    const r = rows.length > 0 ? rows : encoded.flatMap((b) => b.rows());
    await sink.collect(r); // JSON lines copied from text (filesink) or typed columns (fx_typed)
    if (turn === 2) typedBatches++;
    else encodedRows += r.length;
  }
  await sink.close();
}

const settle = async () => {
  for (let k = 0; k < 500; k++) {
    globalThis.gc?.();
    await new Promise((resolve) => setImmediate(resolve));
    const live = ioLive();
    if (Object.values(live).every((v) => v === 0)) return live;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return ioLive();
};

const started = process.hrtime.bigint();
for (let i = 0; i < cycles; i++) {
  await sinkCycle(i, await sourceCycle(i));
  if (i % 200 === 199 && globalThis.gc) {
    globalThis.gc(); // finalizers of lent buffers and wake functions run inside the measured run
    await new Promise((resolve) => setImmediate(resolve));
  }
}
const live = await settle();
check(Object.values(live).every((v) => v === 0), `still live after ${cycles} cycles: ${JSON.stringify(live)}`);
const lines = fs.readFileSync(outFile, 'utf8').split('\n').filter(Boolean);
check(lines.length === encodedRows, `filesink wrote ${lines.length} lines, expected ${encodedRows}`);
check(lines.every((l) => typeof JSON.parse(l) === 'object'), 'filesink lines are JSON objects');
const typed = fs.readFileSync(typedFile, 'utf8');
check(typedBatches === 0 || typed.length > 0, 'fx_typed wrote its batches');
registry.unloadAll();
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(`valgrind-io-cycles: ${cycles} source and ${cycles} sink open/close cycles in ${seconds.toFixed(1)} s, nothing left live`);
