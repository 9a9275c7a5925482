/**
 * Memory safety of native/host and the sample plugins: scripts/valgrind-cycles.sh runs 10,000
 * load/call/unload cycles of function plugins under valgrind memcheck and exits 9 on any invalid
 * access, use of uninitialised memory or definite leak outside Node's own
 * (scripts/valgrind-node.supp). About 75 s on 2 cores; skipped where valgrind is not installed (CI
 * installs it). Sources and sinks: valgrind-io.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runValgrindCycles, skipValgrind } from './valgrind-run.js';

describe('native memory safety (valgrind)', () => {
  it('runs 10,000 load/call/unload cycles of the sample plugins with no invalid access or definite leak', { skip: skipValgrind, timeout: 20 * 60_000 }, () => {
    const run = runValgrindCycles(['--cycles', '10000']);
    // Every sample plus the corpus files that exercise refusal paths; the exact list lives in the script.
    const m = /valgrind-cycles: 10000 load\/call\/unload cycles over (\d+) plugins/.exec(run.stdout);
    assert.ok(m && Number(m[1]) >= 5, `expected the cycle summary over at least 5 plugins, got: ${run.stdout}`);
  });
});
