/**
 * scripts/run-tests.mjs on a machine without the optional tools (a PATH holding only node and sh):
 * the tests run, and the run ends with ONE line naming every missing tool and the apt command;
 * under CI=true the same run fails before running anything.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { repoRoot } from '../helpers/paths.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-optional-tools-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const bin = path.join(dir, 'bin');
fs.mkdirSync(bin);
fs.symlinkSync(process.execPath, path.join(bin, 'node'));
fs.symlinkSync(spawnSync('sh', ['-c', 'command -v sh'], { encoding: 'utf8' }).stdout.trim(), path.join(bin, 'sh'));
const probe = path.join(dir, 'probe.test.js');
fs.writeFileSync(probe, "import { test } from 'node:test'; test('probe', () => {});\n");
const tools = JSON.parse(fs.readFileSync(path.join(repoRoot, 'scripts/optional-tools.json'), 'utf8')).tools as Record<string, { package: string }>;

const { NODE_TEST_CONTEXT: _, CI: __, ...env } = process.env;
const runTests = (extra: Record<string, string>) =>
  spawnSync(process.execPath, [path.join(repoRoot, 'scripts/run-tests.mjs'), probe], { encoding: 'utf8', env: { ...env, PATH: bin, ...extra } });

describe('run-tests without the optional tools', () => {
  it('passes and ends with one line naming every missing tool and the apt command', () => {
    const r = runTests({});
    assert.equal(r.status, 0, r.stderr);
    const last = r.stderr.trim().split('\n').pop() ?? '';
    for (const [tool, t] of Object.entries(tools)) {
      assert.ok(last.includes(tool), `${tool} not named in: ${last}`);
      assert.ok(last.includes(t.package), `${t.package} not in the apt command: ${last}`);
    }
    assert.match(last, /^run-tests: optional tools missing: .* install them with: sudo apt-get install -y /);
  });

  it('fails under CI=true, before running any test', () => {
    const r = runTests({ CI: 'true' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /CI=true and optional tools missing: musl-gcc/);
    assert.doesNotMatch(r.stdout, /probe/);
  });
});
