/** Builds test/state/fixtures/tally.c in its versions (state version, migrate hook) from plugin.h. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';

export interface TallyBuild {
  state: number;
  migrate?: boolean;
  version?: string;
  putReserved?: string;
  step?: number;
  failIfExists?: string;
}

export function buildTally(dir: string, name: string, b: TallyBuild): string {
  const out = path.join(dir, `${name}.so`);
  execFileSync('cc', [
    '-shared', '-fPIC', '-O1', '-std=c99', '-Wall', '-Wextra', '-Werror', `-I${path.join(repoRoot, 'native/include')}`,
    `-DTALLY_STATE=${b.state}`, `-DTALLY_MIGRATE=${b.migrate ? 1 : 0}`, `-DTALLY_VERSION="${b.version ?? `${b.state}.0.0`}"`,
    ...(b.putReserved ? [`-DTALLY_PUT_RESERVED="${b.putReserved}"`] : []),
    `-DTALLY_STEP=${b.step ?? 1}`, `-DTALLY_FAIL_IF_EXISTS="${b.failIfExists ?? ''}"`,
    path.join(repoRoot, 'test/state/fixtures/tally.c'), '-o', out,
  ], { stdio: 'pipe' });
  return out;
}
