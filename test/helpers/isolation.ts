/**
 * The two ways a `.so` plugin runs (src/plugins/isolated): tests that hold for both loop over
 * ISOLATION_MODES and load through loadIn, so one test body covers both modes.
 */
import type { PluginRegistry } from '../../src/plugins/registry.js';
import type { Isolation, LoadedPluginInfo } from '../../src/plugins/types.js';

export type IsolationMode = Isolation;
export const ISOLATION_MODES: readonly IsolationMode[] = ['in-process', 'process'];

export function loadIn(registry: PluginRegistry, file: string, mode: IsolationMode): Promise<LoadedPluginInfo> {
  return registry.load(file, { isolation: mode });
}
