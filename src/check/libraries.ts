/**
 * Where would the dynamic loader find a DT_NEEDED library? Mirrors glibc's order: libraries already
 * in the process (matched by file name), DT_RPATH (only without DT_RUNPATH), LD_LIBRARY_PATH,
 * DT_RUNPATH, /etc/ld.so.cache, then the default directories. A candidate counts only when it is
 * an ELF file of the plugin's class and machine, as the loader skips others.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ElfFile, elfClassAndMachine, readIdent } from './elf.js';

export interface SearchContext {
  /** The plugin's own path (for $ORIGIN). */
  file: string;
  is64: boolean;
  machine: number;
  rpath?: string[];
  runpath?: string[];
  ldLibraryPath?: string;
}

export interface Resolution {
  found?: string;
  /** Where it was found, or the places searched when not. */
  via: string;
}

let cache: Map<string, string[]> | undefined;
let loaded: Map<string, string> | undefined;

/** Parses /etc/ld.so.cache (the "glibc-ld.so.cache1.1" format): soname -> paths. */
export function readLdSoCache(file = '/etc/ld.so.cache'): Map<string, string[]> | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  const base = buf.indexOf('glibc-ld.so.cache1.1', 0, 'latin1');
  if (base < 0 || base + 48 > buf.length) return undefined;
  const nlibs = buf.readUInt32LE(base + 20);
  const out = new Map<string, string[]>();
  const str = (off: number) => {
    const start = base + off;
    if (start >= buf.length) return undefined;
    const end = buf.indexOf(0, start);
    return end < 0 ? undefined : buf.toString('latin1', start, end);
  };
  for (let i = 0; i < nlibs; i++) {
    const e = base + 48 + i * 24;
    if (e + 24 > buf.length) break;
    const key = str(buf.readUInt32LE(e + 4));
    const value = str(buf.readUInt32LE(e + 8));
    if (!key || !value) continue;
    const list = out.get(key);
    if (list) list.push(value);
    else out.set(key, [value]);
  }
  return out;
}

/** Directories from /etc/ld.so.conf and its includes: used only when the cache is unreadable. */
export function readLdSoConf(file = '/etc/ld.so.conf', depth = 0): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const dirs: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const include = /^include\s+(.+)$/.exec(line);
    if (include && depth < 4) {
      for (const pattern of include[1].split(/\s+/)) {
        const abs = path.resolve(path.dirname(file), pattern);
        for (const f of globSimple(abs)) dirs.push(...readLdSoConf(f, depth + 1));
      }
    } else if (!include) {
      dirs.push(line);
    }
  }
  return dirs;
}

/** Enough of glob for ld.so.conf includes: a `*` in the last path component. */
function globSimple(pattern: string): string[] {
  const dir = path.dirname(pattern);
  const name = path.basename(pattern);
  if (!name.includes('*')) return [pattern];
  const re = new RegExp(`^${name.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  try {
    return fs.readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

function defaultDirs(is64: boolean): string[] {
  const triplets: Record<string, string> = {
    x64: 'x86_64-linux-gnu',
    arm64: 'aarch64-linux-gnu',
    ia32: 'i386-linux-gnu',
    arm: 'arm-linux-gnueabihf',
  };
  const multiarch = triplets[process.arch];
  const dirs = multiarch ? [`/lib/${multiarch}`, `/usr/lib/${multiarch}`] : [];
  if (is64) dirs.push('/lib64', '/usr/lib64');
  dirs.push('/lib', '/usr/lib');
  return dirs;
}

/** Libraries mapped into this process, by file name (the loader reuses them by soname). */
function loadedLibraries(): Map<string, string> {
  if (loaded) return loaded;
  loaded = new Map();
  try {
    for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const p = line.slice(line.indexOf('/'));
      if (line.includes('/') && p.includes('.so')) loaded.set(path.basename(p), p);
    }
  } catch {
    // no /proc: search the file system only
  }
  return loaded;
}

function matches(file: string, ctx: SearchContext): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(20);
      const n = fs.readSync(fd, head, 0, 20, 0);
      const id = elfClassAndMachine(head.subarray(0, n));
      return id !== undefined && id.is64 === ctx.is64 && id.machine === ctx.machine;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

function expand(dir: string, ctx: SearchContext): string {
  return expandDst(dir, ctx.file);
}

/** Finds `name` the way the loader would for the plugin described by `ctx`. */
export function resolveLibrary(name: string, ctx: SearchContext): Resolution {
  if (name.includes('/')) {
    const p = path.resolve(name);
    return matches(p, ctx) ? { found: p, via: 'path in DT_NEEDED' } : { via: `the path ${p}` };
  }
  const inProcess = loadedLibraries().get(name);
  if (inProcess && matches(inProcess, ctx)) return { found: inProcess, via: 'already loaded in this process' };

  const steps: [string, string[]][] = [];
  if (ctx.rpath && !ctx.runpath) steps.push(['DT_RPATH', ctx.rpath.map((d) => expand(d, ctx))]);
  const ldPath = ctx.ldLibraryPath ?? process.env.LD_LIBRARY_PATH;
  if (ldPath) steps.push(['LD_LIBRARY_PATH', ldPath.split(/[:;]/).filter(Boolean)]);
  if (ctx.runpath) steps.push(['DT_RUNPATH', ctx.runpath.map((d) => expand(d, ctx))]);
  for (const [via, dirs] of steps) {
    for (const d of dirs) {
      const p = path.join(d, name);
      if (matches(p, ctx)) return { found: p, via };
    }
  }
  cache ??= readLdSoCache() ?? new Map();
  for (const p of cache.get(name) ?? []) if (matches(p, ctx)) return { found: p, via: '/etc/ld.so.cache' };
  const fallback = cache.size === 0 ? readLdSoConf() : [];
  for (const d of [...fallback, ...defaultDirs(ctx.is64)]) {
    const p = path.join(d, name);
    if (matches(p, ctx)) return { found: p, via: 'default library directories' };
  }
  const searched = [...steps.map(([via]) => via), '/etc/ld.so.cache', 'the default library directories'];
  return { via: searched.join(', ') };
}

/** One library of a DT_NEEDED closure: found, or missing with the chain of files that needs it. */
export interface ClosureEntry {
  name: string;
  /** The plugin first, then each library down to the one that needs `name`. */
  chain: string[];
  found?: string;
  via: string;
}

/** Libraries read per check, at most: a closure is a handful; a cycle or a huge tree stops here. */
const MAX_CLOSURE = 256;

/** `$LIB` and `$PLATFORM` as glibc expands them on this machine. */
function dstValues(): { lib: string; platform: string } {
  const triplets: Record<string, string> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
  const platforms: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686', arm: 'v7l' };
  const multiarch = triplets[process.arch];
  const lib = multiarch && fs.existsSync(`/lib/${multiarch}`) ? `lib/${multiarch}` : process.arch === 'x64' || process.arch === 'arm64' ? 'lib64' : 'lib';
  return { lib, platform: platforms[process.arch] ?? process.arch };
}

/** Expands $ORIGIN (the directory of `owner`), $LIB and $PLATFORM, braced or not. */
export function expandDst(dir: string, owner: string): string {
  const { lib, platform } = dstValues();
  return dir
    .replace(/\$\{ORIGIN\}|\$ORIGIN\b/g, path.dirname(path.resolve(owner)))
    .replace(/\$\{LIB\}|\$LIB\b/g, lib)
    .replace(/\$\{PLATFORM\}|\$PLATFORM\b/g, platform);
}

interface ElfLike {
  ident: { is64: boolean };
  machine: number;
  needed: string[];
  searchPath(tag: 15 | 29): string[] | undefined;
}

/**
 * Resolves the whole DT_NEEDED closure of `file` the way glibc would: each library's needs are
 * searched with that library's DT_RUNPATH (or, without one, its DT_RPATH and those of the
 * libraries that loaded it), `$ORIGIN` being that library's folder. Libraries already mapped in
 * this process are not read again (their needs are met).
 */
export function resolveClosure(file: string, elf: ElfLike, open: (f: string) => ElfLike | undefined = openElf): { found: string[]; missing: ClosureEntry[] } {
  const found: string[] = [];
  const missing: ClosureEntry[] = [];
  const seen = new Set<string>();
  type Item = { owner: string; elf: ElfLike; chain: string[]; rpaths: string[] };
  const rp = (e: ElfLike, owner: string) => (e.searchPath(29) ? [] : (e.searchPath(15) ?? []).map((d) => expandDst(d, owner)));
  const queue: Item[] = [{ owner: file, elf, chain: [path.basename(file)], rpaths: rp(elf, file) }];
  while (queue.length > 0 && seen.size < MAX_CLOSURE) {
    const item = queue.shift()!;
    for (const name of item.elf.needed) {
      const ctx: SearchContext = {
        file: item.owner,
        is64: elf.ident.is64,
        machine: elf.machine,
        rpath: item.rpaths.length ? item.rpaths : undefined,
        runpath: item.elf.searchPath(29)?.map((d) => expandDst(d, item.owner)),
      };
      const r = resolveLibrary(name, ctx);
      if (!r.found) {
        if (!missing.some((m) => m.name === name)) missing.push({ name, chain: item.chain, via: r.via });
        continue;
      }
      if (seen.has(r.found)) continue;
      seen.add(r.found);
      found.push(r.found);
      if (r.via === 'already loaded in this process') continue;
      const dep = open(r.found);
      if (dep) queue.push({ owner: r.found, elf: dep, chain: [...item.chain, name], rpaths: [...rp(dep, r.found), ...item.rpaths] });
    }
  }
  return { found, missing };
}

/** A library of the closure, parsed; undefined when unreadable (the loader reports those itself). */
function openElf(file: string): ElfLike | undefined {
  try {
    const buf = fs.readFileSync(file);
    const id = readIdent(buf);
    if (!id) return undefined;
    const e = new ElfFile(buf, id);
    void e.needed;
    return e;
  } catch {
    return undefined;
  }
}
