/**
 * What it costs to call a native function from the engine: x * k through the `vector` sample plugin,
 * per row, by every route. `npm run bench:functions` (node dist/bench/functions.js) prints a table;
 * `--json` prints [{name, value, unit, k}] (k: how the route passes k). Medians of RUNS runs after a warm-up; each run is sized to
 * last about RUN_MS. Targets are printed PASS/MISS, never asserted: numbers depend on the machine.
 */
import path from 'node:path';
import koffi from 'koffi';
import { samplesDir } from '../test/helpers/paths.js';
import type { BatchFrame, FunctionInstance } from '../src/plugins/types.js';

const RUNS = 7;
const RUN_MS = 100;
const SIZES = [1, 64, 1024, 65536] as const;
const FLOOR_SIZES = [1024, 65536] as const;
const ISOLATED_SIZES = [1024, 65536] as const;
const CAPACITY = 65536;
const K = 1.0000001;

const json = process.argv.includes('--json');
const vectorSo = path.join(samplesDir, 'vector.so');

/** ns per row of `body(reps)`, which must process `rowsPerRep` rows per rep. Median of RUNS. */
function measure(rowsPerRep: number, body: (reps: number) => void): number {
  // Warm up (JIT, caches) and find how many reps fill RUN_MS.
  let reps = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    body(reps);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms >= RUN_MS / 4) {
      reps = Math.max(1, Math.round((reps * RUN_MS) / ms));
      break;
    }
    reps *= 4;
  }
  const samples: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    body(reps);
    samples.push(Number(process.hrtime.bigint() - t0) / (reps * rowsPerRep));
  }
  return median(samples);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function input(n: number): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = (i % 1000) * 0.25 - 100;
  return x;
}

// Results land here; the sink keeps the JIT from dropping work it can prove unused.
let sink = 0;

function benchJs(x: Float64Array, out: Float64Array): number {
  return measure(x.length, (reps) => {
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < x.length; i++) out[i] = x[i] * K;
    }
    sink += out[reps % out.length];
  });
}

function benchKoffi(x: Float64Array, out: Float64Array): Map<string, number> {
  const lib = koffi.load(vectorSo);
  const one = lib.func('double vector_scale_one(double x, double k)');
  // void * parameters: koffi hands the typed array's memory over without converting it.
  const batch = lib.func('void vector_scale_batch(void *x, double k, void *out, size_t n)');
  const res = new Map<string, number>();
  const n1 = 4096;
  res.set('koffi', measure(n1, (reps) => {
    let s = 0;
    for (let r = 0; r < reps; r++) for (let i = 0; i < n1; i++) s += one(x[i], K) as number;
    sink += s;
  }));
  for (const n of SIZES) {
    res.set(`koffi-batch@${n}`, measure(n, (reps) => {
      for (let r = 0; r < reps; r++) batch(x, K, out, n);
      sink += out[0];
    }));
  }
  // Unmapped before the registry loads the file: it refuses a library still mapped from elsewhere.
  lib.unload();
  return res;
}

/** Engineer A's registry, or why it cannot be used here (e.g. the host addon is not built). */
async function openScale(): Promise<{ instance: FunctionInstance } | { reason: string }> {
  try {
    // Imported lazily so the JS and koffi figures still print when the registry cannot load.
    const { PluginRegistry } = await import('../src/plugins/registry.js');
    const reg = new PluginRegistry({ onLog: () => {} });
    await reg.load(vectorSo);
    const fn = reg.getFunction('scale');
    if (!fn) return { reason: `the registry loaded ${vectorSo} but has no function scale` };
    return { instance: fn.instantiate('bench') };
  } catch (e) {
    return { reason: (e as Error).message.split('\n')[0] };
  }
}

function benchRegistry(instance: FunctionInstance, x: Float64Array): Map<string, number> {
  const res = new Map<string, number>();
  const n1 = 4096;
  res.set('scalar', measure(n1, (reps) => {
    let s = 0;
    for (let r = 0; r < reps; r++) for (let i = 0; i < n1; i++) s += instance.call(x[i], K) as number;
    sink += s;
  }));
  const frame: BatchFrame = instance.prepare(CAPACITY);
  (frame.args[0] as Float64Array).set(x);
  (frame.args[1] as Float64Array).fill(K);
  const result = frame.result as Float64Array;
  // frame.argNulls stays unread: x and k have no nulls, and a mask never handed to JS is passed to
  // the plugin as NULL without being scanned, as a caller whose columns have no nulls should do.
  // k unmarked: the plugin streams it as a third array (x[i] * k[i]). Shown, not a target.
  res.set(`batch-kcol@${CAPACITY}`, measure(CAPACITY, (reps) => {
    for (let r = 0; r < reps; r++) frame.run(CAPACITY);
    sink += result[0];
  }));
  // k as the engine passes a literal (`scale(x, 1.0000001)`): repeated and marked constant, so the
  // plugin reads it once, as koffi's vector_scale_batch gets it as one double. Like for like.
  frame.setConstant(1, true);
  for (const n of SIZES) {
    res.set(`batch@${n}`, measure(n, (reps) => {
      for (let r = 0; r < reps; r++) frame.run(n);
      sink += result[0];
    }));
  }
  for (const n of FLOOR_SIZES) {
    // The plugin's own call looped in C: what a batch costs with no JavaScript crossing at all.
    const samples: number[] = [];
    const iterations = Math.max(1, Math.round(2e6 / n));
    frame.timeNative(n, iterations); // warm-up
    for (let r = 0; r < RUNS; r++) samples.push(frame.timeNative(n, iterations) / (n * iterations));
    res.set(`floor@${n}`, median(samples));
  }
  // Sanity: the frame computed x * k, so the figures are for real work.
  frame.run(CAPACITY);
  for (const i of [0, 1, 999, CAPACITY - 1]) {
    if (result[i] !== x[i] * K) throw new Error(`scale(x, k) gave ${result[i]} at row ${i}; expected ${x[i] * K}`);
  }
  frame.close();
  return res;
}

/**
 * The same plugin in a worker process of its own (isolation "process"): a scalar call and a frame
 * whose columns live in the shared arena, so a batch costs one round trip and no copy.
 */
async function benchIsolated(x: Float64Array): Promise<Map<string, number> | { reason: string }> {
  let reg;
  try {
    const { PluginRegistry } = await import('../src/plugins/registry.js');
    reg = new PluginRegistry({ onLog: () => {} });
    await reg.loadIsolated(vectorSo);
  } catch (e) {
    return { reason: (e as Error).message.split('\n')[0] };
  }
  const res = new Map<string, number>();
  const instance = reg.requireFunction('scale').instantiate('bench');
  const n1 = 1024;
  res.set('isolated-scalar', measure(n1, (reps) => {
    let s = 0;
    for (let r = 0; r < reps; r++) for (let i = 0; i < n1; i++) s += instance.call(x[i], K) as number;
    sink += s;
  }));
  const frame = instance.prepare(CAPACITY);
  (frame.args[0] as Float64Array).set(x);
  (frame.args[1] as Float64Array).fill(K);
  frame.setConstant(1, true);
  const result = frame.result as Float64Array;
  for (const n of ISOLATED_SIZES) {
    res.set(`isolated-batch@${n}`, measure(n, (reps) => {
      for (let r = 0; r < reps; r++) frame.run(n);
      sink += result[0];
    }));
  }
  frame.run(CAPACITY);
  for (const i of [0, 1, 999, CAPACITY - 1]) {
    if (result[i] !== x[i] * K) throw new Error(`isolated scale(x, k) gave ${result[i]} at row ${i}; expected ${x[i] * K}`);
  }
  frame.close();
  instance.close();
  reg.unloadAll();
  return res;
}

function fmt(v: number | undefined, digits = 2): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(digits);
}

async function main(): Promise<void> {
  const x = input(CAPACITY);
  const out = new Float64Array(CAPACITY);
  const r = new Map<string, number>();
  r.set('js', benchJs(x, out));
  for (const [k, v] of benchKoffi(x, out)) r.set(k, v);
  const opened = await openScale();
  if ('instance' in opened) {
    for (const [k, v] of benchRegistry(opened.instance, x)) r.set(k, v);
    opened.instance.close();
  }
  const isolated = await benchIsolated(x);
  if (isolated instanceof Map) for (const [k, v] of isolated) r.set(k, v);

  const names = ['js', 'scalar', 'koffi', ...SIZES.map((n) => `batch@${n}`), `batch-kcol@${CAPACITY}`, ...SIZES.map((n) => `koffi-batch@${n}`), ...FLOOR_SIZES.map((n) => `floor@${n}`), 'isolated-scalar', ...ISOLATED_SIZES.map((n) => `isolated-batch@${n}`)];
  // How each route gets k: the frame routes mark it constant (frame.setConstant(1, true)).
  const kAs = (name: string): string =>
    name.startsWith('batch-kcol') ? 'column' : /^(isolated-)?batch|^floor/.test(name) ? 'constant' : name.startsWith('koffi-batch') ? 'double' : 'scalar';
  if (json) {
    const rows = names.filter((n) => r.has(n)).map((name) => ({ name, value: Number(r.get(name)!.toFixed(3)), unit: 'ns/row', k: kAs(name) }));
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    if (!('instance' in opened)) process.stderr.write(`registry figures missing: ${opened.reason}\n`);
    if (!(isolated instanceof Map)) process.stderr.write(`isolated figures missing: ${isolated.reason}\n`);
    return;
  }

  const floorFor = (name: string): number | undefined => r.get(name.endsWith('@65536') ? 'floor@65536' : 'floor@1024');
  console.log(`x * k per row, ns (median of ${RUNS} runs; node ${process.version}, ${process.arch})`);
  console.log('route'.padEnd(18) + 'ns/row'.padStart(10) + 'x floor'.padStart(10) + 'vs scalar'.padStart(12) + '  k passed as');
  for (const name of names) {
    const v = r.get(name);
    const floor = floorFor(name);
    const scalar = r.get('scalar');
    const vsScalar = v !== undefined && scalar !== undefined ? `${fmt(scalar / v, 1)}x less` : 'n/a';
    console.log(name.padEnd(18) + fmt(v).padStart(10) + (v !== undefined && floor ? fmt(v / floor) : 'n/a').padStart(10) + vsScalar.padStart(12) + `  ${kAs(name)}`);
  }
  console.log('(x is always a column; "constant": a full column marked is_constant, read once by the plugin)');
  if (!('instance' in opened)) console.log(`\nregistry routes (scalar, batch, floor) not measured: ${opened.reason}`);
  if (!(isolated instanceof Map)) console.log(`\nisolated routes not measured: ${isolated.reason}`);

  const g = (n: string) => r.get(n);
  const targets: [string, boolean | undefined][] = [
    ['batch@1024 <= 1.5x floor@1024', both(g('batch@1024'), g('floor@1024'), (b, f) => b <= 1.5 * f)],
    ['batch@1024 >= 10x cheaper per row than scalar', both(g('batch@1024'), g('scalar'), (b, s) => s >= 10 * b)],
    ...[64, 1024, 65536].map((n): [string, boolean | undefined] => [`batch@${n} <= koffi-batch@${n}`, both(g(`batch@${n}`), g(`koffi-batch@${n}`), (b, k) => b <= k)]),
    ['scalar <= koffi (scalar)', both(g('scalar'), g('koffi'), (s, k) => s <= k)],
    // Isolation "process" (a worker over shared memory): one round trip per call or batch.
    ['isolated-batch@65536 <= 2x batch@65536', both(g('isolated-batch@65536'), g('batch@65536'), (i, b) => i <= 2 * b)],
    ['isolated-scalar <= 10 us per call', both(g('isolated-scalar'), 1, (i) => i <= 10_000)],
  ];
  console.log('');
  console.log('target'.padEnd(49) + 'result');
  for (const [what, ok] of targets) console.log(what.padEnd(49) + (ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS'));
  if (!Number.isFinite(sink)) console.log(`(checksum ${sink})`); // keeps `sink` observable
}

function both(a: number | undefined, b: number | undefined, f: (a: number, b: number) => boolean): boolean | undefined {
  return a === undefined || b === undefined ? undefined : f(a, b);
}

await main();
