/**
 * The plugin author kit as a new author uses it, with the real CLI in child processes:
 * `streamplug new` → `cmake -B build && cmake --build build` → `streamplug call` / `run-source` /
 * `feed-sink` → the project's own `npm test` on streamplug/testing; and what goes wrong on the way
 * (refused files, failing calls, bad rows, bad names, an existing folder).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../helpers/paths.js';
import { corpus, ensureCorpus } from '../check/corpus.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-author-kit-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

interface Run { code: number | null; stdout: string; stderr: string }

function sp(args: string[], opts: { cwd?: string; input?: string } = {}): Run {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/streamplug.js'), ...args], { cwd: opts.cwd ?? root, input: opts.input, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Without NODE_TEST_CONTEXT: a node --test started under this runner would otherwise report to it
// and exit 0 whatever its tests did.
const { NODE_TEST_CONTEXT: _, ...cleanEnv } = process.env;

function sh(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: cleanEnv });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} in ${cwd}:\n${r.stdout}\n${r.stderr}`);
}

/** streamplug new + the README's build command. Returns the project folder. */
function scaffold(name: string, kind: string, lang: string): string {
  const r = sp(['new', name, '--kind', kind, '--lang', lang]);
  assert.equal(r.code, 0, r.stderr);
  const dir = path.join(root, name);
  sh('cmake', ['-B', 'build', '-DCMAKE_BUILD_TYPE=Debug'], dir);
  sh('cmake', ['--build', 'build'], dir);
  return dir;
}

describe('streamplug new, call and the testing API', () => {
  let celsius = '';
  let so = '';
  before(() => {
    ensureCorpus();
    celsius = scaffold('celsius', 'function', 'c');
    so = path.join(celsius, 'build/plugins/celsius.so');
  });

  it('--version prints the package version; sdk --cmake-dir holds streamplugConfig.cmake (nothing copied into the project)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    assert.equal(sp(['--version']).stdout.trim(), pkg.version);
    const dir = sp(['sdk', '--cmake-dir']).stdout.trim();
    assert.ok(fs.existsSync(path.join(dir, 'streamplugConfig.cmake')), dir);
    assert.ok(fs.existsSync(path.join(sp(['sdk', '--include-dir']).stdout.trim(), 'streamplug/plugin.h')));
    assert.deepEqual(fs.readdirSync(celsius).filter((f) => f !== 'build').sort(),
      ['.gitignore', 'CMakeLists.txt', 'README.md', 'celsius.c', 'package.json', 'test']);
    assert.match(fs.readFileSync(path.join(celsius, 'CMakeLists.txt'), 'utf8'), /find_package\(streamplug 1 REQUIRED CONFIG/);
  });

  it('call: one row, JSON on stdout only', () => {
    const r = sp(['call', so, 'celsius', '212']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '212\n');
  });

  it('call --rows: a batch, one JSON line per row, nulls kept', () => {
    const rows = path.join(root, 'rows.jsonl');
    fs.writeFileSync(rows, '[1.5]\n[null]\n\n-40\n');
    const r = sp(['call', so, 'celsius', '--rows', rows]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '1.5\nnull\n-40\n');
  });

  it('call refuses what the host refuses, with the check\'s code, before loading', () => {
    const r = sp(['call', corpus('aarch64.so'), 'armFn', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_ARCH: .*aarch64/);
    assert.equal(r.stdout, '');
  });

  it('call reports a failing call as the host does (E_FUNCTION_FAILED with the plugin\'s message)', () => {
    const r = sp(['call', corpus('runtime-error.so'), 'failIfNegative', '-1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_FUNCTION_FAILED/);
    assert.equal(sp(['call', corpus('runtime-error.so'), 'failIfNegative', '3']).stdout, '3\n');
  });

  it('call: unknown function, wrong argument type, malformed rows and mixed types are refused with a code', () => {
    const unknown = sp(['call', so, 'fahrenheit', '1']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /E_UNKNOWN_FUNCTION: plugin celsius provides no function fahrenheit \(it provides: celsius\)/);
    const text = sp(['call', so, 'celsius', 'hot']);
    assert.equal(text.code, 1);
    assert.match(text.stderr, /E_ARG_TYPE: celsius: argument 1 is float64, got "hot"/);
    const bad = path.join(root, 'bad.jsonl');
    fs.writeFileSync(bad, '[1]\n{"x":1}\n');
    assert.match(sp(['call', so, 'celsius', '--rows', bad]).stderr, /E_BAD_REQUEST: .*bad\.jsonl:2: an object/);
    fs.writeFileSync(bad, '[1]\n[1, 2]\n');
    assert.match(sp(['call', so, 'celsius', '--rows', bad]).stderr, /E_BAD_REQUEST: row 2 has 2 arguments, row 1 has 1/);
    fs.writeFileSync(bad, '[1]\nnot json\n');
    assert.match(sp(['call', so, 'celsius', '--rows', bad]).stderr, /bad\.jsonl:2: not JSON/);
    const both = sp(['call', so, 'celsius', '1', '--rows', bad]);
    assert.equal(both.code, 2);
  });

  it('the project\'s own npm test passes through streamplug/testing, and fails when the plugin is wrong', () => {
    sh('npm', ['test', '--silent'], celsius);
    // Break the plugin (x + 1 instead of x): the generated test must catch it.
    const src = path.join(celsius, 'celsius.c');
    fs.writeFileSync(src, fs.readFileSync(src, 'utf8').replace('out[i] = in[i];', 'out[i] = in[i] + 1;'));
    sh('cmake', ['--build', 'build'], celsius);
    const r = spawnSync('npm', ['test', '--silent'], { cwd: celsius, encoding: 'utf8', env: cleanEnv });
    assert.notEqual(r.status, 0, 'the generated test passed on a wrong plugin');
    assert.match(r.stdout, /213 !== 212/);
    assert.equal(sp(['call', so, 'celsius', '212']).stdout, '213\n');
  });

  it('new refuses a bad name (exit 2) and a non-empty folder (exit 1, nothing written)', () => {
    assert.equal(sp(['new', '1abc', '--kind', 'function']).code, 2);
    assert.equal(sp(['new', 'a-b', '--kind', 'function']).code, 2);
    assert.equal(sp(['new', 'x', '--kind', 'table']).code, 2);
    assert.equal(sp(['new', 'x', '--kind', 'source', '--lang', 'node']).code, 2);
    const before = fs.readFileSync(path.join(celsius, 'celsius.c'), 'utf8');
    const r = sp(['new', 'celsius', '--kind', 'function']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_CONFLICT: .*celsius exists and is not empty/);
    assert.equal(fs.readFileSync(path.join(celsius, 'celsius.c'), 'utf8'), before);
  });

  it('a source project: run-source prints what it emits; its npm test passes', () => {
    const dir = scaffold('ticks', 'source', 'c');
    const r = sp(['run-source', 'build/plugins/ticks.so', '--rows', '3'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '{"seq":0}\n{"seq":1}\n{"seq":2}\n');
    sh('npm', ['test', '--silent'], dir);
    assert.match(sp(['run-source', 'build/plugins/ticks.so', '--config', '[1]'], { cwd: dir }).stderr, /--config must be a JSON object/);
    // The scaffold reads its config through the host's config_* routines (contract 1.3).
    const started = sp(['run-source', 'build/plugins/ticks.so', '--config', '{"start": 40, "interval": 1}', '--rows', '2'], { cwd: dir });
    assert.equal(started.stdout, '{"seq":40}\n{"seq":41}\n', started.stderr);
    const wrong = sp(['run-source', 'build/plugins/ticks.so', '--config', '{"interval": "fast"}', '--rows', '1'], { cwd: dir });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /config key "interval": expected an integer \(int64\), found string "fast"/);
  });

  it('a sink project (C++): feed-sink delivers stdin rows; the sink writes them', () => {
    const dir = scaffold('lines', 'sink', 'cpp');
    const r = sp(['feed-sink', 'build/plugins/lines.so'], { cwd: dir, input: '{"a":1}\n{"b":"x"}\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\{"a":1\}\s*\{"b":"x"\}/);
    assert.match(r.stderr, /2 rows delivered/);
    const quiet = sp(['feed-sink', 'build/plugins/lines.so', '--config', '{"quiet": true}'], { cwd: dir, input: '{"a":1}\n' });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stdout, /"a":1/);
    const wrong = sp(['feed-sink', 'build/plugins/lines.so', '--config', '{"quiet": "yes"}'], { cwd: dir, input: '{"a":1}\n' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /config key "quiet": expected a boolean \(true or false\), found string "yes"/);
    const notObj = sp(['feed-sink', 'build/plugins/lines.so'], { cwd: dir, input: '[1]\n' });
    assert.equal(notObj.code, 1);
    assert.match(notObj.stderr, /E_BAD_REQUEST: stdin:1: expected a JSON object per line/);
    // The sink has no source: run-source says so instead of loading something else.
    assert.match(sp(['run-source', 'build/plugins/lines.so'], { cwd: dir }).stderr, /has 0 sources/);
  });
});
