/**
 * Memory safety of the isolated worker (native/worker, with library.cc, host_api.cc and io.cc in it):
 * every worker of this test runs under valgrind memcheck (the `workerPath` option names a wrapper
 * script), through calls of every shape the samples have — scalar, strings, aggregate, stateful
 * with state export and import, frames with a constant column — then an orderly unload (close hooks,
 * deinit). Each worker's valgrind log must show no error and no definite leak. Skipped without valgrind.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { workerPath } from '../../src/plugins/isolated/index.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { samplesDir } from '../helpers/paths.js';
import { skipValgrind } from './valgrind-run.js';

describe('isolated worker memory safety (valgrind)', () => {
  it('serves the samples under memcheck with no invalid access and no definite leak', { skip: skipValgrind, timeout: 5 * 60_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-vg-worker-'));
    const wrapper = path.join(dir, 'worker.sh');
    // exec: valgrind keeps the pid, which the worker checks against --parent.
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec valgrind --tool=memcheck --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --log-file=${dir}/vg-%p.log ${workerPath} "$@"\n`, { mode: 0o755 });
    const reg = new PluginRegistry({ onLog: () => undefined, isolation: { workerPath: wrapper, loadTimeoutMs: 120_000, callTimeoutMs: 120_000 } });
    try {
      for (const name of ['echo', 'countPlusOne', 'accumulateWordCount', 'vector']) await reg.loadIsolated(path.join(samplesDir, `${name}.so`));
      const echo = reg.requireFunction('echo').instantiate('r');
      assert.deepEqual(echo.callBatch([{ type: 'string', values: ['a', 'bb', 'x'.repeat(100)] }], 3).values, ['a', 'bb', 'x'.repeat(100)]);
      assert.equal(echo.call(2.5), 2.5);
      const count = reg.requireFunction('countPlusOne').instantiate('r');
      assert.deepEqual(Array.from(count.callGroups([{ type: 'float64', values: Float64Array.of(1, 2, 3) }], 3, Uint32Array.of(0, 1, 3)).values as BigInt64Array), [2n, 3n]);
      const wc = reg.requireFunction('accumulateWordCount').instantiate('r');
      assert.equal(wc.call('a,b', ','), 2n);
      const state = wc.exportState!();
      const wc2 = reg.requireFunction('accumulateWordCount').instantiate('r2');
      wc2.importState!(state);
      assert.equal(wc2.call('c', ','), 3n);
      const scale = reg.requireFunction('scale').instantiate('r');
      const frame = scale.prepare(1000);
      (frame.args[0] as Float64Array).fill(2);
      (frame.args[1] as Float64Array).fill(3);
      frame.setConstant(1, true);
      frame.argNulls[0][7] = 1;
      frame.run(1000);
      assert.equal((frame.result as Float64Array)[999], 6);
      assert.equal(frame.resultNulls[7], 1);
      frame.close();
    } finally {
      reg.unloadAll();
    }
    // unloadAll asked each worker to shut down; valgrind writes its summary as the worker exits.
    const logs = () => fs.readdirSync(dir).filter((f) => f.startsWith('vg-'));
    const deadline = Date.now() + 60_000;
    while ((logs().length < 4 || !logs().every((f) => /ERROR SUMMARY/.test(fs.readFileSync(path.join(dir, f), 'utf8')))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(logs().length, 4, 'one valgrind log per worker');
    for (const f of logs()) {
      const text = fs.readFileSync(path.join(dir, f), 'utf8');
      assert.match(text, /ERROR SUMMARY: 0 errors from 0 contexts/, `${f}:\n${text}`);
      assert.doesNotMatch(text, /definitely lost: [1-9]/, `${f}:\n${text}`);
    }
  });
});
