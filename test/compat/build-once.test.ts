/**
 * "Build once, load on every host": the sample `.so` plugins are compiled once (by the first test
 * run) and this file, run under every supported Node by scripts/test-node-matrix.sh without
 * rebuilding them, must get the same results from them. The expected values are eKuiper's for its
 * samples, fixed here rather than computed, so a different answer on any Node fails.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { PluginRegistry } from '../../src/plugins/index.js';
import { samplesDir } from '../helpers/paths.js';

const registry = new PluginRegistry({ onLog: () => {} });
after(() => registry.unloadAll());

for (const name of ['echo', 'countPlusOne', 'accumulateWordCount', 'vector']) {
  await registry.load(path.join(samplesDir, `${name}.so`));
}

test(`contract plugins compute eKuiper's sample results on Node ${process.version}`, () => {
  const echo = registry.getFunction('echo')!.instantiate('compat');
  assert.equal(echo.call('hello'), 'hello');
  assert.equal(echo.call(42.5), 42.5);

  const count = registry.getFunction('countPlusOne')!.instantiate('compat');
  const groups = count.callGroups([{ type: 'float64', values: new Float64Array([50, 51, 52, 53, 54]) }], 5, new Uint32Array([0, 3, 5]));
  assert.deepEqual(Array.from(groups.values as BigInt64Array, Number), [4, 3]);

  const words = registry.getFunction('accumulateWordCount')!.instantiate('compat');
  const inputs = ['john,alice,tom', 'rose,bob,mary', 'alice,tom', 'john,alice,tom,rose,bob,mary,alice,tom',
    'rose,bob,mary,alice', 'tom,john,alice,tom,rose', 'bob,mary', 'alice,tom,rose'];
  const totals = words.callBatch([{ type: 'string', values: inputs }, { type: 'string', values: inputs.map(() => ',') }], inputs.length);
  assert.deepEqual(Array.from(totals.values as BigInt64Array, Number), [3, 6, 8, 16, 20, 25, 27, 30]);

  const scale = registry.getFunction('scale')!.instantiate('compat');
  const scaled = scale.callBatch([{ type: 'float64', values: new Float64Array([1, -2, 0.5]) }, { type: 'float64', values: new Float64Array([3, 3, 3]) }], 3);
  assert.deepEqual(Array.from(scaled.values as Float64Array), [3, -6, 1.5]);
  for (const i of [echo, count, words, scale]) i.close();
});
