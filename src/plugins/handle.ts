/** A loaded plugin as the registry holds it, whatever its flavour. */
import type { MemoryUse } from './native-addon.js';
import type { LoadedPluginInfo, PluginFunction } from './types.js';

export interface UnloadResult {
  name: string;
  /** Function instances closed by the unload (their close hooks ran). */
  closedInstances: number;
  /** True when the file stays mapped: `.node` files (Node never unloads) or STB_GNU_UNIQUE C++. */
  stillMapped: boolean;
}

export interface PluginHandle {
  readonly info: LoadedPluginInfo;
  readonly functions: readonly PluginFunction[];
  /** Bytes the plugin holds through host->alloc (`.so` only). */
  memory(): MemoryUse | undefined;
  /** Function instances created and not yet closed. */
  openInstances(): number;
  unload(): UnloadResult;
  /** Isolation "process" only: the worker's state, pid, restarts and recent crashes. */
  worker?(): IsolatedWorkerStatus;
}

export interface IsolatedWorkerStatus {
  state: 'ready' | 'restarting' | 'quarantined' | 'stopped';
  pid?: number;
  restarts: number;
  recentCrashes: number;
  arenaBytesInUse: number;
}

/**
 * Loads `file` with isolation "process" (src/plugins/isolated). `admit` must be called with the
 * plugin's name and functions before any plugin hook runs (it throws on a clash); `onCrash`
 * reports a worker's death to the registry's owner.
 */
export type IsolatedLoader = (
  file: string,
  opts: {
    admit: (name: string, functions: readonly string[]) => void;
    label?: string;
    loadTimeoutMs: number;
    onCrash: (e: import('./types.js').PluginCrashEvent) => void;
  },
) => Promise<PluginHandle>;
