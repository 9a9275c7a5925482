/**
 * Memory safety of native sources and sinks: scripts/valgrind-cycles.sh --io runs 10,000
 * open/push/close cycles of native sources (random: blocks and structured rows; the iofx fixture:
 * batch push with a blocking queue, a producer thread of its own) and 10,000 open/collect/close
 * cycles of native sinks (filesink: shared and copied JSON lines; a typed fixture sink) through
 * the host's connector classes, under valgrind memcheck: exit 9 on any invalid access, use of
 * uninitialised memory or definite leak, exit 1 when a source, sink, thread, queued item, batch or
 * lent buffer is still live at the end. About 2 minutes on 2 cores; a file of its own so the test
 * runner can run it beside valgrind.test.ts where there are cores to spare.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runValgrindCycles, skipValgrind } from './valgrind-run.js';

describe('native source/sink memory safety (valgrind)', () => {
  it('runs 10,000 source and 10,000 sink open/close cycles with no invalid access, definite leak or live instance left', { skip: skipValgrind, timeout: 20 * 60_000 }, () => {
    const run = runValgrindCycles(['--io', '--cycles', '10000']);
    assert.match(run.stdout, /valgrind-io-cycles: 10000 source and 10000 sink open\/close cycles in [\d.]+ s, nothing left live/);
  });
});
