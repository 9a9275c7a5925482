/**
 * "Build once against contract major 1, load on every later 1.y host": every released header is
 * kept under native/include/streamplug/history/, and each sample is compiled here against each of
 * them (and today's) and loaded by today's host. A trial load in a child process judges each file
 * first, so a host-crashing regression fails the test instead of killing it; then the function
 * samples built against the 1.0 header are called in this process.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkPluginFile } from '../../src/check/index.js';
import { probePluginFile } from '../../src/check/probe.js';
import { PluginRegistry } from '../../src/plugins/index.js';
import { repoRoot } from '../helpers/paths.js';
import { tempDir } from '../check/corpus.js';

const include = path.join(repoRoot, 'native', 'include', 'streamplug');
const HEADERS = [
  ...fs.readdirSync(path.join(include, 'history')).filter((f) => /^plugin-1\.\d+\.h$/.test(f)).sort().map((f) => ({ label: f.slice(7, -2), file: path.join(include, 'history', f) })),
  { label: 'today', file: path.join(include, 'plugin.h') },
];

/**
 * Samples of functions (contract 1.0), of sources and sinks (1.1: the test-only iofx, which reads
 * its config by hand) and of sources and sinks reading their config through config_* (1.3).
 */
const SAMPLES = [
  { name: 'echo', source: 'echo/echo.c', minor: 0, provides: ['echo'] },
  { name: 'countPlusOne', source: 'countPlusOne/countPlusOne.cpp', minor: 0, provides: ['countPlusOne'] },
  { name: 'accumulateWordCount', source: 'accumulateWordCount/accumulateWordCount.c', minor: 0, provides: ['accumulateWordCount'] },
  { name: 'vector', source: 'vector/vector.c', minor: 0, provides: ['scale'] },
  { name: 'iofx', source: '../test/io/fixtures/iofx.c', minor: 1, provides: ['fx_seq', 'fx_threads', 'fx_file', 'fx_many', 'fx_sink', 'fx_typed'] },
  { name: 'random', source: 'random/random.c', minor: 3, provides: ['random'] },
  { name: 'filesink', source: 'filesink/filesink.cpp', minor: 3, provides: ['filesink'] },
];

describe('samples built against every released header load on today\'s host', () => {
  const work = tempDir('history');
  const built: { header: string; sample: string; file: string }[] = [];
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  before(() => {
    assert.ok(['1.0', '1.1', '1.2'].every((l) => HEADERS.some((h) => h.label === l)), 'history/plugin-1.0.h, 1.1.h and 1.2.h must be kept');
    for (const h of HEADERS) {
      const inc = path.join(work, `inc-${h.label}`);
      fs.mkdirSync(path.join(inc, 'streamplug'), { recursive: true });
      fs.copyFileSync(h.file, path.join(inc, 'streamplug', 'plugin.h'));
      const headerMinor = Number(/#define STREAMPLUG_CONTRACT_MINOR (\d+)/.exec(fs.readFileSync(h.file, 'utf8'))![1]);
      for (const s of SAMPLES) {
        if (s.minor > headerMinor) continue; // the header lacks what the sample uses (sources/sinks, config_*)
        const out = path.join(work, h.label, `${s.name}.so`);
        fs.mkdirSync(path.dirname(out), { recursive: true });
        const cxx = s.source.endsWith('.cpp');
        execFileSync(cxx ? 'g++' : 'gcc', [
          '-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', cxx ? '-std=c++17' : '-std=c99', '-fvisibility=hidden',
          ...(cxx ? ['-fvisibility-inlines-hidden', '-fno-gnu-unique'] : []), '-pthread',
          '-I', inc, '-o', out, path.join(repoRoot, 'plugins', s.source),
        ], { stdio: 'pipe' });
        built.push({ header: h.label, sample: s.name, file: out });
      }
    }
  });

  it('builds every function sample against every header, sources/sinks from 1.1 on, config_* users from 1.3 on', () => {
    for (const h of HEADERS) {
      const mine = built.filter((b) => b.header === h.label).map((b) => b.sample);
      assert.ok(mine.includes('echo') && mine.includes('countPlusOne'), `${h.label}: ${mine.join(', ')}`);
      if (h.label !== '1.0') assert.ok(mine.includes('iofx'), `${h.label}: ${mine.join(', ')}`);
      if (!['1.0', '1.1', '1.2'].includes(h.label)) assert.ok(mine.includes('random') && mine.includes('filesink'), `${h.label}: ${mine.join(', ')}`);
    }
  });

  it('every build passes the check and loads in a child process with what it provides', async () => {
    for (const b of built) {
      const report = checkPluginFile(b.file);
      assert.equal(report.loadable, true, `${b.header}/${b.sample}: ${report.error?.message}`);
      const r = await probePluginFile(b.file);
      assert.equal(r.status, 'loaded', `${b.header}/${b.sample}: ${JSON.stringify(r)}`);
      if (r.status !== 'loaded') continue;
      const sample = SAMPLES.find((s) => s.name === b.sample)!;
      assert.deepEqual([...r.functions, ...r.sources, ...r.sinks], sample.provides, `${b.header}/${b.sample}`);
    }
  });

  it('the check tells the two minors apart: needed, and built with', () => {
    const old = checkPluginFile(built.find((b) => b.header === '1.0' && b.sample === 'echo')!.file);
    assert.equal(old.manifest?.contract, '1.0');
    assert.equal(old.manifest?.header, undefined);
    assert.match(old.rows.find((r) => r.check === 'manifest')!.message, /needs host contract 1\.0 or newer, built with header 1\.0 or 1\.1 \(not recorded/);
    const mid = checkPluginFile(built.find((b) => b.header === '1.2' && b.sample === 'iofx')!.file);
    assert.equal(mid.manifest?.contract, '1.1');
    assert.equal(mid.manifest?.header, '1.2');
    assert.match(mid.rows.find((r) => r.check === 'manifest')!.message, /needs host contract 1\.1 or newer, built with header 1\.2/);
    const today = checkPluginFile(built.find((b) => b.header === 'today' && b.sample === 'random')!.file);
    assert.equal(today.manifest?.contract, '1.3');
    assert.equal(today.manifest?.header, '1.3');
  });

  it('calls the 1.0-built functions on today\'s host and gets eKuiper\'s sample results', async () => {
    const registry = new PluginRegistry({ onLog: () => {} });
    try {
      for (const s of ['echo', 'countPlusOne', 'vector']) await registry.load(built.find((b) => b.header === '1.0' && b.sample === s)!.file);
      // The two minors, as the loader reads them: needs 1.0, built with the 1.0 header.
      assert.equal(registry.get('echo')?.contract, '1.0');
      assert.equal(registry.get('echo')?.header, '1.0');
      const echo = registry.getFunction('echo')!.instantiate('compat');
      assert.equal(echo.call('hello'), 'hello');
      const count = registry.getFunction('countPlusOne')!.instantiate('compat');
      const groups = count.callGroups([{ type: 'float64', values: new Float64Array([50, 51, 52, 53, 54]) }], 5, new Uint32Array([0, 3, 5]));
      assert.deepEqual(Array.from(groups.values as BigInt64Array, Number), [4, 3]);
      const scale = registry.getFunction('scale')!.instantiate('compat');
      const scaled = scale.callBatch([{ type: 'float64', values: new Float64Array([1, -2]) }, { type: 'float64', values: new Float64Array([3, 3]) }], 2);
      assert.deepEqual(Array.from(scaled.values as Float64Array), [3, -6]);
      for (const i of [echo, count, scale]) i.close();
      const today = built.find((b) => b.header === 'today' && b.sample === 'random')!.file;
      await registry.load(today);
      assert.equal(registry.get('random')?.contract, '1.3');
      assert.equal(registry.get('random')?.header, '1.3');
      await registry.load(built.find((b) => b.header === '1.1' && b.sample === 'iofx')!.file);
      assert.equal(registry.get('iofx')?.contract, '1.1');
      assert.equal(registry.get('iofx')?.header, '1.1');
    } finally {
      registry.unloadAll();
    }
  });
});
