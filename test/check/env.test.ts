/** The check against other hosts (a HostEnv given explicitly), odd inputs, and its building blocks. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HOST_CONTRACT, checkPluginFile, hostEnv } from '../../src/check/index.js';
import { readLdSoCache } from '../../src/check/libraries.js';
import { decodeAarch64, decodeX86_64 } from '../../src/check/napi.js';
import type { HostEnv } from '../../src/check/types.js';
import { repoRoot } from '../helpers/paths.js';
import { LIMITS } from '../../src/check/contract.js';
import { corpus, ensureCorpus, tempDir } from './corpus.js';

const env = hostEnv();
const code = (file: string, e: HostEnv = env) => checkPluginFile(file, e).error?.code;

describe('hostEnv', () => {
  it('mirrors the contract version of plugin.h', () => {
    const header = fs.readFileSync(path.join(repoRoot, 'native/include/streamplug/plugin.h'), 'utf8');
    assert.equal(Number(/#define STREAMPLUG_CONTRACT_MAJOR (\d+)/.exec(header)?.[1]), HOST_CONTRACT.major);
    assert.equal(Number(/#define STREAMPLUG_CONTRACT_MINOR (\d+)/.exec(header)?.[1]), HOST_CONTRACT.minor);
    assert.deepEqual(env.contract, { major: HOST_CONTRACT.major, minor: HOST_CONTRACT.minor });
  });

  it('mirrors the limits of plugin.h', () => {
    const header = fs.readFileSync(path.join(repoRoot, 'native/include/streamplug/plugin.h'), 'utf8');
    const limit = (name: string) => Number(new RegExp(`#define ${name} (\\d+)`).exec(header)?.[1]);
    assert.equal(limit('SP_MAX_NAME_LENGTH'), LIMITS.nameLength);
    assert.equal(limit('SP_MAX_FUNCTIONS'), LIMITS.functions);
    assert.equal(limit('SP_MAX_SOURCES'), LIMITS.sources);
    assert.equal(limit('SP_MAX_SINKS'), LIMITS.sinks);
    assert.equal(limit('SP_MAX_ARGS'), LIMITS.args);
    assert.equal(limit('SP_MAX_MANIFEST_BYTES'), LIMITS.manifestBytes);
  });

  it('describes this process', () => {
    const header = process.report.getReport() as unknown as { header: { glibcVersionRuntime?: string } };
    assert.equal(env.arch, process.arch);
    assert.equal(env.glibcVersion, header.header.glibcVersionRuntime);
    assert.equal(env.napiVersion, Number(process.versions.napi));
    assert.equal(env.nodeModuleVersion, Number(process.versions.modules));
    assert.ok(env.libstdcxx?.versions.includes('GLIBCXX_3.4'), 'libstdc++ versions read');
    assert.ok(env.libstdcxx?.versions.includes('CXXABI_1.3'));
  });

  it('parses /etc/ld.so.cache', () => {
    const cache = readLdSoCache();
    assert.ok(cache, '/etc/ld.so.cache readable');
    assert.ok((cache.get('libc.so.6') ?? []).some((p) => fs.existsSync(p)));
  });
});

describe('checkPluginFile against another host', () => {
  before(ensureCorpus);

  it('refuses a Node-API 8 module on a Node that offers only Node-API 7', () => {
    const report = checkPluginFile(corpus('napi-ok.node'), { ...env, napiVersion: 7 });
    assert.equal(report.error?.code, 'E_NAPI_VERSION');
    assert.match(report.error?.message ?? '', /asks for Node-API 8 .*offers Node-API 7/);
  });

  it('refuses a plugin needing GLIBC_2.2.5 on glibc 2.1', () => {
    const report = checkPluginFile(corpus('runtime-error.so'), { ...env, glibcVersion: '2.1' });
    assert.equal(report.error?.code, 'E_GLIBC_VERSION');
    assert.match(report.error?.message ?? '', /GLIBC_2\.2\.5 .*glibc 2\.1/);
  });

  it('refuses a C++ plugin needing GLIBCXX_3.4.21 on an older libstdc++', () => {
    const old = { file: '/old/libstdc++.so.6', versions: ['GLIBCXX_3.4', 'GLIBCXX_3.4.20', 'CXXABI_1.3'] };
    const report = checkPluginFile(corpus('gnu-unique.so'), { ...env, libstdcxx: old });
    assert.equal(report.error?.code, 'E_GLIBCXX_VERSION');
    assert.match(report.error?.message ?? '', /needs GLIBCXX_3\.4\.21 .*provides up to GLIBCXX_3\.4\.20/);
  });

  it('machine: aarch64.so passes on arm64, good.so does not', () => {
    const arm = { ...env, arch: 'arm64' };
    assert.equal(checkPluginFile(corpus('aarch64.so'), arm).loadable, true);
    const report = checkPluginFile(corpus('good.so'), arm);
    assert.equal(report.error?.code, 'E_ARCH');
    assert.match(report.error?.message ?? '', /built for x86_64 \(EM_X86_64\); this process runs on aarch64 \(EM_AARCH64\)/);
  });

  it('NODE_MODULE_VERSION, contract minor and libc follow the host', () => {
    assert.equal(code(corpus('legacy-abi-999.node'), { ...env, nodeModuleVersion: 999 }), undefined);
    assert.equal(code(corpus('newer-minor.so'), { ...env, contract: { major: 1, minor: 9 } }), undefined);
    const musl: HostEnv = { ...env, libc: 'musl', glibcVersion: undefined };
    assert.equal(code(corpus('good.so'), musl), undefined); // needs no C library at all
    const report = checkPluginFile(corpus('runtime-error.so'), musl);
    assert.equal(report.error?.code, 'E_LIBC');
    assert.match(report.error?.message ?? '', /built against glibc \(libc\.so\.6\); this process runs on musl/);
  });
});

describe('checkPluginFile on odd files', () => {
  let dir: string;
  before(() => {
    ensureCorpus();
    dir = tempDir('check');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, bytes: Buffer | string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, bytes);
    return f;
  };

  it('missing file, directory', () => {
    const missing = checkPluginFile(path.join(dir, 'nope.so'));
    assert.equal(missing.error?.code, 'E_NOT_FOUND_FILE');
    assert.match(missing.error?.message ?? '', /no such file: .*nope\.so/);
    const d = checkPluginFile(dir);
    assert.equal(d.error?.code, 'E_NOT_FILE');
    assert.match(d.error?.message ?? '', /is a directory, not a regular file/);
  });

  it('says what a non-ELF file is', () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('PK\x03\x04rest of a zip', 'latin1'), /a zip archive.*streamplug plugin install/],
      [Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]), /a Mach-O binary \(macOS\).*build the plugin on Linux/],
      [Buffer.from('MZ\x90\x00\x03\x00\x00\x00', 'latin1'), /a Windows PE file/],
      [Buffer.from('!<arch>\nfoo.o/', 'latin1'), /a static library \(ar archive/],
      [Buffer.from([0x7f, 0x45, 0x4c]), /unrecognised data/],
    ];
    for (const [bytes, message] of cases) {
      const report = checkPluginFile(write('x.so', bytes));
      assert.equal(report.error?.code, 'E_NOT_ELF');
      assert.match(report.error?.message ?? '', message);
    }
    assert.equal(code(write('short.so', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1]))), 'E_TRUNCATED');
  });

  it('refuses a big-endian file', () => {
    const bytes = fs.readFileSync(corpus('good.so'));
    bytes[5] = 2; // EI_DATA = ELFDATA2MSB
    const report = checkPluginFile(write('be.so', bytes));
    assert.equal(report.error?.code, 'E_ELF_ENDIAN');
    assert.match(report.error?.message ?? '', /big-endian \(ELFDATA2MSB\); this process is little-endian/);
  });

  it('judges the bytes, not the name', () => {
    assert.equal(checkPluginFile(write('plugin.txt', fs.readFileSync(corpus('good.so')))).loadable, true);
    const renamed = checkPluginFile(write('addon.so', fs.readFileSync(corpus('napi-ok.node'))));
    assert.equal(renamed.flavour, 'node');
    assert.equal(renamed.napiVersion, 8);
    const fake = checkPluginFile(write('fake.node', 'not an addon'));
    assert.equal(fake.flavour, 'node');
    assert.equal(fake.error?.code, 'E_NOT_ELF');
    const soAsNode = checkPluginFile(write('good.node', fs.readFileSync(corpus('good.so'))));
    assert.equal(soAsNode.error?.code, 'E_NOT_ADDON');
    assert.match(soAsNode.error?.message ?? '', /neither napi_register_module_v1 .*nor node_register_module_vNNN/);
  });

  it('follows DT_RUNPATH $ORIGIN and LD_LIBRARY_PATH', () => {
    const alone = path.join(dir, 'alone');
    const libs = path.join(dir, 'libs');
    fs.mkdirSync(alone);
    fs.mkdirSync(libs);
    fs.copyFileSync(corpus('origin-lib.so'), path.join(alone, 'origin-lib.so'));
    fs.copyFileSync(corpus('libsporigin.so'), path.join(libs, 'libsporigin.so'));
    const report = checkPluginFile(path.join(alone, 'origin-lib.so'));
    assert.equal(report.error?.code, 'E_MISSING_LIBRARY');
    assert.match(report.error?.message ?? '', /origin-lib\.so needs libsporigin\.so, .*DT_RUNPATH/);

    const saved = process.env.LD_LIBRARY_PATH;
    process.env.LD_LIBRARY_PATH = libs;
    try {
      assert.equal(checkPluginFile(path.join(alone, 'origin-lib.so')).loadable, true);
    } finally {
      if (saved === undefined) delete process.env.LD_LIBRARY_PATH;
      else process.env.LD_LIBRARY_PATH = saved;
    }
    fs.copyFileSync(corpus('libsporigin.so'), path.join(alone, 'libsporigin.so'));
    assert.equal(checkPluginFile(path.join(alone, 'origin-lib.so')).loadable, true);
  });
});

describe('reading the Node-API version from machine code', () => {
  it('x86_64: mov eax, imm32 after an optional endbr64 and frame prologue', () => {
    assert.equal(decodeX86_64(Buffer.from([0xb8, 8, 0, 0, 0, 0xc3])), 8);
    assert.equal(decodeX86_64(Buffer.from([0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0xb8, 9, 0, 0, 0, 0x5d, 0xc3])), 9);
    assert.equal(decodeX86_64(Buffer.from([0xb8, 0xff, 0xff, 0xff, 0x7f, 0xc3])), 2147483647);
    assert.equal(decodeX86_64(Buffer.from([0x8b, 0x05, 0, 0, 0, 0, 0xc3])), undefined);
  });

  it('aarch64: movz, movn, movz+movk and orr (words from aarch64-linux-gnu-as)', () => {
    const words = (...w: number[]) => {
      const b = Buffer.alloc(w.length * 4);
      w.forEach((x, i) => b.writeUInt32LE(x, i * 4));
      return b;
    };
    const RET = 0xd65f03c0;
    assert.equal(decodeAarch64(words(0x52800100, RET)), 8); // mov w0, #8
    assert.equal(decodeAarch64(words(0xd503245f, 0x52800140, RET)), 10); // bti c; mov w0, #10
    assert.equal(decodeAarch64(words(0x12b00000, RET)), 2147483647); // mov w0, #0x7fffffff (movn)
    assert.equal(decodeAarch64(words(0x529fffe0, 0x72afffe0, RET)), 2147483647); // movz + movk
    assert.equal(decodeAarch64(words(0x32007be0, RET)), 2147483647); // orr w0, wzr, #0x7fffffff
    assert.equal(decodeAarch64(words(0x3200f3e0, RET)), 0x55555555); // orr w0, wzr, #0x55555555
    assert.equal(decodeAarch64(words(0xb9400000, RET)), undefined); // ldr w0, [x0]
  });
});
