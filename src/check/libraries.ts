/**
 * Where would the dynamic loader find a DT_NEEDED library? Mirrors glibc's order: libraries already
 * in the process (matched by file name), DT_RPATH (only without DT_RUNPATH), LD_LIBRARY_PATH,
 * DT_RUNPATH, /etc/ld.so.cache, then the default directories. A candidate counts only when it is
 * an ELF file of the plugin's class and machine, as the loader skips others.
 */
import fs from 'node:fs';
import path from 'node:path';
import { elfClassAndMachine } from './elf.js';

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
  const origin = path.dirname(path.resolve(ctx.file));
  return dir.replace(/\$\{ORIGIN\}|\$ORIGIN/g, origin);
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
