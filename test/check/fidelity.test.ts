/**
 * Issue 11, one test per finding: the check, the loader and install judge each adversarial plugin
 * alike, and nothing here can take the test process (or a host) down: what may crash is loaded in a
 * child process (the trial load, or test/helpers/loader-child.ts, which switches the check off to
 * show the loader's own verdict).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkPluginFile } from '../../src/check/index.js';
import { DT_RUNPATH, ElfFile, readIdent } from '../../src/check/elf.js';
import { parseManifestFields } from '../../src/check/manifest.js';
import { LIMITS } from '../../src/check/contract.js';
import { runInstallChecks } from '../../src/manager/install-checks.js';
import { PluginManager } from '../../src/manager/manager.js';
import { hostAddon } from '../../src/plugins/native-addon.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { cliPath, startHostProcess } from '../helpers/host-process.js';
import { loaderOutcome } from '../helpers/loader.js';
import { repoRoot, samplesDir } from '../helpers/paths.js';
import { makeZip } from '../manager/zips.js';
import { corpus, ensureCorpus, tempDir } from './corpus.js';

const include = path.join(repoRoot, 'native', 'include');
const cli = (...args: string[]) => spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout: 120_000 });
const work = tempDir('fidelity');
after(() => fs.rmSync(work, { recursive: true, force: true }));
before(ensureCorpus);

describe('1. append-only growth: tables walked by the entry size the plugin declares', () => {
  it('loads a plugin whose descriptor and entries carry appended fields, and calls entry 1 correctly', async () => {
    const r = await runInstallChecks(corpus('grown.so'));
    assert.equal(r.loadable, true, r.error?.message);
    assert.deepEqual(r.provides, { name: 'grown', functions: ['grownTimes2', 'grownTimes3'], sources: ['grownsrc_a', 'grownsrc_b'], sinks: ['grownsink_a', 'grownsink_b'] });
    const registry = new PluginRegistry({ onLog: () => undefined });
    try {
      await registry.load(corpus('grown.so'));
      // Entry 1 is found at the plugin's stride: with the host's sizeof it would be garbage.
      const f = registry.getFunction('grownTimes3')!.instantiate('grown');
      assert.equal(f.call(7), 21);
      f.close();
      assert.deepEqual(registry.connectors('grown'), { sources: ['grownsrc_a', 'grownsrc_b'], sinks: ['grownsink_a', 'grownsink_b'] });
    } finally {
      registry.unloadAll();
    }
  });

  for (const [file, message] of [
    ['grown-mixed.so', /functions entry 1 has size \d+, entry 0 \d+/],
    ['grown-odd.so', /functions entry 0 has size \d+, expected a multiple of 8/],
    ['grown-small.so', /functions entry 0 has size 16, expected a multiple of 8 from \d+ \(SP_FUNCTION_DEF_SIZE_1_0\)/],
  ] as const) {
    it(`refuses ${file} in the check and in the loader alike (E_BAD_DESCRIPTOR)`, async () => {
      const r = await runInstallChecks(corpus(file));
      assert.equal(r.error?.code, 'E_BAD_DESCRIPTOR');
      assert.match(r.error!.message, message);
      const l = await loaderOutcome(corpus(file));
      assert.equal(l.code, 'E_BAD_DESCRIPTOR', JSON.stringify(l));
    });
  }

  it('loads a plugin built with the 1.0 header (descriptor of SP_DESCRIPTOR_SIZE_1_0 bytes)', async () => {
    const r = await runInstallChecks(corpus('header-1.0.so'));
    assert.equal(r.loadable, true, r.error?.message);
    assert.deepEqual(r.provides?.functions, ['goodDouble10']);
  });
});

describe('2. an entry point that is a data object', () => {
  it('is refused by the check (E_NO_ENTRY, STT_OBJECT) and by the loader before it is called', async () => {
    const r = checkPluginFile(corpus('entry-object.so'));
    assert.equal(r.error?.code, 'E_NO_ENTRY');
    assert.match(r.error!.message, /streamplug_plugin_v1 as a data object \(STT_OBJECT\)/);
    const l = await loaderOutcome(corpus('entry-object.so'));
    assert.equal(l.code, 'E_NO_ENTRY', JSON.stringify(l));
    assert.match(l.message!, /data object \(STT_OBJECT\)/);
  });
});

describe('3. a .node whose Node-API version cannot be read', () => {
  for (const file of ['napi-instrumented.node', 'napi-pg.node', 'napi-coverage.node']) {
    it(`refuses ${file} (E_NAPI_UNKNOWN) in check, pack and install, naming the fix`, async () => {
      const r = checkPluginFile(corpus(file));
      assert.equal(r.error?.code, 'E_NAPI_UNKNOWN');
      assert.match(r.error!.message, /without instrumentation.*-DNAPI_VERSION=/);
      const out = path.join(work, `${file}.zip`);
      const pack = cli('pack', corpus(file), '--type', 'functions', '--name', 'napiok', '-o', out);
      assert.equal(pack.status, 1, pack.stdout + pack.stderr);
      assert.match(pack.stderr, /E_NAPI_UNKNOWN/);
      assert.equal(fs.existsSync(out), false);
      await makeZip(out, [{ name: 'napiok.node', file: corpus(file) }]);
      const data = path.join(work, `install-${file}`);
      const m = new PluginManager({ dataDir: data, registry: new PluginRegistry({ onLog: () => undefined }) });
      await assert.rejects(m.install({ type: 'functions', name: 'napiok', source: { file: out } }), { code: 'E_NAPI_UNKNOWN' });
    });
  }
});

describe('4. one manifest grammar, two parsers', () => {
  const { vectors } = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test', 'fixtures', 'manifest-vectors.json'), 'utf8')) as {
    vectors: { name: string; text?: string; hex?: string; fields?: Record<string, string>; error?: string }[];
  };
  it('has vectors of both kinds', () => {
    assert.ok(vectors.filter((v) => v.fields).length >= 5 && vectors.filter((v) => v.error).length >= 15);
  });
  for (const v of vectors) {
    it(`check and loader parse "${v.name}" identically`, () => {
      const bytes = v.hex !== undefined ? Buffer.from(v.hex, 'hex') : Buffer.from(v.text!, 'utf8');
      const ts = parseManifestFields(bytes);
      const native = hostAddon().parseManifest(bytes);
      const expected = v.fields ? { fields: v.fields } : { error: v.error };
      assert.deepEqual({ ...ts, ...('fields' in ts ? { fields: { ...ts.fields } } : {}) }, expected, 'src/check/manifest.ts');
      assert.deepEqual(native, expected, 'native/host/manifest.cc');
    });
  }
  it('refuses a CRLF manifest in the check and in the loader alike (E_BAD_MANIFEST)', async () => {
    assert.equal(checkPluginFile(corpus('crlf-manifest.so')).error?.code, 'E_BAD_MANIFEST');
    const l = await loaderOutcome(corpus('crlf-manifest.so'));
    assert.equal(l.code, 'E_BAD_MANIFEST', JSON.stringify(l));
    assert.match(l.message!, /carriage return/);
  });
});

describe('5. name limits', () => {
  it('refuses a plugin name over SP_MAX_NAME_LENGTH in the check and in the loader (E_LIMIT)', async () => {
    const r = checkPluginFile(corpus('long-name.so'));
    assert.equal(r.error?.code, 'E_LIMIT');
    assert.match(r.error!.message, new RegExp(`70 bytes; names are at most ${LIMITS.nameLength} bytes`));
    const l = await loaderOutcome(corpus('long-name.so'));
    assert.equal(l.code, 'E_LIMIT', JSON.stringify(l));
  });

  it('a hand-copied plugin with a 240-character name is logged and skipped; the host starts; REST answers 400', async () => {
    const data = path.join(work, 'long-name-host');
    const dir = path.join(data, 'plugins', 'functions');
    fs.mkdirSync(dir, { recursive: true });
    const long = 'p'.repeat(240);
    fs.copyFileSync(path.join(samplesDir, 'echo.so'), path.join(dir, `${long}.so`));
    fs.copyFileSync(path.join(samplesDir, 'vector.so'), path.join(dir, 'vector.so'));
    const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0'] });
    try {
      assert.equal((await fetch(`${host.url}/ping`)).status, 200);
      assert.deepEqual((await host.api('GET', '/plugins/functions')).body, ['vector']);
      assert.match(host.stdout() + host.stderr(), /ignoring .*pppp.*E_LIMIT|E_LIMIT.*ignoring/s);
      const post = await host.api('POST', '/plugins/functions', { name: long, file: path.join(work, 'none.zip') });
      assert.equal(post.status, 400, post.text);
      assert.equal(post.body.error, 'E_LIMIT');
      const get = await host.api('GET', `/plugins/functions/${'q'.repeat(LIMITS.nameLength + 1)}`);
      assert.equal(get.status, 400, get.text);
      assert.equal(get.body.error, 'E_LIMIT');
      // Longer still, the HTTP layer refuses the path itself: a client error, never a 500.
      const longer = await host.api('GET', `/plugins/functions/${long}`);
      assert.ok(longer.status >= 400 && longer.status < 500, longer.text);
    } finally {
      await host.stop();
    }
  });

  it('refuses an arity of 2e9 with a one-entry arg_types before reading it (E_LIMIT, in the loader)', async () => {
    const r = await runInstallChecks(corpus('huge-arity.so'));
    assert.equal(r.error?.code, 'E_LIMIT');
    assert.match(r.error!.message, /arity min 2000000000 .*SP_MAX_ARGS \(64\)/);
  });
});

describe('6. the whole dependency closure, and private libraries in the zip', () => {
  it('names a library missing two levels down and the chain that needs it', () => {
    const r = checkPluginFile(corpus('deep-missing.so'));
    assert.equal(r.error?.code, 'E_MISSING_LIBRARY');
    assert.match(r.error!.message, /needs libspgone\.so through deep-missing\.so -> libspmid\.so/);
  });

  it('the CMake helper links samples with RUNPATH $ORIGIN/lib', () => {
    const buf = fs.readFileSync(path.join(samplesDir, 'echo.so'));
    assert.deepEqual(new ElfFile(buf, readIdent(buf)!).searchPath(DT_RUNPATH), ['$ORIGIN/lib']);
  });

  describe('a zip carrying lib/libprivA.so -> lib/libprivB.so', () => {
    const src = path.join(repoRoot, 'test', 'fixtures', 'privdep');
    const build = path.join(work, 'privdep');
    before(() => {
      fs.mkdirSync(path.join(build, 'lib'), { recursive: true });
      const gcc = (...a: string[]) => execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-Werror', ...a], { stdio: 'pipe' });
      gcc('-Wl,-soname,libprivB.so', '-o', path.join(build, 'lib', 'libprivB.so'), path.join(src, 'privB.c'));
      gcc('-Wl,-soname,libprivA.so', '-o', path.join(build, 'lib', 'libprivA.so'), path.join(src, 'privA.c'), '-L', path.join(build, 'lib'), '-lprivB', "-Wl,-rpath,$ORIGIN");
      gcc('-I', include, '-fvisibility=hidden', '-o', path.join(build, 'privdep.so'), path.join(src, 'privdep.c'), '-L', path.join(build, 'lib'), '-lprivA', "-Wl,-rpath,$ORIGIN/lib", '-Wl,--enable-new-dtags');
    });

    it('is checked, installed into the plugin\'s version folder, found through $ORIGIN, and removed with it', async () => {
      const zip = path.join(work, 'privdep.zip');
      const pack = cli('pack', path.join(build, 'privdep.so'), '--type', 'functions', '--name', 'privdep', '--lib', path.join(build, 'lib', 'libprivA.so'), path.join(build, 'lib', 'libprivB.so'), '-o', zip);
      assert.equal(pack.status, 0, pack.stdout + pack.stderr);
      assert.match(pack.stdout, /privdep\.so, lib\/libprivA\.so, lib\/libprivB\.so/);
      const check = cli('plugin', 'check', zip, '--type', 'functions');
      assert.equal(check.status, 0, check.stdout + check.stderr);
      const data = path.join(work, 'privdep-data');
      const registry = new PluginRegistry({ onLog: () => undefined });
      const m = new PluginManager({ dataDir: data, registry });
      try {
        const res = await m.install({ type: 'functions', name: 'privdep', source: { file: zip } });
        assert.equal(res.state, 'loaded');
        assert.match(path.relative(path.join(data, 'plugins', 'functions'), res.file), /^privdep@[0-9a-f]{8}\/privdep@[0-9a-f]{8}\.so$/);
        assert.ok(fs.existsSync(path.join(path.dirname(res.file), 'lib', 'libprivB.so')));
        const f = registry.getFunction('privValue')!.instantiate('r');
        assert.equal(f.call(), 42);
        f.close();
        await m.remove('functions', 'privdep');
        assert.equal(fs.existsSync(path.dirname(res.file)), false);
      } finally {
        registry.unloadAll();
      }
    });

    it('is refused when a private library\'s own dependency is missing from lib/, naming it', async () => {
      const zip = path.join(work, 'privdep-incomplete.zip');
      await makeZip(zip, [
        { name: 'privdep.so', file: path.join(build, 'privdep.so') },
        { name: 'lib/libprivA.so', file: path.join(build, 'lib', 'libprivA.so') },
      ]);
      const check = cli('plugin', 'check', zip, '--type', 'functions');
      assert.equal(check.status, 1);
      assert.match(check.stderr, /E_MISSING_LIBRARY.*libprivB\.so/s);
    });
  });
});

describe('7. check, pack and plugin check run exactly install\'s checks', () => {
  it('refuses a source plugin that declares contract 1.0 (sources need 1.1) in check and loader alike', async () => {
    assert.equal(checkPluginFile(corpus('source-minor0.so')).error?.code, 'E_BAD_DESCRIPTOR');
    const l = await loaderOutcome(corpus('source-minor0.so'));
    assert.equal(l.code, 'E_BAD_DESCRIPTOR', JSON.stringify(l));
    assert.match(l.message!, /sources and sinks need 1\.1/);
  });

  it('refuses a function-only plugin packed, checked or installed as sinks (E_TYPE_MISMATCH)', async () => {
    const out = path.join(work, 'echo-as-sink.zip');
    const pack = cli('pack', path.join(samplesDir, 'echo.so'), '--type', 'sinks', '--name', 'echo', '-o', out);
    assert.equal(pack.status, 1, pack.stdout);
    assert.match(pack.stderr, /E_TYPE_MISMATCH.*provides no sinks.*--type functions/s);
    const checked = cli('check', '--type', 'sinks', path.join(samplesDir, 'echo.so'));
    assert.equal(checked.status, 1);
    assert.match(checked.stdout, /E_TYPE_MISMATCH/);
    await makeZip(out, [{ name: 'echo.so', file: path.join(samplesDir, 'echo.so') }]);
    const pc = cli('plugin', 'check', out, '--type', 'sinks');
    assert.equal(pc.status, 1);
    assert.match(pc.stderr, /E_TYPE_MISMATCH/);
    const m = new PluginManager({ dataDir: path.join(work, 'as-sink'), registry: new PluginRegistry({ onLog: () => undefined }) });
    await assert.rejects(m.install({ type: 'sinks', name: 'echo', source: { file: out } }), { code: 'E_TYPE_MISMATCH' });
  });

  it('`plugin check` has no default type: without --type it is a usage error', () => {
    const r = cli('plugin', 'check', path.join(work, 'echo-as-sink.zip'));
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--type/);
  });

  it('`streamplug check` refuses what only loading shows (bad magic), as install does', () => {
    const r = cli('check', '--json', corpus('bad-magic.so'));
    assert.equal(r.status, 1);
    assert.equal(JSON.parse(r.stdout)[0].error.code, 'E_BAD_MAGIC');
  });
});

describe('8. smaller findings', () => {
  it('refuses a plugin function that shadows a built-in, naming both, in the check and at load', async () => {
    const r = checkPluginFile(corpus('shadow-abs.so'));
    assert.equal(r.error?.code, 'E_BUILTIN_SHADOW');
    const l = await loaderOutcome(corpus('shadow-abs.so'));
    assert.equal(l.code, 'E_BUILTIN_SHADOW', JSON.stringify(l));
    assert.match(l.message!, /plugin shadowabs provides function abs, which has the name of the built-in SQL function abs/);
  });

  it('set_error(NULL) reads "plugin gave no reason"', async () => {
    const registry = new PluginRegistry({ onLog: () => undefined });
    try {
      await registry.load(corpus('null-error.so'));
      const f = registry.getFunction('failNull')!.instantiate('r');
      assert.throws(() => f.call(1), { code: 'E_FUNCTION_FAILED', message: /plugin gave no reason/ });
      f.close();
    } finally {
      registry.unloadAll();
    }
  });

  it('detects -z nodelete: the check warns, and a reload names it instead of STB_GNU_UNIQUE', async () => {
    const r = checkPluginFile(corpus('nodelete.so'));
    assert.equal(r.loadable, true);
    assert.equal(r.rows.find((row) => row.status === 'warn')?.code, 'W_NODELETE');
    const l = await loaderOutcome(corpus('nodelete.so'), 'reload');
    assert.equal(l.code, 'E_PLUGIN_LOADED', JSON.stringify(l));
    assert.match(l.message!, /-z nodelete \(DF_1_NODELETE\)/);
    assert.doesNotMatch(l.message!, /STB_GNU_UNIQUE/);
  });
});
