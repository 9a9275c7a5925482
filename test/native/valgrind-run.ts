/** Runs scripts/valgrind-cycles.sh for the valgrind tests and checks valgrind's verdict. */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { skipWithout } from '../helpers/optional-tools.js';

/**
 * Node majors whose V8 noise scripts/valgrind-node.supp is validated against. Node 24's V8 scans
 * the stack conservatively, which memcheck reports as reads of uninitialised stack words inside V8
 * itself; until suppressions for that are validated, other majors skip with this reason rather
 * than fail on V8's own behaviour. Add a major here only after a clean run under it.
 */
const VALIDATED_NODE_MAJORS = [20];
const major = Number(process.versions.node.split('.')[0]);

/** Why the valgrind tests are skipped, or false. The Node-version matrix sets
 * STREAMPLUG_SKIP_VALGRIND: the check ran once already under the first Node. */
export const skipValgrind: string | false = process.env.STREAMPLUG_SKIP_VALGRIND === '1'
  ? 'STREAMPLUG_SKIP_VALGRIND=1 (run once per CI job, under the first Node)'
  : !VALIDATED_NODE_MAJORS.includes(major)
    ? `valgrind suppressions are validated for Node ${VALIDATED_NODE_MAJORS.join(', ')} only, this is Node ${major} (V8's conservative stack scanning); run the memory check under Node ${VALIDATED_NODE_MAJORS[0]}`
    : skipWithout('valgrind');

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
