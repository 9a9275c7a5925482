/**
 * Skips for tests that need an optional system tool (scripts/optional-tools.json, the one list).
 * A fresh machine skips them with the reason and scripts/run-tests.mjs names every missing tool in
 * one closing line; under CI=true nothing is skipped, so a missing tool fails there.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './paths.js';

interface Tool { package: string; without: string }
const tools = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'scripts/optional-tools.json'), 'utf8')) as { tools: Record<string, Tool> }).tools;

export function hasTool(tool: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' }).status === 0;
}

/** The skip reason when `tool` is missing (for `{ skip }` in node:test), else false. Never skips under CI=true. */
export function skipWithout(tool: string): string | false {
  const t = tools[tool];
  if (!t) throw new Error(`optional-tools: ${tool} is not listed in scripts/optional-tools.json; add it there`);
  if (hasTool(tool) || process.env.CI === 'true') return false;
  return `${tool} is not on PATH (apt-get install -y ${t.package})`;
}
