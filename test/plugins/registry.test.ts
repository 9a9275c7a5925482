/** The registry over real compiled plugins, checked by src/check before any dlopen. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { hostAddon, type PluginLogLine } from '../../src/plugins/native-addon.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import type { Column } from '../../src/plugins/types.js';
import { buildFx, buildFxCpp, buildFxNode, fixtureDir } from './fixtures.js';

const logs: PluginLogLine[] = [];
const registry = new PluginRegistry({ onLog: (line) => logs.push(line) });
const fxFile = buildFx('fx');
const info = await registry.load(fxFile);
after(() => registry.unloadAll());

const f64 = (...v: number[]): Column => ({ type: 'float64', values: Float64Array.from(v) });
const str = (...v: string[]): Column => ({ type: 'string', values: v });

describe('registry: load and look up', () => {
  it('registers the plugin and its functions, names case-insensitive', () => {
    assert.equal(info.name, 'fx');
    assert.equal(info.version, '1.2.3');
    assert.equal(info.flavour, 'so');
    assert.equal(info.contract, '1.0');
    assert.equal(info.file, fxFile);
    assert.ok(info.functions.includes('fx_wordcount'));
    assert.deepEqual(registry.list().map((p) => p.name), ['fx']);
    const fn = registry.getFunction('FX_ADD1')!;
    assert.equal(fn.name, 'fx_add1');
    assert.equal(fn.plugin, 'fx');
    assert.deepEqual([fn.kind, fn.minArgs, fn.maxArgs, fn.argTypes, fn.resultType], ['scalar', 1, 1, ['float64'], 'float64']);
    assert.equal(registry.getFunction('fx_wordcount')!.stateful, true);
    assert.deepEqual(registry.getFunction('fx_wordcount')!.literalArgs, [false, true]);
    assert.equal(registry.listFunctions().length, info.functions.length);
    assert.throws(() => registry.requireFunction('nope'), { code: 'E_UNKNOWN_FUNCTION' });
  });

  it('reports what the plugin holds through host->alloc', () => {
    assert.deepEqual(registry.status('fx')!.memory, { bytes: 8, blocks: 1 });
  });

  it('runs the pre-load check first: a truncated library is refused, never mapped', async () => {
    const file = path.join(fixtureDir, 'truncated.so');
    fs.writeFileSync(file, fs.readFileSync(buildFx('fx-for-truncation')).subarray(0, 4000)); // dlopen would SIGBUS
    await assert.rejects(() => registry.load(file), (err: Error & { code?: string }) => /^E_/.test(err.code ?? ''));
    assert.equal(hostAddon().isMapped(file), false);
    assert.equal(registry.has('fx-truncated'), false);
  });

  it('refuses a second plugin with the same name', async () => {
    const copy = path.join(fixtureDir, 'fx-copy.so');
    fs.copyFileSync(fxFile, copy);
    await assert.rejects(() => registry.load(copy), { code: 'E_PLUGIN_LOADED', message: /plugin fx is already loaded from .*fx\.so/ });
    assert.equal(hostAddon().isMapped(copy), false);
  });

  it('refuses a plugin whose function names another plugin already provides, before its init runs', async () => {
    const trace = path.join(fixtureDir, 'deinit-dup.txt');
    process.env.FX_DEINIT_FILE = trace;
    const file = buildFx('fx-dup', ['FX_NAME="fxdup"']);
    await assert.rejects(() => registry.load(file), {
      code: 'E_DUPLICATE_FUNCTION',
      message: /function fx_add1 is already provided by plugin fx/,
    });
    assert.equal(registry.has('fxdup'), false);
    assert.equal(hostAddon().isMapped(file), false);
    assert.equal(fs.existsSync(trace), false, 'neither init nor deinit ran');
  });
});

describe('registry: calling functions', () => {
  it('calls a scalar per batch, keeps nulls, widens int64 to float64', () => {
    const add1 = registry.requireFunction('fx_add1').instantiate('r1');
    const out = add1.callBatch([{ type: 'float64', values: Float64Array.of(1, 0, 2.5), nulls: Uint8Array.of(0, 1, 0) }], 3);
    assert.equal(out.type, 'float64');
    assert.deepEqual([out.values[0], out.values[2]], [2, 3.5]);
    assert.deepEqual(out.nulls, Uint8Array.of(0, 1, 0));
    assert.deepEqual(add1.callBatch([{ type: 'int64', values: BigInt64Array.of(41n) }], 1).values, Float64Array.of(42));
    assert.equal(add1.call(9), 10);
    assert.equal(add1.call(null), null);
    add1.close();
  });

  it('fails the batch with the plugin\'s message', () => {
    const add1 = registry.requireFunction('fx_add1').instantiate('rule-x');
    assert.throws(() => add1.callBatch([f64(1, -5000)], 2), {
      code: 'E_FUNCTION_FAILED',
      message: 'function fx_add1 (plugin fx, rule rule-x) call failed: value -5000 at row 1 is below -1000',
    });
    add1.close();
  });

  it('checks arity and types per call', () => {
    const add1 = registry.requireFunction('fx_add1').instantiate('r');
    assert.throws(() => add1.callBatch([], 0), { code: 'E_ARITY', message: /fx_add1\(\) takes 1 argument\(s\), got 0/ });
    assert.throws(() => add1.callBatch([str('a')], 1), { code: 'E_ARG_TYPE', message: /argument 1 is a string column, expected float64/ });
    assert.throws(() => add1.call(true), { code: 'E_ARG_TYPE' });
    add1.close();
  });

  it('returns the type of argument 0 for like-arg0 (strings, bytes, int64, bool)', () => {
    const echo = registry.requireFunction('fx_echo').instantiate('r');
    const s = echo.callBatch([{ type: 'string', values: ['héllo', '', 'x'], nulls: Uint8Array.of(0, 0, 1) }], 3);
    assert.equal(s.type, 'string');
    assert.deepEqual(s.values.slice(0, 2), ['héllo', '']);
    assert.deepEqual(s.nulls, Uint8Array.of(0, 0, 1));
    assert.deepEqual(echo.callBatch([{ type: 'bytes', values: [Uint8Array.of(0, 255)] }], 1).values, [Buffer.from([0, 255])]);
    assert.equal(echo.call(7n), 7n);
    assert.equal(echo.call(true), true);
    assert.equal(echo.call('ok'), 'ok');
    echo.close();
  });

  it('calls an aggregate once per group', () => {
    const agg = registry.requireFunction('fx_count_plus_one').instantiate('r');
    const out = agg.callGroups([f64(1, 2, 3, 4, 5)], 5, Uint32Array.of(0, 3, 3, 5));
    assert.deepEqual(out, { type: 'int64', values: BigInt64Array.of(4n, 1n, 3n), nulls: undefined });
    assert.equal(agg.call(50), 2n);
    assert.throws(() => agg.callGroups([f64(1)], 1, Uint32Array.of(0, 2)), { code: 'E_BAD_REQUEST' });
    assert.throws(() => agg.callBatch([f64(1)], 1), { code: 'E_BAD_REQUEST', message: /aggregate/ });
    agg.close();
  });

  it('returns strings set row by row and the rule id', () => {
    const upper = registry.requireFunction('fx_upper').instantiate('r');
    assert.deepEqual(upper.callBatch([str('abc', 'Zz9')], 2).values, ['ABC', 'ZZ9']);
    upper.close();
    const rule = registry.requireFunction('fx_rule').instantiate('rule-42');
    assert.equal(rule.call(), 'rule-42');
    rule.close();
    const data = registry.requireFunction('fx_plugin_data').instantiate('r');
    assert.equal(data.call(), 4242n, 'plugin_data returns what init stored');
    data.close();
  });
});

describe('registry: validate and per-rule state (eKuiper accumulateWordCount)', () => {
  const fn = () => registry.requireFunction('fx_wordcount');

  it('checks arity, types and literal arguments, then the plugin\'s validate hook', () => {
    const closes = registry.requireFunction('fx_closes').instantiate('r');
    const before = closes.call();
    assert.throws(() => fn().validate([{ type: 'string' }]), { code: 'E_ARITY' });
    assert.throws(() => fn().validate([{ type: 'int64' }, { type: 'string', literal: ',' }]), { code: 'E_ARG_TYPE' });
    assert.throws(() => fn().validate([{ type: 'string' }, { type: 'string' }]), { code: 'E_ARG_LITERAL', message: /argument 2 must be a literal/ });
    assert.throws(() => fn().validate([{ type: 'string' }, { type: 'string', literal: '' }]), {
      code: 'E_VALIDATE_REFUSED',
      message: /fx_wordcount \(plugin fx\) validate failed: the separator must be a non-empty string literal/,
    });
    fn().validate([{ type: 'string' }, { type: 'string', literal: ',' }]);
    assert.equal(closes.call(), before, 'the ctx validate gets is no instance: no close hook runs for it');
    closes.close();
  });

  it('keeps a running total per rule', () => {
    const inputs = ['john,alice,tom', 'rose,bob,mary', 'alice,tom', 'john,alice,tom,rose,bob,mary,alice,tom', 'rose,bob,mary,alice', 'tom,john,alice,tom,rose', 'bob,mary', 'alice,tom,rose'];
    const a = fn().instantiate('rule-a');
    const b = fn().instantiate('rule-b');
    assert.deepEqual(inputs.map((s) => a.call(s, ',')), [3n, 6n, 8n, 16n, 20n, 25n, 27n, 30n]);
    assert.equal(b.call('x,y', ','), 2n, 'another rule has its own state');
    const batch = a.callBatch([str('a,b', 'c'), str(',', ',')], 2);
    assert.deepEqual(batch.values, BigInt64Array.of(32n, 33n));
    a.close();
    b.close();
  });
});

describe('registry: frames', () => {
  it('runs a batch over reusable native arrays', () => {
    const add1 = registry.requireFunction('fx_add1').instantiate('r');
    const frame = add1.prepare(4);
    assert.equal(frame.capacity, 4);
    (frame.args[0] as Float64Array).set([1, 2, 3]);
    frame.argNulls[0][1] = 1;
    frame.run(3);
    assert.deepEqual(Array.from(frame.result as Float64Array).slice(0, 3), [2, 0, 4]);
    assert.deepEqual(Array.from(frame.resultNulls).slice(0, 3), [0, 1, 0]);
    assert.ok(frame.timeNative(3, 10) > 0);
    assert.throws(() => frame.run(5), { code: 'E_BAD_REQUEST', message: /0\.\.4/ });
    assert.throws(() => (add1 as typeof add1 & { prepare(c: number, t: string[]): unknown }).prepare(4, ['int64']), { code: 'E_ARG_TYPE', message: /declared float64/ });
    frame.close();
    assert.throws(() => frame.run(1), { code: 'E_INSTANCE_CLOSED' });
    add1.close();
  });

  it('refuses string signatures', () => {
    const upper = registry.requireFunction('fx_upper').instantiate('r');
    assert.throws(() => upper.prepare(8), { code: 'E_ARG_TYPE', message: /use callBatch/ });
    upper.close();
  });
});

describe('registry: unload', () => {
  it('refuses while instances are open, then with force closes them, runs deinit and unmaps', async () => {
    const trace = path.join(fixtureDir, 'deinit-unload.txt');
    process.env.FX_DEINIT_FILE = trace;
    const file = buildFx('fx-unload', ['FX_NAME="fxu"', 'FX_PREFIX="fxu_"']);
    await registry.load(file);
    const closes = registry.requireFunction('fxu_closes').instantiate('r');
    const before = closes.call() as bigint;
    const add1 = registry.requireFunction('fxu_add1').instantiate('r');
    add1.close();
    assert.equal(closes.call(), before + 1n, 'close() ran the close hook');
    const echo = registry.requireFunction('fxu_echo').instantiate('r');
    assert.throws(() => registry.unload('fxu'), { code: 'E_CONFLICT', message: /2 open function instance/ });
    assert.deepEqual(registry.unload('fxu', { force: true }), { name: 'fxu', closedInstances: 2, stillMapped: false });
    assert.equal(fs.readFileSync(trace, 'utf8'), `deinit closes=${Number(before) + 2} magic=4242`);
    assert.throws(() => echo.call(1), { code: 'E_PLUGIN_NOT_LOADED' });
    assert.equal(registry.getFunction('fxu_echo'), undefined);
    assert.throws(() => registry.unload('fxu'), { code: 'E_PLUGIN_NOT_LOADED' });
    await registry.load(file); // the same path loads again once unmapped
    registry.unload('fxu');
  });
});

describe('registry: libraries dlclose cannot unmap', () => {
  it('says a C++ plugin with STB_GNU_UNIQUE symbols stays mapped, and refuses to reload stale code from that path', async () => {
    const file = buildFxCpp();
    await registry.load(file); // the check only warns (W_GNU_UNIQUE)
    assert.equal(registry.requireFunction('fxcpp_calls').instantiate('r').call(), 1n);
    assert.deepEqual(registry.unload('fxcpp', { force: true }), { name: 'fxcpp', closedInstances: 1, stillMapped: true });
    await assert.rejects(() => registry.load(file), { code: 'E_PLUGIN_LOADED', message: /still mapped .*STB_GNU_UNIQUE.*new file name/ });
  });
});

describe('registry: .node plugins', () => {
  it('loads a Node-API plugin and calls it; unloading forgets it but Node keeps it mapped', async () => {
    const loaded = await registry.load(buildFxNode());
    assert.deepEqual([loaded.name, loaded.flavour, loaded.contract, loaded.functions], ['fxnode', 'node', '1.0', ['fxn_twice']]);
    assert.ok(logs.some((l) => l.plugin === 'fxnode' && l.level === 30 && l.message === 'fxnode ready'), 'init(host) ran and logged');
    assert.ok(logs.some((l) => l.plugin === 'fxnode' && l.level === 40 && l.message === 'fxnode warns by name'), 'host.log("warn", …) is kept, at warn');
    const twice = registry.requireFunction('fxn_twice').instantiate('r');
    assert.deepEqual(twice.callBatch([f64(1, 2.5)], 2).values, Float64Array.of(2, 5));
    assert.equal(twice.call(4n), 8);
    assert.throws(() => twice.prepare(4), { code: 'E_ARG_TYPE' });
    assert.deepEqual(registry.unload('fxnode', { force: true }), { name: 'fxnode', closedInstances: 1, stillMapped: true });
    assert.throws(() => twice.call(1), { code: 'E_PLUGIN_NOT_LOADED' });
  });
});

describe('registry: plugin logs', () => {
  it('forwards host->log lines to onLog', async () => {
    for (let i = 0; i < 500 && !logs.some((l) => l.message === 'fx ready'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(logs.find((l) => l.message === 'fx ready'), { plugin: 'fx', rule: '', level: 30, message: 'fx ready' });
  });
});
