// Which optional system tools (scripts/optional-tools.json) are missing from PATH, and the one
// notice that names them with the apt command. Used by run-tests.mjs and the fixture builders.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const table = JSON.parse(fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'optional-tools.json'), 'utf8')).tools;

/** True when `tool` is on PATH (as the tests will find it). */
export function hasTool(tool) {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' }).status === 0;
}

/** [{tool, package, without}] for every optional tool not on PATH. */
export function missingTools() {
  return Object.entries(table).filter(([tool]) => !hasTool(tool)).map(([tool, t]) => ({ tool, ...t }));
}

/** True under CI=true: there a missing optional tool fails the run instead of being skipped. */
export const strict = process.env.CI === 'true';

/** One line naming every missing tool and the command that installs them, or '' when none is missing. */
export function missingNotice(missing = missingTools()) {
  if (missing.length === 0) return '';
  const packages = [...new Set(missing.map((m) => m.package))].join(' ');
  return `optional tools missing: ${missing.map((m) => m.tool).join(', ')} — some tests were skipped or used stand-ins; ` +
    `install them with: sudo apt-get install -y ${packages}`;
}
