/** Runs scripts/valgrind-cycles.sh for the valgrind tests and checks valgrind's verdict. */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';

const valgrind = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
/** Why the valgrind tests are skipped, or false. The Node-version matrix sets
 * STREAMPLUG_SKIP_VALGRIND: the check ran once already under the first Node. */
export const skipValgrind: string | false = process.env.STREAMPLUG_SKIP_VALGRIND === '1'
  ? 'STREAMPLUG_SKIP_VALGRIND=1 (run once per CI job, under the first Node)'
  : valgrind.status === 0 ? false : 'valgrind is not installed (apt-get install -y valgrind)';

/** valgrind's own report lines (==pid== …) from the first error on, for the failure message. */
function errorsOf(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => /^==\d+==/.test(l) || !l.startsWith('=='));
  const first = lines.findIndex((l) => /Invalid|uninitialised|definitely lost in|free\(\)|mismatched/i.test(l));
  return lines.slice(first < 0 ? -40 : first, (first < 0 ? lines.length : first) + 120).join('\n');
}

/** scripts/valgrind-cycles.sh with `args`; asserts exit 0, no error and no definite leak. */
export function runValgrindCycles(args: string[]): SpawnSyncReturns<string> {
  const run = spawnSync(path.join(repoRoot, 'scripts/valgrind-cycles.sh'), args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  assert.equal(run.error, undefined);
  assert.equal(run.status, 0, `valgrind-cycles ${args.join(' ')} exited ${run.status} (9: valgrind found errors)\n${run.stdout}\n${errorsOf(run.stderr)}`);
  assert.match(run.stderr, /ERROR SUMMARY: 0 errors from 0 contexts/);
  assert.match(run.stderr, /definitely lost: 0 bytes in 0 blocks|All heap blocks were freed/);
  return run;
}
