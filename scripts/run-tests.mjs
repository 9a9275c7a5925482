#!/usr/bin/env node
// Runs node's test runner on every compiled test file (dist/test/**/*.test.js), or on those under
// the folders given (`node scripts/run-tests.mjs dist/test/check`). Node 20 takes folders but
// Node 22+ takes only files or globs, so the list is made here, the same on every version.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { missingNotice, missingTools, strict } from './optional-tools.mjs';

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['dist/test'];
const files = [];
const walk = (p) => {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) { console.error(`run-tests: ${p} does not exist (run \`npm run build\` first)`); process.exit(2); }
  if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
  else if (p.endsWith('.test.js')) files.push(p);
};
roots.forEach(walk);
if (files.length === 0) { console.error(`run-tests: no *.test.js under ${roots.join(', ')}`); process.exit(2); }
// Optional system tools (scripts/optional-tools.json): a fresh machine skips what needs them and
// says so once at the end; CI (CI=true) must have them all, so there a missing one fails the run.
const missing = missingTools();
if (missing.length && strict) {
  console.error(`run-tests: CI=true and ${missingNotice(missing)}`);
  process.exit(1);
}
const notice = missingNotice(missing);
if (notice) console.error(`run-tests: ${notice}`);
const r = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
if (notice) console.error(`\nrun-tests: ${notice}`);
process.exit(r.status ?? 1);
