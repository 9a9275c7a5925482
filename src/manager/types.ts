import type { Isolation, LoadedPluginInfo, PluginFunction } from '../plugins/types.js';
import type { CheckRow } from '../check/types.js';
import type { PluginType } from './layout.js';
import type { SignatureFile } from './signature.js';

/** What the manager needs of engineer A's PluginRegistry (src/plugins/registry.ts satisfies it). */
export interface RegistryLike {
  load(file: string, opts?: { isolation?: Isolation; label?: string; loadTimeoutMs?: number }): Promise<LoadedPluginInfo>;
  unload(name: string, opts?: { force?: boolean }): unknown;
  list(): LoadedPluginInfo[];
  get(name: string): LoadedPluginInfo | undefined;
  getFunction(name: string): PluginFunction | undefined;
  listFunctions(): PluginFunction[];
}

/** The rules engine implements this; until then no rule uses any plugin. */
export interface PluginUsage {
  /** Ids of the rules that use the plugin named `plugin` (its install name). */
  rulesUsing(plugin: string): string[];
}

export const NO_USAGE: PluginUsage = { rulesUsing: () => [] };

/** NAME.json at the zip root (eKuiper's metadata file); every field optional. */
export interface PluginMetadata {
  author?: { name?: string; email?: string; company?: string; website?: string } | string;
  version?: string;
  description?: string;
  about?: unknown;
  helpUrl?: unknown;
  functions?: unknown;
  [k: string]: unknown;
}

/** One JSON file per installed plugin (`<data>/plugins/records/<type>.<name>.json`): the install's commit point. */
export interface PluginRecord {
  type: PluginType;
  name: string;
  /** Library file name inside plugins/<type>/. */
  file: string;
  flavour: 'so' | 'node';
  sha256: string;
  version?: string;
  installedAt: string;
  updatedAt: string;
  /** Where the zip came from (path or URL), for operators; absent for dropped-in libraries. */
  origin?: string;
  metadata?: PluginMetadata;
  /** Function names registered for this plugin (POST …/register or "functions" at install). */
  functions?: string[];
  signature?: SignatureFile;
  /** Files this plugin brought under etc/, relative to the data directory. */
  etcFiles: string[];
  /** Set when an update could not replace the running library: the new file loads at the next start. */
  pendingRestart?: { reason: string };
  /** Where the plugin runs; absent means "in-process". */
  isolation?: Isolation;
  /** Set when the plugin crashed the host (or its worker too often): it is not loaded until enabled. */
  quarantine?: CrashInfo;
}

/** What is known of the crash that quarantined a plugin. */
export interface CrashInfo {
  code: 'E_PLUGIN_CRASHED';
  /** The plugin as the crash report named it (descriptor name, or the file before it was read). */
  plugin: string;
  /** When it crashed (ISO 8601); the time it was found when the crash time is unknown. */
  at: string;
  hook?: string;
  rule?: string;
  signal?: string;
  /** signal, exit (exit() inside plugin code), inside (the host ended while in a load), worker. */
  kind: string;
  address?: string;
  backtrace?: string[];
  /** One line: who, where, how. */
  message: string;
}

export type LoadState = 'loaded' | 'failed' | 'pending-restart' | 'not-loaded' | 'quarantined';

export interface PluginStatus {
  state: LoadState;
  info?: LoadedPluginInfo;
  lastError?: { code: string; message: string; at: string };
}

export interface PluginDescription {
  name: string;
  type: PluginType;
  version: string | null;
  file: string;
  flavour: 'so' | 'node';
  sha256: string;
  installedAt: string;
  updatedAt: string;
  origin?: string;
  metadata?: PluginMetadata;
  functions: string[];
  build: LoadedPluginInfo['build'] | null;
  contract: string | null;
  state: LoadState;
  isolation: Isolation;
  /** Present while quarantined: the crash that caused it. */
  crash?: CrashInfo;
  lastError: PluginStatus['lastError'] | null;
  pendingRestart: string | null;
  signedBy: string | null;
  /** Zip paths the verified signature covers (empty when not verified). */
  signedFiles: string[];
  check: { loadable: boolean; rows: CheckRow[] };
  rulesUsing: string[];
  /** What the record says is installed (the file the next start loads). */
  installed: { version: string | null; file: string; sha256: string };
  /** What this process has mapped now, or null: differs from `installed` while an update is pending. */
  running: { version: string; file: string } | null;
}

export type ProgressEvent =
  | { phase: 'download'; bytes: number; total?: number }
  | { phase: 'unpack'; entries: number; totalEntries: number; bytes: number };
