/**
 * The pre-load compatibility check: decides, from the file's bytes alone and before anything is
 * mapped into the process, whether this process can dlopen a plugin. glibc's loader kills the
 * process on some bad files (SIGBUS on a truncated library, a crash on a too-new Node-API module),
 * so every such case must be refused here. Synchronous and never throws: a malformed file is a
 * refusal in the report.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StreamplugError, type ErrorCode } from '../errors.js';
import { LIMITS, MINOR_FOR_KIND, entryName } from './contract.js';
import { builtinNamed } from './builtins.js';
import {
  DT_RPATH,
  DT_RUNPATH,
  ET_DYN,
  ElfFile,
  ElfMalformed,
  ElfTruncated,
  PF_X,
  PT_LOAD,
  SHT_NOBITS,
  STB_GNU_UNIQUE,
  STT_FUNC,
  STT_GNU_IFUNC,
  STT_OBJECT,
  readIdent,
  type DynamicSymbol,
} from './elf.js';
import { hostEnv } from './host-env.js';
import { resolveClosure } from './libraries.js';
import { NOTE_OWNER, NOTE_TYPE_MANIFEST, parseManifest } from './manifest.js';
import { NAPI_VERSION_EXPERIMENTAL, decodeAarch64, decodeX86_64 } from './napi.js';
import { elfTypeName, hostMachine, machineName, osabiName, sniff } from './names.js';
import type { CheckReport, CheckRow, HostEnv, Manifest } from './types.js';

export { hostEnv } from './host-env.js';
export { HOST_CONTRACT } from './contract.js';
export type { CheckReport, CheckRow, HostEnv, Manifest } from './types.js';

/** Thrown inside the checker to stop after a refusal that makes further checks meaningless. */
class Stop extends Error {}

const NAPI_ENTRY = 'napi_register_module_v1';
const NAPI_VERSION_FN = 'node_api_module_get_api_version_v1';
const LEGACY_ENTRY = /^node_register_module_v(\d+)$/;
const HIDDEN_FLAGS = '-fvisibility=hidden -fvisibility-inlines-hidden';

export function checkPluginFile(file: string, env: HostEnv = hostEnv()): CheckReport {
  const checker = new Checker(file, env);
  try {
    checker.run();
  } catch (err) {
    if (!(err instanceof Stop)) checker.malformed(err);
  }
  return checker.report();
}

class Checker {
  private readonly rows: CheckRow[] = [];
  private readonly details: Map<CheckRow, { found: unknown; expected: unknown }> = new Map();
  private readonly name: string;
  private flavour: CheckReport['flavour'];
  private manifest?: Manifest;
  private napiVersion?: number;
  private nodeModuleVersion?: number;

  constructor(
    private readonly file: string,
    private readonly env: HostEnv,
  ) {
    this.name = path.basename(file);
    this.flavour = file.endsWith('.node') ? 'node' : 'unknown';
  }

  private ok(check: string, message: string): void {
    this.rows.push({ check, status: 'ok', message });
  }
  private skip(check: string, message: string): void {
    this.rows.push({ check, status: 'skipped', message });
  }
  private warn(check: string, code: ErrorCode, message: string): void {
    this.rows.push({ check, status: 'warn', code, message });
  }
  private refuse(check: string, code: ErrorCode, message: string, found: unknown, expected: unknown): void {
    const row: CheckRow = { check, status: 'refused', code, message };
    this.rows.push(row);
    this.details.set(row, { found, expected });
  }
  private stop(check: string, code: ErrorCode, message: string, found: unknown, expected: unknown): never {
    this.refuse(check, code, message, found, expected);
    throw new Stop();
  }

  /** Turns a parse failure into the refusal it stands for. */
  malformed(err: unknown): void {
    if (err instanceof ElfTruncated) {
      this.refuse(
        'structure',
        'E_TRUNCATED',
        `${this.name} is ${err.fileSize} bytes but ${err.what} ends at byte ${err.end}: the file is cut short ` +
          `(an interrupted copy or download?); copy or build it again`,
        `${err.fileSize} bytes`,
        `at least ${err.end} bytes`,
      );
    } else {
      const why = err instanceof ElfMalformed ? err.message : `the reader failed: ${(err as Error)?.message ?? err}`;
      this.refuse(
        'structure',
        'E_BAD_ELF',
        `${this.name} is a corrupt ELF file (${why}); the loader could crash on it: rebuild the plugin`,
        why,
        'consistent ELF structures',
      );
    }
  }

  report(): CheckReport {
    const first = this.rows.find((r) => r.status === 'refused');
    const report: CheckReport = {
      file: this.file,
      flavour: this.flavour,
      loadable: first === undefined,
      rows: this.rows,
    };
    if (this.manifest) report.manifest = this.manifest;
    if (this.napiVersion !== undefined) report.napiVersion = this.napiVersion;
    if (this.nodeModuleVersion !== undefined) report.nodeModuleVersion = this.nodeModuleVersion;
    if (first) {
      report.error = new StreamplugError(first.code as ErrorCode, first.message, {
        file: this.file,
        check: first.check,
        ...this.details.get(first),
      });
    }
    return report;
  }

  run(): void {
    const buf = this.readFile();
    const elf = this.header(buf);
    const foreign = this.machine(elf);
    if (elf.type !== ET_DYN) {
      this.stop('elf-type', 'E_NOT_SHARED', `${this.name} is ${elfTypeName(elf.type)}, not a shared object: link the plugin with \`gcc -shared -fPIC\``, elfTypeName(elf.type), 'a shared object (ET_DYN)');
    }
    this.structure(elf, buf.length);
    this.pie(elf);
    const exports = elf.exports;
    if (this.flavour !== 'node') {
      const nodeish = exports.some((s) => s.name === NAPI_ENTRY || LEGACY_ENTRY.test(s.name));
      this.flavour = nodeish ? 'node' : 'so';
    }
    const otherLibc = this.libc(elf);
    if (foreign || otherLibc) {
      const why = foreign ? 'the file is for another machine' : 'the file is for another C library';
      for (const c of ['glibc', 'glibcxx', 'needed-libraries']) this.skip(c, `not checked: ${why}`);
    } else {
      this.glibc(elf);
      this.glibcxx(elf);
      this.neededLibraries(elf);
    }
    if (this.flavour === 'node') {
      this.addon(elf, exports);
      this.manifestRows(elf, true);
    } else {
      this.manifestRows(elf, false);
      this.entry(elf, exports);
    }
    this.gnuUnique(exports);
    this.nodelete(elf);
  }

  private readFile(): Buffer {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        this.stop('file', 'E_NOT_FOUND_FILE', `no such file: ${this.file}; check the path`, 'nothing', 'a plugin file');
      }
      this.stop('file', 'E_NOT_FILE', `cannot stat ${this.file} (${code}); check its permissions`, code, 'a readable file');
    }
    if (!st.isFile()) {
      const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a pipe' : st.isSocket() ? 'a socket' : 'a device';
      this.stop('file', 'E_NOT_FILE', `${this.file} is ${kind}, not a regular file: give the path of the plugin's .so or .node file`, kind, 'a regular file');
    }
    if (st.size === 0) {
      this.stop('file', 'E_EMPTY', `${this.name} is empty (0 bytes), expected an ELF shared object: copy or build it again`, '0 bytes', 'an ELF shared object');
    }
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.stop('file', 'E_NOT_FILE', `cannot read ${this.file} (${code}); check its permissions`, code, 'a readable file');
    }
    this.ok('file', `regular file, ${buf.length} bytes`);
    return buf;
  }

  private header(buf: Buffer): ElfFile {
    const ident = readIdent(buf);
    if (!ident) {
      const what = sniff(buf.subarray(0, 512));
      const fix = what.startsWith('a zip')
        ? 'if it is a plugin package, install it with `streamplug plugin install`'
        : what.startsWith('a Mach-O') || what.startsWith('a Windows')
          ? `build the plugin on Linux for ${process.arch}`
          : 'build the plugin with `gcc -shared -fPIC`';
      this.stop('elf-header', 'E_NOT_ELF', `${this.name} is ${what}, not an ELF shared object: ${fix}`, what, 'an ELF shared object');
    }
    if (ident.elfClass !== 1 && ident.elfClass !== 2) {
      this.stop('elf-header', 'E_ELF_CLASS', `${this.name} has an invalid ELF class ${ident.elfClass} (EI_CLASS must be 1 or 2): the file is corrupt; rebuild it`, ident.elfClass, '1 or 2');
    }
    if (ident.data !== 1 && ident.data !== 2) {
      this.stop('elf-header', 'E_ELF_ENDIAN', `${this.name} has an invalid byte order ${ident.data} (EI_DATA must be 1 or 2): the file is corrupt; rebuild it`, ident.data, '1 or 2');
    }
    if (this.flavour === 'unknown') this.flavour = 'so';
    const elf = new ElfFile(buf, ident);
    this.ok(
      'elf-header',
      `ELF ${ident.is64 ? 64 : 32}-bit ${ident.littleEndian ? 'LSB' : 'MSB'}, ${machineName(elf.machine)}, ${elfTypeName(elf.type)}`,
    );
    return elf;
  }

  /** Class, byte order, machine, OS ABI. Returns true when the file is for another machine. */
  private machine(elf: ElfFile): boolean {
    const host = hostMachine(this.env.arch);
    const { ident } = elf;
    let foreign = false;
    const bits = ident.is64 ? 64 : 32;
    if (host && host.is64 !== ident.is64) {
      foreign = true;
      const hostBits = host.is64 ? 64 : 32;
      this.refuse('elf-class', 'E_ELF_CLASS', `${this.name} is a ${bits}-bit ELF (ELFCLASS${bits}); this process is ${hostBits}-bit (${this.env.arch}): rebuild it as a ${hostBits}-bit library${bits === 32 ? ' (no -m32)' : ''}`, `ELFCLASS${bits}`, `ELFCLASS${hostBits}`);
    } else {
      this.ok('elf-class', `${bits}-bit, as this process`);
    }
    const hostLittle = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    if (ident.littleEndian !== hostLittle) {
      foreign = true;
      const e = (le: boolean) => (le ? 'little-endian (ELFDATA2LSB)' : 'big-endian (ELFDATA2MSB)');
      this.refuse('byte-order', 'E_ELF_ENDIAN', `${this.name} is ${e(ident.littleEndian)}; this process is ${e(hostLittle)}: rebuild it for ${this.env.arch}`, e(ident.littleEndian), e(hostLittle));
    } else {
      this.ok('byte-order', `${ident.littleEndian ? 'little' : 'big'}-endian, as this process`);
    }
    if (host && host.machine !== elf.machine) {
      foreign = true;
      this.refuse('machine', 'E_ARCH', `${this.name} is built for ${machineName(elf.machine)}; this process runs on ${machineName(host.machine)}: rebuild the plugin for ${machineName(host.machine).split(' ')[0]} (or cross-compile with that toolchain)`, machineName(elf.machine), machineName(host.machine));
    } else {
      this.ok('machine', `${machineName(elf.machine)}, as this process`);
    }
    if (ident.osabi !== 0 && ident.osabi !== 3) {
      this.refuse('os-abi', 'E_OSABI', `${this.name} is marked for ${osabiName(ident.osabi)}; Linux loads System V (0) or GNU/Linux (3) objects only: build it on/for Linux`, osabiName(ident.osabi), 'System V (0) or GNU/Linux (3)');
    } else {
      this.ok('os-abi', osabiName(ident.osabi));
    }
    return foreign;
  }

  /** Every structure the loader or this check reads must lie inside the file. */
  private structure(elf: ElfFile, size: number): void {
    const phdrs = elf.programHeaders;
    for (const p of phdrs) {
      if (p.type === PT_LOAD || p.filesz > 0) {
        const kind = p.type === PT_LOAD ? 'LOAD segment' : `segment of type 0x${p.type.toString(16)}`;
        elf.r.need(p.offset, p.filesz, `its ${kind} (program header ${p.index})`);
      }
    }
    if (!phdrs.some((p) => p.type === PT_LOAD)) throw new ElfMalformed('no loadable (PT_LOAD) segment');
    const shdrs = elf.sectionHeaders;
    for (const s of shdrs) {
      if (s.type !== SHT_NOBITS && s.index !== 0) elf.r.need(s.offset, s.size, `its section ${s.name || s.index}`);
    }
    // Read everything later checks use, so a bad offset is reported here, once.
    void elf.needed;
    void elf.dynamicSymbols;
    void elf.versionNeeds;
    void elf.notes;
    void elf.interpreter;
    this.ok('structure', `${phdrs.length} segments and ${shdrs.length} sections lie inside the file's ${size} bytes`);
  }

  private pie(elf: ElfFile): void {
    const interp = elf.interpreter;
    if (interp !== undefined || elf.isPie) {
      const marks = [interp !== undefined ? `PT_INTERP ${interp}` : '', elf.isPie ? 'DF_1_PIE' : ''].filter(Boolean).join(', ');
      this.stop('elf-type', 'E_NOT_SHARED', `${this.name} is a position-independent executable (${marks}), not a library: link the plugin with \`-shared\`, not -pie`, `a PIE executable (${marks})`, 'a shared object (ET_DYN without PT_INTERP)');
    }
    this.ok('elf-type', 'shared object (ET_DYN)');
  }

  /** Returns true when the file is for the other C library (then the version checks are moot). */
  private libc(elf: ElfFile): boolean {
    const interp = elf.interpreter ?? '';
    const needed = elf.needed;
    const muslMark = interp.includes('ld-musl')
      ? `PT_INTERP ${interp}`
      : needed.find((n) => n === 'libc.so' || n.startsWith('libc.musl-') || n.startsWith('ld-musl'));
    const glibcMark =
      needed.find((n) => n === 'libc.so.6' || n.startsWith('ld-linux')) ??
      (elf.versionNeeds.some((v) => v.versions.some((x) => x.startsWith('GLIBC_'))) ? 'GLIBC_* symbol versions' : undefined);
    const hostLibc = this.env.libc === 'glibc' ? `glibc ${this.env.glibcVersion ?? ''}`.trim() : 'musl';
    if (muslMark && this.env.libc !== 'musl') {
      const found = muslMark.startsWith('PT_INTERP') ? muslMark : `DT_NEEDED ${muslMark}`;
      this.refuse('libc', 'E_LIBC', `${this.name} is built against musl (${found}); this process runs on ${hostLibc}: rebuild it with gcc on a glibc system (not musl-gcc or Alpine)`, `musl (${found})`, hostLibc);
      return true;
    }
    if (glibcMark && this.env.libc !== 'glibc') {
      this.refuse('libc', 'E_LIBC', `${this.name} is built against glibc (${glibcMark}); this process runs on musl: rebuild it on a musl system (Alpine, musl-gcc)`, `glibc (${glibcMark})`, 'musl');
      return true;
    }
    this.ok('libc', muslMark ? 'musl, as this process' : glibcMark ? 'glibc, as this process' : 'needs no C library');
    return false;
  }

  private glibc(elf: ElfFile): void {
    const needs = elf.versionNeeds
      .flatMap((v) => v.versions.map((version) => ({ file: v.file, version })))
      .filter((v) => /^GLIBC_\d/.test(v.version));
    if (needs.length === 0 || this.env.libc !== 'glibc' || !this.env.glibcVersion) {
      this.ok('glibc', needs.length === 0 ? 'no GLIBC_ symbol versions needed' : 'not applicable');
      return;
    }
    const highest = needs.reduce((a, b) => (compareVersions(numbers(b.version), numbers(a.version)) > 0 ? b : a));
    const system = numbers(this.env.glibcVersion);
    if (compareVersions(numbers(highest.version), system) > 0) {
      this.refuse('glibc', 'E_GLIBC_VERSION', `${this.name} needs symbol version ${highest.version} (from ${highest.file}); this system has glibc ${this.env.glibcVersion}: build the plugin on a system with glibc ${this.env.glibcVersion} or older`, highest.version, `GLIBC_${this.env.glibcVersion} or older`);
    } else {
      this.ok('glibc', `needs up to ${highest.version}; this system has glibc ${this.env.glibcVersion}`);
    }
  }

  private glibcxx(elf: ElfFile): void {
    const needs = elf.versionNeeds
      .flatMap((v) => v.versions.map((version) => ({ file: v.file, version })))
      .filter((v) => /^(GLIBCXX|CXXABI)_\d/.test(v.version));
    if (needs.length === 0) {
      this.ok('glibcxx', 'no GLIBCXX_/CXXABI_ symbol versions needed');
      return;
    }
    const lib = this.env.libstdcxx;
    if (!lib) {
      this.skip('glibcxx', 'not checked: libstdc++.so.6 not found on this system (see needed-libraries)');
      return;
    }
    const have = new Set(lib.versions);
    const missing = needs.filter((n) => !have.has(n.version));
    if (missing.length > 0) {
      const worst = missing.reduce((a, b) => (compareVersions(numbers(b.version), numbers(a.version)) > 0 ? b : a));
      const prefix = worst.version.split('_')[0];
      const best = lib.versions.filter((v) => v.startsWith(`${prefix}_`)).sort((a, b) => compareVersions(numbers(a), numbers(b))).pop();
      this.refuse('glibcxx', 'E_GLIBCXX_VERSION', `${this.name} needs ${worst.version} (from ${worst.file}); this system's libstdc++ (${lib.file}) provides up to ${best ?? 'none'}: build with an older g++ or link with -static-libstdc++`, worst.version, `${best ?? prefix} or older`);
    } else {
      this.ok('glibcxx', `every GLIBCXX_/CXXABI_ version it needs is in ${lib.file}`);
    }
  }

  /** The whole DT_NEEDED closure, each library searched with its own RPATH/RUNPATH and $ORIGIN. */
  private neededLibraries(elf: ElfFile): void {
    if (elf.needed.length === 0) {
      this.ok('needed-libraries', 'needs no libraries');
      return;
    }
    const closure = resolveClosure(this.file, elf);
    const missing = closure.missing;
    if (missing.length > 0) {
      const first = missing[0];
      const chain = [this.name, ...first.chain.slice(1)].join(' -> ');
      const names = [...new Set(missing.map((m) => m.name))].join(', ');
      const direct = first.chain.length === 1;
      this.refuse(
        'needed-libraries',
        'E_MISSING_LIBRARY',
        `${this.name} needs ${first.name}${direct ? '' : ` through ${chain}`}, which the loader cannot find (searched ${first.via})` +
          `${missing.length > 1 ? `; also missing: ${names}` : ''}: install it, or ship it in the plugin zip under lib/ and link the ` +
          `plugin with -Wl,-rpath,'$ORIGIN/lib' (the CMake helper does)`,
        names,
        'every library of the DT_NEEDED closure resolvable',
      );
    } else {
      this.ok('needed-libraries', `all ${closure.found.length} found: ${elf.needed.join(', ')}${closure.found.length > elf.needed.length ? ' and what they need' : ''}`);
    }
  }

  private readManifest(elf: ElfFile): Manifest | string | undefined {
    const notes = elf.notes.filter((n) => n.owner === NOTE_OWNER);
    if (notes.length === 0) return undefined;
    const note = notes.find((n) => n.type === NOTE_TYPE_MANIFEST);
    if (!note) return `its streamplug notes have types ${notes.map((n) => n.type).join(', ')}, none of type ${NOTE_TYPE_MANIFEST} (manifest)`;
    return parseManifest(note.desc);
  }

  private manifestRows(elf: ElfFile, optional: boolean): void {
    const m = this.readManifest(elf);
    if (m === undefined) {
      if (optional) {
        this.ok('manifest', 'no .note.streamplug (optional for .node plugins)');
      } else {
        this.refuse('manifest', 'E_NO_MANIFEST', `${this.name} has no streamplug manifest note (.note.streamplug, owner "streamplug", type 1): build it with STREAMPLUG_PLUGIN() from streamplug/plugin.h`, 'no manifest note', 'a .note.streamplug manifest');
        this.skip('contract', 'not checked: no manifest');
      }
      return;
    }
    if (typeof m === 'string') {
      this.refuse('manifest', 'E_BAD_MANIFEST', `${this.name}'s manifest note is unreadable: ${m}; rebuild it with STREAMPLUG_PLUGIN() from streamplug/plugin.h`, m, 'key=value lines with contract=MAJOR.MINOR and name=');
      this.skip('contract', 'not checked: manifest unreadable');
      return;
    }
    this.manifest = m;
    const built = m.header !== undefined ? `built with header ${m.header}` : 'built with header 1.0 or 1.1 (not recorded before 1.2)';
    this.ok('manifest', `${m.name} ${m.version}, needs host contract ${m.contract} or newer, ${built}; provides ${m.extensions.join(', ') || 'nothing'}`);
    this.limits(m);
    const host = `${this.env.contract.major}.${this.env.contract.minor}`;
    if (m.contractMajor !== this.env.contract.major) {
      this.refuse('contract', 'E_CONTRACT_MAJOR', `${this.name} is built for streamplug contract ${m.contract}; this host implements contract ${host}: use a build of the plugin for contract ${this.env.contract.major}.x, or a host for contract ${m.contractMajor}`, m.contract, `${this.env.contract.major}.x`);
    } else if (m.contractMinor > this.env.contract.minor) {
      this.refuse('contract', 'E_CONTRACT_MINOR', `${this.name} is built for streamplug contract ${m.contract}, newer than this host's ${host}: upgrade streamplug, or rebuild the plugin against the ${host} header`, m.contract, `${this.env.contract.major}.${this.env.contract.minor} or older`);
    } else {
      this.ok('contract', `needs contract ${m.contract}; this host implements ${host}`);
    }
    const needing = m.extensions.filter((e) => MINOR_FOR_KIND[e.split(':')[0] as keyof typeof MINOR_FOR_KIND] > m.contractMinor);
    if (!optional && m.contractMajor === this.env.contract.major && needing.length > 0) {
      this.refuse('contract', 'E_BAD_DESCRIPTOR', `${this.name} provides ${needing.join(', ')} but declares contract ${m.contract}; sources and sinks need 1.1: #define STREAMPLUG_PLUGIN_MINOR 1 before including plugin.h`, m.contract, '1.1 or newer for sources and sinks');
    }
    const shadowing = m.extensions.filter((e) => e.startsWith('function:') && builtinNamed(e.slice(9)));
    if (shadowing.length > 0) {
      const fn = shadowing[0].slice(9);
      this.refuse('functions', 'E_BUILTIN_SHADOW', `${this.name} provides function ${fn}, which has the name of the built-in SQL function ${builtinNamed(fn)}; SQL would call the built-in: rename the plugin function`, fn, 'function names that are not built-ins');
    }
  }

  /** plugin.h LIMITS that the manifest shows: name lengths and counts. */
  private limits(m: Manifest): void {
    const long = [m.name, ...m.extensions.map((e) => e.slice(e.indexOf(':') + 1))].find((n) => Buffer.byteLength(n) > LIMITS.nameLength);
    const count = (kind: string) => m.extensions.filter((e) => e.startsWith(`${kind}:`)).length;
    const over = (['function', 'source', 'sink'] as const).find((k) => count(k) > LIMITS[`${k}s`]);
    if (long !== undefined) {
      this.refuse('limits', 'E_LIMIT', `${this.name} names ${long === m.name ? 'the plugin' : 'an extension'} "${long.slice(0, LIMITS.nameLength)}…", ${Buffer.byteLength(long)} bytes; names are at most ${LIMITS.nameLength} bytes (SP_MAX_NAME_LENGTH in plugin.h): shorten it`, Buffer.byteLength(long), `at most ${LIMITS.nameLength} bytes`);
    } else if (over !== undefined) {
      this.refuse('limits', 'E_LIMIT', `${this.name} declares ${count(over)} ${over}s; at most ${LIMITS[`${over}s`]} are allowed (plugin.h LIMITS): split the plugin`, count(over), `at most ${LIMITS[`${over}s`]}`);
    } else {
      this.ok('limits', `names and counts within plugin.h LIMITS`);
    }
  }

  private entry(elf: ElfFile, exports: DynamicSymbol[]): void {
    const want = entryName(this.env.contract.major);
    const sym = exports.find((s) => s.name === want);
    if (sym) {
      if (sym.type !== STT_FUNC && sym.type !== STT_GNU_IFUNC) {
        const kind = sym.type === STT_OBJECT ? 'a data object (STT_OBJECT)' : `not a function (symbol type ${sym.type})`;
        this.refuse('entry', 'E_NO_ENTRY', `${this.name} exports ${want} as ${kind}; the host calls it: define it with STREAMPLUG_PLUGIN() from streamplug/plugin.h`, kind, 'a function (STT_FUNC)');
        return;
      }
      const seg = elf.loadSegmentAt(sym.value);
      if (!seg || (seg.flags & PF_X) === 0) {
        const where = seg ? `in segment ${seg.index}, which is not executable` : 'outside every loadable segment';
        this.refuse('entry', 'E_NO_ENTRY', `${this.name} exports ${want} ${where}; the host calls it: define it with STREAMPLUG_PLUGIN() from streamplug/plugin.h`, where, 'a function in an executable segment');
        return;
      }
      this.ok('entry', `exports ${want}, a function in executable segment ${seg.index}`);
      return;
    }
    const other = exports.map((s) => /^streamplug_plugin_v(\d+)$/.exec(s.name)).find((m) => m !== null);
    if (other) {
      this.refuse('entry', 'E_NO_ENTRY', `${this.name} exports ${other[0]}, built for contract ${other[1]}; this host (contract ${this.env.contract.major}) calls ${want}: use a build of the plugin for contract ${this.env.contract.major}`, other[0], want);
    } else {
      this.refuse('entry', 'E_NO_ENTRY', `${this.name} does not export ${want}: define it with STREAMPLUG_PLUGIN() from streamplug/plugin.h (default visibility, extern "C" in C++)`, 'no entry point', want);
    }
  }

  private addon(elf: ElfFile, exports: DynamicSymbol[]): void {
    const byName = new Map(exports.map((s) => [s.name, s]));
    const node = `Node ${this.env.nodeVersion}`;
    if (byName.has(NAPI_ENTRY)) {
      const fn = byName.get(NAPI_VERSION_FN);
      if (!fn) {
        this.napiVersion = 8;
        this.ok('addon', `Node-API module (${NAPI_ENTRY}) without ${NAPI_VERSION_FN}: Node-API 8 or older; ${node} offers ${this.env.napiVersion}`);
        return;
      }
      const code = elf.bytesAt(fn.value, 32, NAPI_VERSION_FN);
      const version = elf.machine === 62 ? decodeX86_64(code) : elf.machine === 183 ? decodeAarch64(code) : undefined;
      if (version === undefined) {
        // Node crashes on a version above its own, so an unreadable one is refused, not guessed.
        this.refuse('addon', 'E_NAPI_UNKNOWN', `${this.name} is a Node-API module but the version its ${NAPI_VERSION_FN} returns cannot be read from its code (instrumented builds, e.g. --coverage, -pg or -finstrument-functions, add calls there); ${node} would crash on a version above ${this.env.napiVersion}: build it without instrumentation, or declare the version with -DNAPI_VERSION=${this.env.napiVersion} (or lower)`, 'an unreadable Node-API version', `a plain \`return NAPI_VERSION;\` of ${this.env.napiVersion} or lower`);
        return;
      }
      this.napiVersion = version;
      if (version > this.env.napiVersion || version < 1) {
        const label = version === NAPI_VERSION_EXPERIMENTAL ? `${version} = NAPI_VERSION_EXPERIMENTAL` : `${version}`;
        this.refuse('addon', 'E_NAPI_VERSION', `${this.name} asks for Node-API ${label} (read from its ${NAPI_VERSION_FN}); ${node} offers Node-API ${this.env.napiVersion}: rebuild it with -DNAPI_VERSION=${this.env.napiVersion} or lower, or run a newer Node`, version, `${this.env.napiVersion} or lower`);
      } else {
        this.ok('addon', `Node-API module asking for Node-API ${version}; ${node} offers ${this.env.napiVersion}`);
      }
      return;
    }
    const legacy = exports.map((s) => LEGACY_ENTRY.exec(s.name)).find((m) => m !== null);
    if (legacy) {
      const abi = Number(legacy[1]);
      this.nodeModuleVersion = abi;
      if (abi !== this.env.nodeModuleVersion) {
        this.refuse('addon', 'E_NODE_ABI', `${this.name} is a Node module built for NODE_MODULE_VERSION ${abi} (${legacy[0]}); ${node} has NODE_MODULE_VERSION ${this.env.nodeModuleVersion}: rebuild it against this Node (node-gyp rebuild), or port it to Node-API, whose ABI is stable`, abi, this.env.nodeModuleVersion);
      } else {
        this.ok('addon', `Node module for NODE_MODULE_VERSION ${abi}, as ${node}`);
      }
      return;
    }
    const imports = new Set(elf.dynamicSymbols.filter((s) => !s.defined).map((s) => s.name));
    if (imports.has('napi_module_register')) {
      this.ok('addon', 'Node-API module registering itself from a constructor (napi_module_register)');
    } else if (imports.has('node_module_register')) {
      this.ok('addon', 'Node module registering itself from a constructor (node_module_register); Node checks its ABI at load');
    } else {
      this.refuse('addon', 'E_NOT_ADDON', `${this.name} exports neither ${NAPI_ENTRY} (Node-API) nor node_register_module_vNNN (a Node module): build it with node-gyp/node-addon-api, or name it .so if it is a streamplug C plugin`, 'no addon entry', `${NAPI_ENTRY} or node_register_module_v${this.env.nodeModuleVersion}`);
    }
  }

  private nodelete(elf: ElfFile): void {
    if (!elf.isNodelete) return;
    this.warn('nodelete', 'W_NODELETE', `${this.name} was linked with -z nodelete (DF_1_NODELETE): it loads, but the loader never unloads it, so unload/reload keeps the old code; link without -z nodelete`);
  }

  private gnuUnique(exports: DynamicSymbol[]): void {
    const unique = exports.filter((s) => s.bind === STB_GNU_UNIQUE);
    if (unique.length === 0) {
      this.ok('gnu-unique', 'no STB_GNU_UNIQUE symbols: can be unloaded');
      return;
    }
    const names = unique.map((s) => s.name);
    const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? `, … (${names.length})` : '');
    this.warn('gnu-unique', 'W_GNU_UNIQUE', `${this.name} exports STB_GNU_UNIQUE symbols (${shown}): it loads, but the loader never unloads it, so unload/reload keeps the old code; build with ${HIDDEN_FLAGS} (or -fno-gnu-unique)`);
  }
}

function numbers(version: string): number[] {
  return (version.match(/\d+/g) ?? []).map(Number);
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
