/** Runs test/helpers/loader-child.ts: the host's loader on one file, in a child process. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'loader-child.js');

export interface LoaderOutcome {
  loaded?: string;
  functions?: string[];
  code?: string;
  message?: string;
  /** Set when the child died instead of answering. */
  crashed?: string;
}

export function loaderOutcome(file: string, mode?: 'reload'): Promise<LoaderOutcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [child, file, ...(mode ? [mode] : [])], { timeout: 30_000 }, (err, stdout) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as LoaderOutcome);
      else resolve({ crashed: String((err as { signal?: string } | null)?.signal ?? err?.message ?? 'no output') });
    });
  });
}
