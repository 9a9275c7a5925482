/**
 * Builds the test plugins in fixtures/ with the system C compiler into a temporary directory,
 * one file per variant (a variant is a set of -D switches of fx.c).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';

const sources = path.join(repoRoot, 'test/plugins/fixtures');
export const fixtureDir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-plugins-test-'));
process.on('exit', () => fs.rmSync(fixtureDir, { recursive: true, force: true }));

function compile(source: string, out: string, flags: string[]): string {
  const file = path.join(fixtureDir, out);
  if (!fs.existsSync(file)) {
    execFileSync(
      source.endsWith('.cc') ? 'c++' : 'cc',
      ['-shared', '-fPIC', '-O2', '-pthread', `-I${path.join(repoRoot, 'native/include')}`, ...flags, path.join(sources, source), '-o', file],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  }
  return file;
}

/** fx.c built with `defines` (e.g. ['FX_INIT_FAILS', 'FX_MINOR=9']) as `<name>.so`. */
export function buildFx(name: string, defines: string[] = []): string {
  return compile('fx.c', `${name}.so`, defines.map((d) => `-D${d}`));
}

/** The `.node` test plugin. */
export function buildFxNode(): string {
  return compile('fxnode.c', 'fxnode.node', ['-DNAPI_VERSION=8', '-DNODE_GYP_MODULE_NAME=fxnode', `-I${path.join(path.dirname(process.execPath), '../include/node')}`]);
}

/** A C++ plugin built with default flags: STB_GNU_UNIQUE keeps it mapped after dlclose. */
export function buildFxCpp(): string {
  return compile('fxcpp.cc', 'fxcpp.so', []);
}

/** fxcrash.cc built with one CRASH_* switch (see the file) as `fxcrash-<variant>.so`, named `fxcrash_<variant>`. */
export function buildCrash(variant: string): string {
  const name = `fxcrash_${variant.toLowerCase()}`;
  return compile('fxcrash.cc', `${name}.so`, [`-DCRASH_${variant}`, `-DFX_NAME="${name}"`]);
}
