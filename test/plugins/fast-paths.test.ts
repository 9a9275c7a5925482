/**
 * The hot entries of native/host: FunctionInstance.call (one native function, scalars in and out)
 * must answer exactly as the generic path (columns through callBatch/callGroups) does, errors
 * included; frame.run(n) must hand the plugin a null mask exactly when a row in [0, n) is null.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FunctionInstanceBase } from '../../src/plugins/instance-base.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import type { FunctionInstance, Scalar } from '../../src/plugins/types.js';
import { ISOLATION_MODES, loadIn } from '../helpers/isolation.js';
import { buildFx } from './fixtures.js';

const generic = FunctionInstanceBase.prototype.call;

/** What a call gives: its value, or the code and message of what it threw. */
function outcome(f: () => Scalar): unknown {
  try {
    return { value: f() };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { name: e.name, code: e.code, message: e.message };
  }
}

function sameAsGeneric(instance: FunctionInstance, args: unknown[]): void {
  const fast = outcome(() => instance.call(...(args as Scalar[])));
  const slow = outcome(() => generic.apply(instance, args as Scalar[]));
  assert.deepEqual(fast, slow, `call(${args.map((a) => (typeof a === 'bigint' ? `${a}n` : JSON.stringify(a))).join(', ')})`);
}


for (const mode of ISOLATION_MODES) describe(`isolation ${mode}`, () => {
  const registry = new PluginRegistry({ onLog: () => {} });
  before(() => loadIn(registry, buildFx('fx-fast', ['FX_NAME="fxfast"', 'FX_PREFIX="ff_"']), mode));
  after(() => registry.unloadAll());

  describe('scalar entry: FunctionInstance.call', () => {
    it('is a native function, not the generic JS path', { skip: mode === 'process' && 'in-process only: isolated calls cross a process' }, () => {
      const add1 = registry.requireFunction('ff_add1').instantiate('r');
      assert.match(Function.prototype.toString.call(add1.call), /\[native code\]/);
      assert.equal(add1.call(1.5), 2.5);
      add1.close();
    });

    it('answers like the generic path for every kind of value a float64 argument may get', () => {
      const add1 = registry.requireFunction('ff_add1').instantiate('r');
      const values: unknown[][] = [[0], [-0.5], [1e300], [Number.NaN], [7n], [-(2n ** 53n)], [2n ** 70n], [null], [true], ['1'],
        [Uint8Array.of(1)], [undefined], [{}], [], [1, 2], [-5000]];
      for (const args of values) sameAsGeneric(add1, args);
      assert.equal(add1.call(7n), 8);
      assert.equal(add1.call(null), null);
      assert.throws(() => add1.call(-5000), {
        code: 'E_FUNCTION_FAILED',
        message: 'function ff_add1 (plugin fxfast, rule r) call failed: value -5000 at row 0 is below -1000',
      });
      assert.throws(() => add1.call(), { code: 'E_ARITY' });
      assert.throws(() => add1.call('1'), { code: 'E_ARG_TYPE' });
      add1.close();
    });

    it('answers like the generic path for an any argument returning like-arg0 (every type, null)', () => {
      const echo = registry.requireFunction('ff_echo').instantiate('r');
      const values: unknown[][] = [[1.25], [0], [42n], [-(2n ** 63n)], [2n ** 64n + 5n], [true], [false], ['héllo ✓'], [''], ['\u{1F600}x'],
        [Buffer.from([0, 255, 7])], [new Uint8Array(0)], [Uint8Array.of(1, 2).subarray(1)], [Float64Array.of(1)], [null], [{}], [undefined]];
      for (const args of values) sameAsGeneric(echo, args);
      assert.equal(echo.call('héllo ✓'), 'héllo ✓');
      assert.equal(echo.call(-(2n ** 63n)), -(2n ** 63n));
      assert.equal(echo.call(false), false);
      assert.deepEqual(echo.call(Uint8Array.of(1, 2).subarray(1)), Buffer.from([2]));
      echo.close();
    });

    it('answers like the generic path for strings, aggregates, state and functions without arguments', () => {
      const upper = registry.requireFunction('ff_upper').instantiate('r');
      for (const args of [['abc'], [''], [null], [1], [Buffer.from('x')]]) sameAsGeneric(upper, args);
      assert.equal(upper.call('Zz9'), 'ZZ9');
      upper.close();

      const agg = registry.requireFunction('ff_count_plus_one').instantiate('r');
      for (const args of [[50], ['x'], [null], [3n]]) sameAsGeneric(agg, args);
      assert.equal(agg.call(50), 2n);
      agg.close();

      const a = registry.requireFunction('ff_wordcount').instantiate('rule-a');
      assert.deepEqual(['john,alice,tom', 'rose,bob,mary', 'alice,tom'].map((s) => a.call(s, ',')), [3n, 6n, 8n]);
      assert.equal(generic.call(a, 'x,y', ','), 10n, 'the generic path sees the same per-rule state');
      assert.throws(() => a.call('x', 1), { code: 'E_ARG_TYPE' });
      a.close();

      const rule = registry.requireFunction('ff_rule').instantiate('rule-42');
      assert.equal(rule.call(), 'rule-42');
      assert.throws(() => rule.call(1), { code: 'E_ARITY' });
      rule.close();
    });

    it('keeps working detached from its instance, and refuses once the instance is closed', () => {
      const add1 = registry.requireFunction('ff_add1').instantiate('r');
      const call = add1.call;
      assert.equal(call(1), 2);
      assert.throws(() => call('x'), { code: 'E_ARG_TYPE' }, 'the generic path runs on the instance, not on `this`');
      add1.close();
      assert.throws(() => add1.call(1), { code: 'E_INSTANCE_CLOSED' });
      assert.throws(() => call(1), { code: 'E_INSTANCE_CLOSED' });
    });
  });

  describe('frame: null masks', () => {
    it('passes a mask exactly when a row in [0, n) is null, wherever it is in the 64-byte blocks', () => {
      const add1 = registry.requireFunction('ff_add1').instantiate('r');
      const frame = add1.prepare(300);
      const x = frame.args[0] as Float64Array;
      const nulls = frame.argNulls[0];
      x.fill(1);
      for (const row of [0, 63, 64, 127, 128, 200, 255, 256, 299]) {
        nulls.fill(0);
        nulls[row] = 1;
        frame.run(300);
        assert.equal(frame.resultNulls[row], 1, `row ${row} null`);
        assert.equal(frame.resultNulls.reduce((a, b) => a + b, 0), 1, `only row ${row} null`);
        frame.run(row); // the null row is outside [0, row): the plugin gets no mask and computes every row
        assert.equal(frame.resultNulls.subarray(0, row).reduce((a, b) => a + b, 0), 0);
      }
      nulls.fill(0);
      frame.run(300);
      assert.ok(frame.resultNulls.every((v) => v === 0), 'the result mask is zeroed before every run');
      assert.equal((frame.result as Float64Array)[299], 2);
      frame.close();
      add1.close();
    });

    it('keeps the frame\'s memory alive for an extracted run() and its arrays', () => {
      const add1 = registry.requireFunction('ff_add1').instantiate('r');
      const { run, args, result } = add1.prepare(8);
      (args[0] as Float64Array).set([1, 2, 3]);
      run(3);
      assert.deepEqual(Array.from((result as Float64Array).subarray(0, 3)), [2, 3, 4]);
      assert.throws(() => run(9), { code: 'E_BAD_REQUEST' });
      assert.throws(() => run(-1), { code: 'E_BAD_REQUEST' });
      add1.close();
      assert.throws(() => run(1), { code: 'E_INSTANCE_CLOSED' });
    });
  });
});
