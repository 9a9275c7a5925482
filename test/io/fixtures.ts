/** Builds test/io/fixtures/iofx.c (test-only sources and sinks) into a temporary directory. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';

export const ioTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-io-test-'));
process.on('exit', () => fs.rmSync(ioTmp, { recursive: true, force: true }));

export function buildIoFx(): string {
  const file = path.join(ioTmp, 'iofx.so');
  if (!fs.existsSync(file)) {
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-pthread', '-std=c99', '-Wall', '-Wextra', '-Werror',
      `-I${path.join(repoRoot, 'native/include')}`, path.join(repoRoot, 'test/io/fixtures/iofx.c'), '-o', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return file;
}

/** Keeps the JS thread busy (no event loop turn) for `ms`: native producers run, nothing drains. */
export function blockJs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export const until = async (cond: () => boolean, what: string, ms = 10000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};
