import type { StreamplugError } from '../errors.js';

/** One verdict of the pre-load check: `refused` stops the load, `warn` does not. */
export interface CheckRow {
  check: string; // e.g. "elf-header", "arch", "glibc", "needed-libraries", "manifest", "contract", "napi"
  status: 'ok' | 'warn' | 'refused' | 'skipped';
  code?: string; // set when status is refused or warn (E_* / W_*)
  message: string; // what was found, what this host needs, how to fix
}

/** The manifest note (`.note.streamplug`), read without loading the file. */
export interface Manifest {
  /** The oldest host contract the plugin needs ("1.0"): `contract=`. */
  contract: string;
  contractMajor: number;
  contractMinor: number;
  /** The header it was built with (`header=`, from 1.2 on); absent: built with the 1.0 or 1.1 header. */
  header?: string;
  headerMinor?: number;
  name: string;
  version: string;
  extensions: string[]; // "function:echo", …
  arch?: string;
  libc?: string;
  raw: Record<string, string>;
}

export interface CheckReport {
  file: string;
  flavour: 'so' | 'node' | 'unknown';
  /** True when nothing was refused: the host may dlopen the file. */
  loadable: boolean;
  rows: CheckRow[];
  manifest?: Manifest;
  /** `.node`: the Node-API version it asks for, or the legacy NODE_MODULE_VERSION it was built for. */
  napiVersion?: number;
  nodeModuleVersion?: number;
  /** The first refusal as an error, ready to throw. */
  error?: StreamplugError;
}

/** What this process can load: compared with each file by the check. */
export interface HostEnv {
  platform: string; // process.platform
  arch: string; // process.arch
  libc: 'glibc' | 'musl';
  /** glibc version of this process ("2.36"); absent on musl. */
  glibcVersion?: string;
  /** The libstdc++.so.6 the loader would use and the GLIBCXX_/CXXABI_ versions it defines. */
  libstdcxx?: { file: string; versions: string[] };
  napiVersion: number; // process.versions.napi
  nodeModuleVersion: number; // process.versions.modules
  nodeVersion: string;
  contract: { major: number; minor: number };
}
