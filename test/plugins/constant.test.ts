/**
 * Constant arguments (sp_column.is_constant): a Column's `constant: true`, a frame's setConstant and
 * a literal in a rule's SQL all reach the plugin as is_constant = 1 (fx_constness reports what it
 * got), and the vector sample, which then reads k once, answers exactly as with k as a full column.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileRule, StreamCatalog } from '../../src/engine/index.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import type { BatchFrame, Column, ValueType } from '../../src/plugins/types.js';
import { samplesDir } from '../helpers/paths.js';
import { ISOLATION_MODES, loadIn } from '../helpers/isolation.js';
import { buildFx } from './fixtures.js';


const f64 = (values: number[], more: { nulls?: number[]; constant?: true } = {}): Column => ({
  type: 'float64',
  values: Float64Array.from(values),
  ...(more.nulls ? { nulls: Uint8Array.from(more.nulls) } : {}),
  ...(more.constant ? { constant: more.constant } : {}),
});

const rows = (col: Column): unknown[] => Array.from(col.values as ArrayLike<unknown>, (v, i) => (col.nulls?.[i] ? null : v));

for (const mode of ISOLATION_MODES) describe(`isolation ${mode}`, () => {
  const registry = new PluginRegistry({ onLog: () => {} });
  before(async () => {
    await loadIn(registry, buildFx('fx-constant', ['FX_NAME="fxconst"', 'FX_PREFIX="fc_"']), mode);
    await loadIn(registry, path.join(samplesDir, 'vector.so'), mode);
  });
  after(() => registry.unloadAll());

  describe('constant arguments reach the plugin', () => {
    it('callBatch and callGroups set is_constant from Column.constant, per argument', () => {
      const batch = registry.requireFunction('fc_constness').instantiate('r');
      const three = [1, 2, 3];
      assert.deepEqual(rows(batch.callBatch([f64(three), f64([7, 7, 7], { constant: true })], 3)), [2n, 2n, 2n]);
      assert.deepEqual(rows(batch.callBatch([f64([7, 7, 7], { constant: true }), f64(three)], 3)), [1n, 1n, 1n]);
      assert.deepEqual(rows(batch.callBatch([f64(three), f64(three)], 3)), [0n, 0n, 0n]);
      const strings: Column = { type: 'string', values: ['a', 'a', 'a'], constant: true };
      assert.deepEqual(rows(batch.callBatch([strings, f64(three), strings], 3)), [5n, 5n, 5n]);
      batch.close();

      const groups = registry.requireFunction('fc_constness_groups').instantiate('r');
      const out = groups.callGroups([f64(three), f64([0, 0, 0], { nulls: [1, 1, 1], constant: true })], 3, Uint32Array.of(0, 2, 3));
      assert.deepEqual(rows(out), [2n, 2n]);
      groups.close();
    });

    it('a one-row scalar call never claims a constant, fast path or generic', () => {
      const instance = registry.requireFunction('fc_constness').instantiate('r');
      assert.equal(instance.call(1, 2), 0n);
      assert.equal(instance.call('x', 2n, true), 0n); // strings and bigints: still the native entry
      instance.close();
    });

    it('frame.setConstant(argIndex, on) turns the flag on and off; bad indexes are refused', () => {
      const instance = registry.requireFunction('fc_constness').instantiate('r');
      const frame = (instance as typeof instance & { prepare(c: number, t: ValueType[]): BatchFrame }).prepare(4, ['float64', 'int64', 'bool']);
      const got = () => {
        frame.run(4);
        return Array.from(frame.result as BigInt64Array);
      };
      assert.deepEqual(got(), [0n, 0n, 0n, 0n]);
      frame.setConstant(1, true);
      assert.deepEqual(got(), [2n, 2n, 2n, 2n]);
      frame.setConstant(2, true);
      frame.setConstant(1, false);
      assert.deepEqual(got(), [4n, 4n, 4n, 4n]);
      assert.throws(() => frame.setConstant(3, true), { code: 'E_BAD_REQUEST', message: /argIndex must be 0\.\.2/ });
      assert.throws(() => frame.setConstant(-1, true), { code: 'E_BAD_REQUEST' });
      assert.throws(() => frame.setConstant(0, 1 as unknown as boolean), { code: 'E_BAD_REQUEST', message: /a boolean/ });
      assert.deepEqual(got(), [4n, 4n, 4n, 4n], 'a refused call changes nothing');
      frame.close();
      instance.close();
    });
  });

  describe('vector scale(x, k): constant k gives the same answers as a full column', () => {
    const n = 1000;
    const x = Array.from({ length: n }, (_, i) => (i % 37) * 0.75 - 9);
    const xNulls = Array.from({ length: n }, (_, i) => (i % 101 === 3 ? 1 : 0));

    it('callBatch, with and without nulls, constant or not', () => {
      const scale = registry.requireFunction('scale').instantiate('r');
      for (const k of [2.5, -0.125]) {
        const ks = new Array<number>(n).fill(k);
        const plain = scale.callBatch([f64(x, { nulls: xNulls }), f64(ks)], n);
        const constant = scale.callBatch([f64(x, { nulls: xNulls }), f64(ks, { constant: true })], n);
        assert.deepEqual(rows(constant), rows(plain));
        assert.deepEqual(rows(plain).slice(0, 5), x.slice(0, 5).map((v, i) => (xNulls[i] ? null : v * k)));
      }
      // A null constant k: every row null either way.
      const nullK = f64(new Array<number>(n).fill(0), { nulls: new Array<number>(n).fill(1) });
      const a = scale.callBatch([f64(x), nullK], n);
      const b = scale.callBatch([f64(x), { ...nullK, constant: true }], n);
      assert.deepEqual(rows(a), rows(b));
      assert.ok(rows(b).every((v) => v === null));
      scale.close();
    });

    it('frames: setConstant(1, true) matches the full column, and a varying k stays per row', () => {
      const scale = registry.requireFunction('scale').instantiate('r');
      const frame = scale.prepare(n);
      (frame.args[0] as Float64Array).set(x);
      const ks = frame.args[1] as Float64Array;
      ks.fill(3.25);
      frame.run(n);
      const full = Array.from(frame.result as Float64Array);
      frame.setConstant(1, true);
      frame.run(n);
      assert.deepEqual(Array.from(frame.result as Float64Array), full);
      assert.equal(full[10], x[10] * 3.25);
      // A constant k that is null: row 0 of its mask decides, every row comes out null.
      frame.argNulls[1].fill(1);
      frame.run(n);
      assert.ok(frame.resultNulls.subarray(0, n).every((v) => v === 1));
      frame.argNulls[1].fill(0);
      frame.run(n);
      assert.ok(frame.resultNulls.subarray(0, n).every((v) => v === 0));
      assert.deepEqual(Array.from(frame.result as Float64Array), full);

      frame.setConstant(1, false);
      for (let i = 0; i < n; i++) ks[i] = i; // k differs per row: the plugin must read every row
      frame.run(n);
      const result = frame.result as Float64Array;
      for (const i of [0, 1, 500, n - 1]) assert.equal(result[i], x[i] * i, `row ${i}`);
      frame.close();
      scale.close();
    });
  });

  describe('the engine marks literal arguments of plugin functions constant', () => {
    const catalog = new StreamCatalog();
    catalog.execute('CREATE STREAM s (a float, k float) WITH (DATASOURCE="s")');
    const run = (sql: string, input: Record<string, unknown>[]) => {
      const out: Record<string, unknown>[] = [];
      const rule = compileRule('r1', sql, { streams: catalog.lookup, functions: registry, onResult: (r) => out.push(...r), onError: (e) => assert.fail(e.message) });
      rule.push(input, 1000);
      rule.close();
      return out;
    };
    const input = [{ a: 1.5, k: 2.5 }, { a: -4, k: 2.5 }, { a: 0.1, k: 2.5 }];

    it('reaches the plugin as is_constant for literals (negative numbers too), not for fields', () => {
      assert.deepEqual(run('SELECT fc_constness(a, 2.5, k, -3, \'t\') AS c FROM s', input).map((r) => r.c), [26, 26, 26]);
      assert.deepEqual(run('SELECT fc_constness(a, k) AS c FROM s', input).map((r) => r.c), [0, 0, 0]);
    });

    it('scale(a, 2.5) answers as scale(a, k) with k = 2.5 in every row', () => {
      const literal = run('SELECT scale(a, 2.5) AS y FROM s', input);
      assert.deepEqual(literal, run('SELECT scale(a, k) AS y FROM s', input));
      assert.deepEqual(literal.map((r) => r.y), [3.75, -10, 0.1 * 2.5]);
    });
  });
});
