/**
 * The trial load: what the host would do with a file that passed the static check, found out in a
 * throwaway child process. The static check cannot see what only running the entry point shows (a
 * bad descriptor, a manifest that disagrees with it, init refusing, an undefined symbol); the child
 * loads the file exactly as the host's registry does and reports the outcome, and a crash there
 * costs only the child. `streamplug check`, `pack`, `plugin check` and install all use it (through
 * src/manager/install-checks.ts), so their verdict is the host's.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type ProbeResult =
  | { status: 'loaded'; name: string; functions: string[]; sources: string[]; sinks: string[] }
  | { status: 'refused'; code: string; message: string }
  | { status: 'crashed'; message: string }
  | { status: 'skipped'; message: string };

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'probe-child.js');

/** A plugin that loads in longer than this is reported as crashed (hung). Generous: init may connect. */
const TIMEOUT_MS = 30_000;

/** `loadTimeoutMs` bounds the child's own dlopen and init as in the host (E_LOAD_TIMEOUT, a refusal). */
export function probePluginFile(file: string, timeoutMs = TIMEOUT_MS, loadTimeoutMs?: number): Promise<ProbeResult> {
  if (!fs.existsSync(child)) return Promise.resolve({ status: 'skipped', message: `trial load not run: ${child} is missing (build with \`npm run build\`)` });
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [child, path.resolve(file)],
      { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, env: { ...process.env, STREAMPLUG_PROBE: '1', ...(loadTimeoutMs ? { STREAMPLUG_LOAD_TIMEOUT_MS: String(loadTimeoutMs) } : {}) } },
      (err, stdout, stderr) => {
        const line = stdout.split('\n').find((l) => l.startsWith('{"probe":'));
        if (line) {
          const r = (JSON.parse(line) as { probe: ProbeResult }).probe;
          if (r.status === 'refused' && r.code === 'E_ADDON_MISSING') resolve({ status: 'skipped', message: `trial load not run: ${r.message}` });
          else resolve(r);
          return;
        }
        const e = err as (NodeJS.ErrnoException & { signal?: string; killed?: boolean; code?: number | string }) | null;
        const how = e?.killed ? `did not finish within ${timeoutMs} ms` : e?.signal ? `died of ${e.signal}` : `exited with ${String(e?.code ?? 'no result')}`;
        const tail = stderr.trim().split('\n').slice(-3).join(' | ');
        resolve({ status: 'crashed', message: `loading it in a child process ${how}${tail ? ` (${tail.slice(0, 400)})` : ''}` });
      },
    );
  });
}
