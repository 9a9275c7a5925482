/** Facts about this process that decide what it can load. Computed once. */
import fs from 'node:fs';
import { HOST_CONTRACT } from './contract.js';
import { ElfFile, readIdent } from './elf.js';
import { resolveLibrary } from './libraries.js';
import { hostMachine } from './names.js';
import type { HostEnv } from './types.js';

let cached: HostEnv | undefined;

export function hostEnv(): HostEnv {
  if (cached) return cached;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const glibcVersion = header?.glibcVersionRuntime;
  cached = {
    platform: process.platform,
    arch: process.arch,
    libc: glibcVersion ? 'glibc' : 'musl',
    glibcVersion,
    libstdcxx: findLibstdcxx(),
    napiVersion: Number(process.versions.napi ?? 0),
    nodeModuleVersion: Number(process.versions.modules),
    nodeVersion: process.version,
    contract: { ...HOST_CONTRACT },
  };
  return cached;
}

/** The GLIBCXX_/CXXABI_ versions of the libstdc++.so.6 this process would load. */
function findLibstdcxx(): HostEnv['libstdcxx'] {
  const host = hostMachine(process.arch);
  if (!host) return undefined;
  const { found } = resolveLibrary('libstdc++.so.6', { file: process.execPath, ...host });
  if (!found) return undefined;
  try {
    const buf = fs.readFileSync(found);
    const ident = readIdent(buf);
    if (!ident) return undefined;
    const versions = new ElfFile(buf, ident).versionDefinitions.filter((v) => /^(GLIBCXX|CXXABI)_/.test(v));
    return { file: found, versions };
  } catch {
    return undefined;
  }
}
