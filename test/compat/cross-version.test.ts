/**
 * Real cross-version addons (built with each supported Node's own headers by
 * test/fixtures/build-cross-version.mjs): whichever Node runs this file, the check must accept
 * exactly the ones built for it and refuse the others with both versions named — before loading,
 * since Node 20 segfaults on a Node-API version it lacks.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkPluginFile } from '../../src/check/index.js';
import { buildDir, repoRoot } from '../helpers/paths.js';

interface Entry { file: string; kind: 'legacy' | 'napi'; node: string; modules?: number; napi: number }

const dir = path.join(buildDir, 'corpus-xv');
let entries: Entry[] = [];
/** Node majors build-cross-version.mjs could not fetch (no registry here), with the reason. */
let unavailable: { major: string; reason: string }[] = [];
const modules = Number(process.versions.modules);
const napi = Number(process.versions.napi);

before(() => {
  execFileSync(process.execPath, [path.join(repoRoot, 'test/fixtures/build-cross-version.mjs')], { stdio: 'pipe' });
  entries = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as Entry[];
  unavailable = JSON.parse(fs.readFileSync(path.join(dir, 'unavailable.json'), 'utf8')) as typeof unavailable;
});

/** Really loads an addon (only ever called on files the check accepted). */
function load(file: string): Record<string, unknown> {
  const mod = { exports: {} as Record<string, unknown> };
  process.dlopen(mod, file, os.constants.dlopen.RTLD_NOW);
  return mod.exports;
}

test('the corpus holds a legacy addon for at least three Node ABIs and a Node-API 10 addon', (t) => {
  if (unavailable.length && process.env.CI !== 'true') {
    t.skip(`Node ${unavailable.map((u) => u.major).join(', ')} could not be fetched from the npm registry (${unavailable[0].reason}); the other cross-version tests ran on what was built`);
    return;
  }
  const abis = new Set(entries.filter((e) => e.kind === 'legacy').map((e) => e.modules));
  assert.ok(abis.size >= 3, `ABIs built: ${[...abis].join(', ')}`);
  assert.ok(abis.has(modules), `no legacy addon built for this Node's ABI ${modules}`);
  assert.ok(entries.some((e) => e.kind === 'napi'));
});

test('a legacy addon loads only on the NODE_MODULE_VERSION it was built for', () => {
  for (const e of entries.filter((x) => x.kind === 'legacy')) {
    const file = path.join(dir, e.file);
    const report = checkPluginFile(file);
    if (e.modules === modules) {
      assert.equal(report.loadable, true, `${e.file}: ${report.error?.message}`);
      assert.equal(report.nodeModuleVersion, modules);
      assert.deepEqual(load(file), { abi: modules });
    } else {
      assert.equal(report.loadable, false, `${e.file} should be refused on ABI ${modules}`);
      assert.equal(report.error?.code, 'E_NODE_ABI');
      const msg = report.error!.message;
      assert.match(msg, new RegExp(`NODE_MODULE_VERSION ${e.modules}\\b`));
      assert.match(msg, new RegExp(`NODE_MODULE_VERSION ${modules}\\b`));
      assert.match(msg, /rebuild|Node-API/);
    }
  }
});

test('a Node-API 10 addon is refused where Node-API 10 is missing and runs where it exists', (t) => {
  const file = path.join(dir, 'napi-10.node');
  if (!fs.existsSync(file) && unavailable.length && process.env.CI !== 'true') {
    t.skip(`no headers offering Node-API 10: Node ${unavailable.map((u) => u.major).join(', ')} could not be fetched`);
    return;
  }
  const report = checkPluginFile(file);
  assert.equal(report.napiVersion, 10);
  if (napi >= 10) {
    assert.equal(report.loadable, true, report.error?.message);
    assert.deepEqual({ ...load(file) }, { napi: 10 });
  } else {
    assert.equal(report.loadable, false);
    assert.equal(report.error?.code, 'E_NAPI_VERSION');
    assert.match(report.error!.message, /Node-API 10\b/);
    assert.match(report.error!.message, new RegExp(`Node-API ${napi}\\b`));
  }
});

test('the host addon itself is a Node-API addon: the check accepts it on this Node', () => {
  const require = createRequire(import.meta.url);
  const addon = require.resolve(path.join(repoRoot, 'build/Release/streamplug_host.node'));
  const report = checkPluginFile(addon);
  assert.equal(report.flavour, 'node');
  assert.equal(report.loadable, true, report.error?.message);
});
