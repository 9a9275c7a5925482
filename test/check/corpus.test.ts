/** Every corpus file gets the expected verdict and a message that names the mismatch. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { checkPluginFile, hostEnv } from '../../src/check/index.js';
import { StreamplugError } from '../../src/errors.js';
import { samplesDir } from '../helpers/paths.js';
import { corpus, ensureCorpus } from './corpus.js';
import { HOST_CONTRACT } from '../../src/check/contract.js';

const HOST = `${HOST_CONTRACT.major}\\.${HOST_CONTRACT.minor}`;

const env = hostEnv();

// Written for the x86_64 glibc hosts the project builds and tests on (the corpus is built there).
const REFUSED: [file: string, code: string, message: RegExp][] = [
  ['not-elf.so', 'E_NOT_ELF', /not-elf\.so is a text file .*not an ELF shared object/],
  ['empty.so', 'E_EMPTY', /empty\.so is empty \(0 bytes\)/],
  ['truncated.so', 'E_TRUNCATED', /truncated\.so is 4000 bytes but .* ends at byte \d+/],
  ['truncated-200.so', 'E_TRUNCATED', /truncated-200\.so is 200 bytes but the program header table ends at byte \d+/],
  ['aarch64.so', 'E_ARCH', /built for aarch64 \(EM_AARCH64\); this process runs on x86_64 \(EM_X86_64\)/],
  ['elf32.so', 'E_ELF_CLASS', /32-bit ELF \(ELFCLASS32\); this process is 64-bit/],
  ['osabi-freebsd.so', 'E_OSABI', /FreeBSD \(ELFOSABI_FREEBSD\) = 9/],
  ['executable.so', 'E_NOT_SHARED', /position-independent executable \(PT_INTERP .*DF_1_PIE\).*-shared/],
  ['executable-nopie.so', 'E_NOT_SHARED', /an executable \(ET_EXEC\), not a shared object/],
  ['relocatable.so', 'E_NOT_SHARED', /a relocatable object \(ET_REL/],
  ['musl.so', 'E_LIBC', /built against musl \(DT_NEEDED libc\.so\); this process runs on glibc/],
  ['glibc-new.so', 'E_GLIBC_VERSION', new RegExp(`needs symbol version GLIBC_9\\.9 .*glibc ${env.glibcVersion}`)],
  ['missing-lib.so', 'E_MISSING_LIBRARY', /missing-lib\.so needs libspgone\.so, which the loader cannot find/],
  ['no-entry.so', 'E_NO_ENTRY', /no-entry\.so does not export streamplug_plugin_v1/],
  ['no-manifest.so', 'E_NO_MANIFEST', /no streamplug manifest note \(\.note\.streamplug/],
  ['contract-major.so', 'E_CONTRACT_MAJOR', new RegExp(`contract 2\\.0; this host implements contract ${HOST}`)],
  ['newer-minor.so', 'E_CONTRACT_MINOR', new RegExp(`contract 1\\.9, newer than this host's ${HOST}`)],
  ['legacy-abi-999.node', 'E_NODE_ABI', new RegExp(`NODE_MODULE_VERSION 999 .*NODE_MODULE_VERSION ${process.versions.modules}`)],
  ['napi-newer.node', 'E_NAPI_VERSION', new RegExp(`Node-API 2147483647 .*offers Node-API ${process.versions.napi}`)],
];

// Pass the check; the addon (or a call) refuses some of them later.
const LOADABLE = [
  'good.so',
  'bad-magic.so',
  'descriptor-major.so',
  'manifest-mismatch.so',
  'unresolved-symbol.so',
  'init-error.so',
  'dup-a.so',
  'dup-b.so',
  'runtime-error.so',
  'origin-lib.so',
  'gnu-unique.so',
  'napi-ok.node',
];

describe('checkPluginFile on the corpus', () => {
  before(ensureCorpus);

  it('runs on an x86_64 glibc host, as the expectations assume', () => {
    assert.equal(process.arch, 'x64');
    assert.equal(env.libc, 'glibc');
  });

  for (const [file, code, message] of REFUSED) {
    it(`refuses ${file} with ${code}`, () => {
      const report = checkPluginFile(corpus(file));
      assert.equal(report.loadable, false);
      assert.ok(report.error instanceof StreamplugError);
      assert.equal(report.error.code, code, report.error.message);
      assert.match(report.error.message, message);
      assert.equal(report.error.details?.file, corpus(file));
      assert.ok(report.error.details?.found !== undefined && report.error.details?.expected !== undefined);
      const row = report.rows.find((r) => r.status === 'refused');
      assert.equal(row?.code, code);
      assert.equal(row?.message, report.error.message);
    });
  }

  for (const file of LOADABLE) {
    it(`lets ${file} load`, () => {
      const report = checkPluginFile(corpus(file));
      assert.equal(report.loadable, true, report.error?.message);
      assert.equal(report.error, undefined);
      assert.ok(report.rows.every((r) => r.status !== 'refused'));
    });
  }

  it('reads the manifest note of good.so and of manifest-mismatch.so', () => {
    const good = checkPluginFile(corpus('good.so'));
    assert.equal(good.flavour, 'so');
    assert.equal(good.manifest?.name, 'good');
    assert.equal(good.manifest?.version, '1.0.0');
    assert.equal(good.manifest?.contract, '1.0');
    assert.deepEqual(good.manifest?.extensions, ['function:goodDouble']);
    assert.equal(good.manifest?.arch, 'x86_64');
    assert.equal(good.manifest?.libc, 'glibc');
    assert.deepEqual(checkPluginFile(corpus('manifest-mismatch.so')).manifest?.extensions, ['function:a']);
  });

  it('warns about STB_GNU_UNIQUE symbols in gnu-unique.so and suggests the flags', () => {
    const rows = checkPluginFile(corpus('gnu-unique.so')).rows.filter((r) => r.status === 'warn');
    assert.equal(rows.length, 1);
    assert.equal(rows[0].code, 'W_GNU_UNIQUE');
    assert.match(rows[0].message, /corpus_shared_counter.*-fvisibility=hidden -fvisibility-inlines-hidden/);
    assert.equal(checkPluginFile(corpus('good.so')).rows.find((r) => r.check === 'gnu-unique')?.status, 'ok');
  });

  it('checks the libstdc++ versions a C++ plugin needs', () => {
    const row = checkPluginFile(corpus('gnu-unique.so')).rows.find((r) => r.check === 'glibcxx');
    assert.equal(row?.status, 'ok');
    assert.match(row?.message ?? '', /libstdc\+\+\.so\.6/);
  });

  it('reads the Node-API version of napi-ok.node from its code', () => {
    const report = checkPluginFile(corpus('napi-ok.node'));
    assert.equal(report.flavour, 'node');
    assert.equal(report.napiVersion, 8);
    // and Node agrees that it loads
    const mod = { exports: {} as Record<string, unknown> };
    process.dlopen(mod, corpus('napi-ok.node'));
    assert.equal(mod.exports.hello, 'napi-ok');
  });

  it('says which contract a plugin exporting streamplug_plugin_v2 was built for', () => {
    const entry = checkPluginFile(corpus('contract-major.so')).rows.find((r) => r.check === 'entry');
    assert.equal(entry?.code, 'E_NO_ENTRY');
    assert.match(entry?.message ?? '', /exports streamplug_plugin_v2, built for contract 2/);
  });

  it('skips the library checks of a file for another machine', () => {
    const rows = checkPluginFile(corpus('aarch64.so')).rows;
    assert.equal(rows.find((r) => r.check === 'needed-libraries')?.status, 'skipped');
    assert.equal(rows.find((r) => r.check === 'entry')?.status, 'ok');
  });

  it('lets every sample plugin load', () => {
    const files = fs.readdirSync(samplesDir).filter((f) => f.endsWith('.so') || f.endsWith('.node'));
    assert.ok(files.length > 0, `no samples in ${samplesDir}: run npm run build:plugins`);
    for (const f of files) {
      const report = checkPluginFile(path.join(samplesDir, f));
      assert.equal(report.loadable, true, `${f}: ${report.error?.message}`);
      assert.equal(report.flavour, f.endsWith('.node') ? 'node' : 'so');
    }
  });
});
