#!/usr/bin/env node
// Builds the sample plugins (plugins/*) and the contract-header check into build/plugins/.
// CMake does the work; cmake-js configures it so the `.node` sample gets Node-API headers from the
// node-api-headers package (offline). Incremental: a second run rebuilds nothing and says so.
//
//   node scripts/build-plugins.mjs            (npm run build:plugins)
//   node scripts/build-plugins.mjs --verbose  show the compiler output even on success
//   STREAMPLUG_CMAKE_GENERATOR="Unix Makefiles"   force a CMake generator (default: Ninja if present, else make)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cmakeDir = path.join(root, 'build', 'cmake');
const outDir = path.join(root, 'build', 'plugins');
const verbose = process.argv.includes('--verbose');

function fail(message) {
  console.error(`build-plugins: ${message}`);
  process.exit(1);
}

function runs(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

function firstTool(candidates) {
  return candidates.filter(Boolean).find((c) => runs(c));
}

function run(cmd, args, what, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error) fail(`${what}: could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    process.stderr.write(output);
    fail(`${what} failed (${cmd} exited with ${r.status}); the output above says why`);
  }
  if (verbose) process.stdout.write(output);
  return output;
}

// ---- tools -------------------------------------------------------------------------------------
if (!runs('cmake')) fail('cmake not found on PATH; install CMake 3.16 or newer (Debian: apt-get install -y cmake)');
const cc = firstTool([process.env.CC, 'cc', 'gcc', 'clang']);
if (!cc) fail('no C compiler found (tried $CC, cc, gcc, clang); install one (Debian: apt-get install -y build-essential)');
const cxx = firstTool([process.env.CXX, 'c++', 'g++', 'clang++']);
if (!cxx) fail('no C++ compiler found (tried $CXX, c++, g++, clang++); install one (Debian: apt-get install -y g++)');
// STREAMPLUG_CMAKE_GENERATOR overrides the choice (e.g. "Unix Makefiles" where ninja misbehaves).
const generator = process.env.STREAMPLUG_CMAKE_GENERATOR || (runs('ninja') ? 'Ninja' : runs('make') ? 'Unix Makefiles' : null);
if (!generator) fail('neither ninja nor make found; install one (Debian: apt-get install -y ninja-build)');

const require = createRequire(import.meta.url);
let cmakeJsBin;
try {
  cmakeJsBin = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
} catch {
  fail('cmake-js not found in node_modules; it is a devDependency: run npm install (with dev dependencies)');
}

// ---- what to build: every plugins/<name>/ with a CMakeLists.txt --------------------------------
const plugins = fs
  .readdirSync(path.join(root, 'plugins'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(root, 'plugins', d.name, 'CMakeLists.txt')))
  .map((d) => {
    const lists = fs.readFileSync(path.join(root, 'plugins', d.name, 'CMakeLists.txt'), 'utf8');
    const file = `${d.name}${lists.includes('streamplug_add_plugin') ? '.so' : '.node'}`;
    return { name: d.name, file: path.join(outDir, file) };
  })
  .sort((a, b) => a.name.localeCompare(b.name));

// ---- configure (once; CMake re-runs itself when a CMakeLists.txt changes) ----------------------
function cacheValue(key) {
  const cache = path.join(cmakeDir, 'CMakeCache.txt');
  if (!fs.existsSync(cache)) return undefined;
  const line = fs.readFileSync(cache, 'utf8').split('\n').find((l) => l.startsWith(`${key}:`));
  return line?.slice(line.indexOf('=') + 1);
}

const home = cacheValue('CMAKE_HOME_DIRECTORY');
const configured =
  home !== undefined &&
  path.resolve(home) === root &&
  cacheValue('CMAKE_JS_VERSION') !== undefined &&
  cacheValue('CMAKE_GENERATOR') === generator &&
  cacheValue('STREAMPLUG_PLUGIN_OUTPUT_DIR') === outDir;
if (!configured) {
  // A cache from another checkout, generator or plain-cmake run cannot be reused.
  fs.rmSync(cmakeDir, { recursive: true, force: true });
  console.error(`build-plugins: configuring (${generator}, cmake-js) in ${path.relative(root, cmakeDir)}`);
  run(
    process.execPath,
    [
      cmakeJsBin, 'configure',
      '--directory', root,
      '--out', cmakeDir,
      '--generator', generator,
      '--log-level', 'error',
      `--CDSTREAMPLUG_PLUGIN_OUTPUT_DIR=${outDir}`,
      `--CDCMAKE_C_COMPILER=${cc}`,
      `--CDCMAKE_CXX_COMPILER=${cxx}`,
    ],
    'cmake configure',
    // Never download Node headers: Node-API builds use node-api-headers, anything else /usr.
    { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir || '/usr' },
  );
}

// ---- build: the header check, then one plugin at a time for a progress line each --------------
const mtime = (f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0);
const build = (target, what) => run('cmake', ['--build', cmakeDir, '--target', target], what);

build('streamplug_header_check', 'compiling streamplug/plugin.h as C99 and C++17');
let built = 0;
for (const p of plugins) {
  const before = mtime(p.file);
  build(p.name, `building plugin ${p.name}`);
  if (!fs.existsSync(p.file)) fail(`plugin ${p.name} built but ${path.relative(root, p.file)} is missing`);
  if (mtime(p.file) !== before) {
    built++;
    console.error(`build-plugins: built ${path.relative(root, p.file)}`);
  }
}
if (built === 0) {
  console.error(`build-plugins: ${plugins.length} plugins up to date in ${path.relative(root, outDir)}`);
}
