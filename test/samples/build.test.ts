/** The plugin build itself: the contract header compiles strictly in both languages; the build script is incremental and names a missing tool. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, samplesDir } from '../helpers/paths.js';

const include = path.join(repoRoot, 'native', 'include');
const checkDir = path.join(repoRoot, 'cmake', 'header-check');

function compile(compiler: string, args: string[]) {
  return spawnSync(compiler, ['-fsyntax-only', '-Wall', '-Wextra', '-Werror', `-I${include}`, ...args], { encoding: 'utf8' });
}

test('plugin.h compiles as strict C99 with -pedantic, macros expanded', () => {
  const r = compile(process.env.CC || 'cc', ['-std=c99', '-pedantic', '-x', 'c', path.join(checkDir, 'check.c')]);
  assert.equal(r.status, 0, r.stderr);
});

test('plugin.h compiles as C++17, macros expanded', () => {
  const r = compile(process.env.CXX || 'c++', ['-std=c++17', '-x', 'c++', path.join(checkDir, 'check.cpp')]);
  assert.equal(r.status, 0, r.stderr);
});

test('the header check is strict: a warning in a plugin source fails it', () => {
  // The same flags must reject code that only warns, or the two tests above prove nothing.
  const r = spawnSync(process.env.CC || 'cc', ['-fsyntax-only', '-std=c99', '-pedantic', '-Wall', '-Wextra', '-Werror', `-I${include}`, '-x', 'c', '-'], {
    input: '#include <streamplug/plugin.h>\nint f(int unused_arg) { return 0; }\n',
    encoding: 'utf8',
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unused/);
});

const script = path.join(repoRoot, 'scripts', 'build-plugins.mjs');

test('build-plugins is incremental: a second run rebuilds nothing and says so, on stderr (stdout stays free for bench --json)', () => {
  const files = fs.readdirSync(samplesDir).map((f) => path.join(samplesDir, f));
  const before = files.map((f) => fs.statSync(f).mtimeMs);
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const samples = fs.readdirSync(path.join(repoRoot, 'plugins'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(repoRoot, 'plugins', d.name, 'CMakeLists.txt'))).length;
  assert.match(r.stderr, new RegExp(`^build-plugins: ${samples} plugins up to date in build/plugins$`, 'm'));
  assert.equal(r.stdout, '');
  assert.deepEqual(files.map((f) => fs.statSync(f).mtimeMs), before);
});

test('build-plugins names the missing tool when cmake is not on PATH', () => {
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /build-plugins: cmake not found on PATH; install CMake/);
});
