#!/usr/bin/env node
// Load / call / unload the sample plugins over and over through the registry, so that valgrind
// (scripts/valgrind-cycles.sh) sees every native path of native/host many times: dlopen, init,
// instances and their state, the scalar entry, batches of strings and numbers, groups, frames and
// their finalizers, plugin errors, forced unloads, deinit and dlclose.
//
//   node --expose-gc scripts/valgrind-cycles.mjs [--cycles N] [--samples-only] [--samples DIR]
//   (default 10000 cycles; needs `npm run build`, build/plugins and, unless --samples-only, the
//   corpus's runtime-error.so for the plugin-error path; --samples reads the sample plugins from DIR
//   instead of build/plugins)
//
// A cycle is one load + calls + unload of one plugin; the plugins take turns, so N cycles are N
// loads and N unloads in total. Prints one summary line; exits 1 on a wrong answer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { PluginRegistry } = await import(path.join(root, 'dist/src/plugins/registry.js'));
const { checkPluginFile } = await import(path.join(root, 'dist/src/check/index.js'));

const option = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const cycles = Number(option('--cycles') ?? 10000);
if (!Number.isInteger(cycles) || cycles < 1) throw new Error(`--cycles must be a positive integer, got ${option('--cycles')}`);
const samples = path.resolve(option('--samples') ?? path.join(root, 'build', 'plugins'));

const plugin = (dir, name) => (dir === 'plugins' ? path.join(samples, name) : path.join(root, 'build', dir, name));
// The pre-load check is pure JavaScript (no native code to watch) and costs ~20 ms a file under
// valgrind: it runs once per file, and every later load reuses its report.
const reports = new Map();
const preloadCheck = (file) => {
  if (!reports.has(file)) reports.set(file, checkPluginFile(file));
  return reports.get(file);
};
const registry = new PluginRegistry({ onLog: () => {}, check: preloadCheck });
// The crash journal mapped as in a host: every hook below writes its slot (native/host/journal.cc).
const { hostAddon } = await import(path.join(root, 'dist/src/plugins/native-addon.js'));
const journal = path.join(os.tmpdir(), `streamplug-valgrind-journal-${process.pid}`);
hostAddon().journalOpen(journal);
process.on('exit', () => fs.rmSync(journal, { force: true }));

function check(ok, what) {
  if (!ok) {
    console.error(`valgrind-cycles: wrong answer: ${what}`);
    process.exit(1);
  }
}

async function rejectsCode(f, code) {
  try {
    await f();
  } catch (e) {
    check(e.code === code, `expected ${code}, got ${e.code}: ${e.message}`);
    return;
  }
  check(false, `expected ${code}, nothing was thrown`);
}

function throwsCode(f, code) {
  try {
    f();
  } catch (err) {
    check(err.code === code, `expected ${code}, got ${err.code}: ${err.message}`);
    return;
  }
  check(false, `expected ${code}, nothing was thrown`);
}

const str = (...values) => ({ type: 'string', values });
const f64 = (...values) => ({ type: 'float64', values: Float64Array.from(values) });

const scenarios = [
  [plugin('plugins', 'echo.so'), () => {
    const echo = registry.requireFunction('echo').instantiate('r1');
    check(echo.call(1.5) === 1.5 && echo.call('héllo') === 'héllo' && echo.call(null) === null, 'echo scalars');
    check(echo.call(Buffer.from('ab')).equals(Buffer.from('ab')) && echo.call(7n) === 7n, 'echo bytes, int64');
    const out = echo.callBatch([{ type: 'string', values: ['a', 'bc', ''], nulls: Uint8Array.of(0, 0, 1) }], 3);
    check(out.values[1] === 'bc' && out.nulls[2] === 1, 'echo string batch');
    echo.close();
  }],
  [plugin('plugins', 'accumulateWordCount.so'), () => {
    const fn = registry.requireFunction('accumulateWordCount');
    fn.validate([{ type: 'string' }, { type: 'string', literal: ',' }]);
    const a = fn.instantiate('rule-a');
    const b = fn.instantiate('rule-b'); // left open: the forced unload closes it
    check(a.call('john,alice,tom', ',') === 3n && a.call('rose,bob', ',') === 5n, 'running total');
    check(b.callBatch([str('x,y', 'z'), str(',', ',')], 2).values[1] === 3n, 'second rule, own state');
    a.close();
    return { force: true };
  }],
  [plugin('plugins', 'vector.so'), () => {
    const scale = registry.requireFunction('scale').instantiate('r');
    const frame = scale.prepare(256);
    frame.args[0].fill(2);
    frame.args[1].fill(1.5);
    frame.argNulls[1][200] = 1;
    frame.run(256);
    check(frame.result[0] === 3 && frame.resultNulls[200] === 1 && frame.resultNulls[199] === 0, 'frame');
    check(frame.timeNative(64, 2) > 0, 'timeNative');
    check(scale.callBatch([f64(1, 2), f64(3, 4)], 2).values[1] === 8 && scale.call(2, 4) === 8, 'scale batch, scalar');
    return { force: true, after: () => throwsCode(() => frame.run(1), 'E_PLUGIN_NOT_LOADED') }; // frame outlives its plugin
  }],
  [plugin('plugins', 'countPlusOne.so'), () => {
    const agg = registry.requireFunction('countPlusOne').instantiate('r');
    const out = agg.callGroups([f64(1, 2, 3, 4, 5)], 5, Uint32Array.of(0, 3, 3, 5));
    check(out.values[0] === 4n && out.values[1] === 1n && out.values[2] === 3n && agg.call(9) === 2n, 'groups');
    agg.close();
  }],
];
if (!process.argv.includes('--samples-only')) {
  // A C++ exception out of a hook, caught by the host (build/crash, `npm run build:corpus`).
  scenarios.push([plugin('crash', 'throw_call.so'), () => {
    const fn = registry.requireFunction('throw_call').instantiate('r');
    throwsCode(() => fn.call(1), 'E_FUNCTION_FAILED');
    throwsCode(() => fn.callBatch([f64(1, 2)], 2), 'E_FUNCTION_FAILED');
    fn.close();
  }]);
  scenarios.push([plugin('corpus', 'runtime-error.so'), () => {
    const fn = registry.requireFunction('failIfNegative').instantiate('r');
    throwsCode(() => fn.call(-1), 'E_FUNCTION_FAILED');
    throwsCode(() => fn.callBatch([f64(1, -1)], 2), 'E_FUNCTION_FAILED');
    fn.close();
  }]);
  // Contract fidelity: a table walked by the plugin's own entry size, and a 1.0-header descriptor.
  scenarios.push([plugin('corpus', 'grown.so'), () => {
    const fn = registry.requireFunction('grownTimes3').instantiate('r');
    check(fn.call(7) === 21, 'grown table, entry 1 at the plugin stride');
    fn.close();
  }]);
  scenarios.push([plugin('corpus', 'header-1.0.so'), () => {
    const fn = registry.requireFunction('goodDouble10').instantiate('r');
    check(fn.call(2) === 4, '1.0 descriptor');
    fn.close();
  }]);
}

const started = process.hrtime.bigint();
for (let i = 0; i < cycles; i++) {
  const [file, body] = scenarios[i % scenarios.length];
  const info = await registry.load(file);
  const how = body() ?? {};
  registry.unload(info.name, { force: how.force === true });
  how.after?.();
  if (i % 200 === 199 && globalThis.gc) {
    globalThis.gc(); // finalizers of frames, scalar entries and instances run inside the measured run
    await new Promise((resolve) => setImmediate(resolve));
  }
}
if (!process.argv.includes('--samples-only')) {
  // Refusals by the loader itself (after dlopen, before any hook): nothing may leak or be misread.
  const refusals = [['grown-mixed.so', 'E_BAD_DESCRIPTOR'], ['grown-small.so', 'E_BAD_DESCRIPTOR'], ['huge-arity.so', 'E_LIMIT']];
  for (let i = 0; i < Math.min(cycles, 300); i++) {
    const [file, code] = refusals[i % refusals.length];
    await rejectsCode(() => registry.load(plugin('corpus', file)), code);
  }
}
globalThis.gc?.();
await new Promise((resolve) => setImmediate(resolve));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(`valgrind-cycles: ${cycles} load/call/unload cycles over ${scenarios.length} plugins in ${seconds.toFixed(1)} s`);
