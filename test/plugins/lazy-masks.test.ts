/**
 * frame.argNulls is lazy: a mask JavaScript was never handed is still all zero, so run(n) passes the
 * plugin nulls == NULL without reading it; once handed over (first read of argNulls[i]) it is
 * checked at every run. fx_nullness reports, as bit j of its result, whether args[j].nulls was set.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PluginRegistry } from '../../src/plugins/registry.js';
import type { BatchFrame } from '../../src/plugins/types.js';
import { ISOLATION_MODES, loadIn } from '../helpers/isolation.js';
import { buildFx } from './fixtures.js';

for (const mode of ISOLATION_MODES) describe(`isolation ${mode}`, () => {
  const registry = new PluginRegistry({ onLog: () => {} });
  before(() => loadIn(registry, buildFx('fx-masks', ['FX_NAME="fxmasks"', 'FX_PREFIX="fm_"']), mode));
  after(() => registry.unloadAll());

  const N = 300;

  /** A frame of fm_nullness(x, y: float64) with both arguments filled; `close` ends it all. */
  function nullnessFrame(): { frame: BatchFrame; bits: (n?: number) => bigint; close: () => void } {
    const instance = registry.requireFunction('fm_nullness').instantiate('r');
    const frame = instance.prepare(N);
    (frame.args[0] as Float64Array).fill(1);
    (frame.args[1] as Float64Array).fill(2);
    const bits = (n = N) => {
      frame.run(n);
      return (frame.result as BigInt64Array)[0];
    };
    return { frame, bits, close: () => (frame.close(), instance.close()) };
  }

  describe('frame: lazy null masks', () => {
    it('passes NULL for masks never read from JavaScript', () => {
      const { frame, bits, close } = nullnessFrame();
      assert.equal(bits(), 0n);
      // Not yet handed out: both elements are still the addon's getters.
      for (const i of ['0', '1']) assert.equal(typeof Object.getOwnPropertyDescriptor(frame.argNulls, i)?.get, 'function');
      assert.equal(frame.argNulls.length, 2);
      close();
    });

    it('checks a mask once read: set rows reach the plugin, cleared masks are NULL again', () => {
      const { frame, bits, close } = nullnessFrame();
      const k = frame.argNulls[1];
      assert.ok(k instanceof Uint8Array && k.length === N);
      assert.equal(bits(), 0n, 'read but clean: still NULL');
      k[299] = 1;
      assert.equal(bits(), 2n, 'argument 1 only: argument 0 was never read');
      assert.equal(bits(299), 0n, 'the null row is outside [0, 299)');
      k[299] = 0;
      k[64] = 1;
      assert.equal(bits(), 2n);
      k.fill(0);
      assert.equal(bits(), 0n, 'cleared: NULL again');
      // The plugin sees what JS wrote, row for row.
      const x = frame.argNulls[0];
      x[7] = 1;
      assert.equal(bits(), 1n);
      close();
    });

    it('hands out one view per mask, as a plain read-only element after the first read', () => {
      const { frame, close } = nullnessFrame();
      const first = frame.argNulls[0];
      assert.equal(frame.argNulls[0], first);
      const desc = Object.getOwnPropertyDescriptor(frame.argNulls, '0');
      assert.equal(desc?.value, first);
      assert.equal(desc?.writable, false);
      assert.equal(desc?.configurable, false);
      assert.throws(() => {
        (frame.argNulls as Uint8Array[])[0] = new Uint8Array(N);
      }, TypeError);
      // Iterating reads (and so hands out) every mask.
      assert.deepEqual(Array.from(frame.argNulls, (m) => m.length), [N, N]);
      assert.equal(Object.keys(frame.argNulls).join(), '0,1');
      close();
    });

    it('refuses a getter taken off argNulls and called on another object', () => {
      const { frame, bits, close } = nullnessFrame();
      const getter = Object.getOwnPropertyDescriptor(frame.argNulls, '1')?.get as () => unknown;
      assert.throws(() => getter.call({}), { code: 'E_BAD_REQUEST' });
      assert.throws(() => getter.call(frame), { code: 'E_BAD_REQUEST' }, 'the frame object wraps something else');
      const mask = getter.call(frame.argNulls) as Uint8Array;
      assert.equal(frame.argNulls[1], mask, 'the getter hands out the same view as the element');
      assert.equal(getter.call(frame.argNulls), mask);
      mask[0] = 1;
      assert.equal(bits(), 2n);
      close();
    });

    it('for a constant argument reads row 0 of a read mask, and nothing of an unread one', () => {
      const { frame, bits, close } = nullnessFrame();
      frame.setConstant(0, true);
      frame.setConstant(1, true);
      assert.equal(bits(), 0n);
      const k = frame.argNulls[1];
      k.fill(1, 1); // rows 1.. null, row 0 not: a constant's row 0 decides
      assert.equal(bits(), 0n);
      k[0] = 1;
      assert.equal(bits(), 2n);
      close();
    });

    it('computes nulls right through a mask read late, after runs without it (fm_add1)', () => {
      const add1 = registry.requireFunction('fm_add1').instantiate('r');
      const frame = add1.prepare(N);
      const x = frame.args[0] as Float64Array;
      x.fill(41);
      frame.run(N);
      assert.ok(frame.resultNulls.every((v) => v === 0));
      frame.argNulls[0][128] = 1;
      frame.run(N);
      assert.equal(frame.resultNulls[128], 1);
      assert.equal(frame.resultNulls.reduce((a, b) => a + b, 0), 1);
      assert.equal((frame.result as Float64Array)[127], 42);
      frame.close();
      add1.close();
    });
  });
});
