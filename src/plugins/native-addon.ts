/**
 * The host addon (native/host), loaded once. Its errors are StreamplugErrors: the addon builds
 * them through the factory installed here, so codes and messages cross unchanged.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StreamplugError, type ErrorCode } from '../errors.js';

/** [sp_type, values, offsets, data, nulls, isConstant]: one column as the addon reads it. */
export type NativeColumn = [
  type: number,
  values: Float64Array | BigInt64Array | Uint8Array | undefined,
  offsets: Uint32Array | undefined,
  data: Uint8Array | undefined,
  nulls: Uint8Array | undefined,
  constant: boolean,
];

export interface NativeFunctionDef {
  name: string;
  kind: number;
  flags: number;
  minArgs: number;
  maxArgs: number;
  argTypes: number[];
  argFlags: number[];
  resultType: number;
  hasValidate: boolean;
  hasClose: boolean;
}

export interface NativeDescription {
  name: string;
  version: string;
  contractMajor: number;
  contractMinor: number;
  /** The header minor the plugin was built with (native/host/tables.h HeaderMinor). */
  headerMinor: number;
  compiler: string;
  arch: string;
  libc: string;
  manifest: string;
  functions: NativeFunctionDef[];
}

export interface NativeResult {
  values: Float64Array | BigInt64Array | Uint8Array | string[] | Uint8Array[];
  nulls?: Uint8Array;
}

export interface NativeFrame {
  readonly capacity: number;
  readonly args: (Float64Array | BigInt64Array | Uint8Array)[];
  readonly argNulls: Uint8Array[];
  readonly result: Float64Array | BigInt64Array | Uint8Array;
  readonly resultNulls: Uint8Array;
  run(nrows: number): void;
  timeNative(nrows: number, iterations: number): number;
  close(): void;
}

export interface NativeInstance {
  call(args: NativeColumn[], nrows: number, groupOffsets: Uint32Array | null, resultType: number): NativeResult;
  frame(capacity: number, argTypes: number[], resultType: number): NativeFrame;
  /** The ctx's state (state_put keys -> bytes), copied out; importState replaces it as a whole. */
  exportState(): Record<string, Uint8Array>;
  /** Contract 1.3: the state's version stamp against the plugin's state_version (see StateImport). */
  importState(state: Record<string, Uint8Array>): import('./types.js').StateImport;
  close(): void;
}

export interface MemoryUse {
  bytes: number;
  blocks: number;
}

export interface NativeLibrary {
  readonly isOpen: boolean;
  describe(): NativeDescription;
  init(): void;
  /** init on a thread of its own (native/host/async_load.cc). */
  initAsync(): Promise<void>;
  instance(functionIndex: number, ruleId: string): NativeInstance;
  /** The function's validate hook (E_VALIDATE_REFUSED with the plugin's reason). */
  validate(functionIndex: number, types: number[], literals: (string | null)[]): void;
  close(): { closedInstances: number; stillMapped: boolean };
  memory(): MemoryUse;
}

export interface PluginLogLine {
  plugin: string;
  rule: string;
  level: number; // sp_log_level: 20 debug, 30 info, 40 warn, 50 error
  message: string;
}

/** One thread found inside plugin code, or the crash, as the previous run's journal recorded it. */
export interface JournalEntry {
  /** signal: a fatal signal; exit: exit() called inside plugin code; inside: a thread was still in plugin code. */
  kind: 'signal' | 'exit' | 'inside';
  /** The descriptor name, or the install name / file name when the crash came before the descriptor. */
  plugin: string;
  path: string;
  hook: string;
  rule?: string;
  signal?: string;
  address?: string;
  time?: string;
  line?: string;
  backtrace: string[];
}

export interface JournalReport {
  existed: boolean;
  /** The previous process ended through exit() outside plugin code. */
  clean: boolean;
  previousPid: number;
  startedAt: string;
  entries: JournalEntry[];
}

export interface HostAddon {
  open(file: string): NativeLibrary;
  /** dlopen, constructors and descriptor checks on a thread of their own; `label` names the file in the crash journal. */
  openAsync(file: string, label?: string): Promise<NativeLibrary>;
  /** Starts this process's crash journal at `file` (and the fatal-signal handler); returns what the previous run left. */
  journalOpen(file: string): JournalReport;
  setErrorFactory(make: (code: string, message: string) => Error): void;
  setLogSink(sink: ((line: PluginLogLine) => void) | null): void;
  hostInfo(): { contractMajor: number; contractMinor: number; entryName: string };
  unattributedMemory(): MemoryUse;
  isMapped(file: string): boolean;
  /** The loader's manifest parser (native/host/manifest.cc), for the shared test vectors. */
  parseManifest(bytes: Buffer): { fields: Record<string, string> } | { error: string };
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/plugins → repository root; STREAMPLUG_ADDON overrides (packaged installs). */
export const addonPath =
  process.env.STREAMPLUG_ADDON ?? path.resolve(here, '../../..', 'build/Release/streamplug_host.node');

let addon: HostAddon | undefined;

export function hostAddon(): HostAddon {
  if (addon) return addon;
  let loaded: HostAddon;
  try {
    loaded = createRequire(import.meta.url)(addonPath) as HostAddon;
  } catch (err) {
    throw new StreamplugError(
      'E_ADDON_MISSING',
      `the host addon ${addonPath} cannot be loaded (${(err as Error).message}); build it with \`npm ci\` (its install step runs node-gyp) or \`npm run build:addon\``,
      { file: addonPath },
    );
  }
  loaded.setErrorFactory((code, message) => new StreamplugError(code as ErrorCode, message));
  addon = loaded;
  return loaded;
}
