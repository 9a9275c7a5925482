/** Shared by the check tests: builds build/corpus once per process (the builder skips up-to-date files). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { corpusDir, repoRoot } from '../helpers/paths.js';

let built = false;

export function ensureCorpus(): void {
  if (built) return;
  execFileSync(process.execPath, [path.join(repoRoot, 'test', 'fixtures', 'build-corpus.mjs')], { stdio: 'pipe' });
  built = true;
}

export const corpus = (name: string): string => path.join(corpusDir, name);

/** A fresh temporary directory, removed by the caller's `after`. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `streamplug-${prefix}-`));
}
