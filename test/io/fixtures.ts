/** Builds test/io/fixtures/iofx.c (test-only sources and sinks) into a temporary directory. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ioLive, type IoLive } from '../../src/plugins/native-io.js';
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

/** A full garbage collection (the flag is set at run time: tests run without --expose-gc). */
export function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

export const NOTHING_LIVE: IoLive = { sources: 0, sinks: 0, threads: 0, queuedItems: 0, sinkBatches: 0, lentLines: 0 };

/**
 * Collects garbage and lets finalizers run until the addon holds no source or sink, thread, queued
 * item, sink batch or lent buffer (or `ms` pass); returns the last counts for the caller to assert.
 */
export async function settledIoLive(ms = 15000): Promise<IoLive> {
  const end = Date.now() + ms;
  for (;;) {
    collectGarbage();
    await new Promise((r) => setImmediate(r)); // wake-function finalizers run on the event loop
    const live = ioLive();
    if (Object.values(live).every((v) => v === 0) || Date.now() > end) return live;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resident set size in MB, for information only: V8 and the allocator make it noisy. */
export const rssMb = (): number => process.memoryUsage().rss / 1e6;
