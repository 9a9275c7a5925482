/** Isolation "process": a plugin in a worker process of its own, over shared memory. */
import { StreamplugError } from '../../errors.js';
import type { PluginHandle } from '../handle.js';
import type { PluginLogLine } from '../native-addon.js';
import { loadIsolatedPlugin } from './plugin.js';
import type { PluginCrashEvent } from '../types.js';
import type { IsolationOptions } from './worker.js';

export { loadIsolatedPlugin } from './plugin.js';
export { IsolatedWorker, reapLeftoverWorkers, workerPath, type IsolationOptions, type WorkerDescription } from './worker.js';

/**
 * The registry's loader for isolation "process": `options` are the host's limits (config), the
 * registry supplies admit (name clashes), the load timeout and where crashes go.
 */
export function isolatedLoader(options: IsolationOptions, onLog: (line: PluginLogLine) => void) {
  return (
    file: string,
    opts: { admit: (name: string, functions: readonly string[]) => void; label?: string; loadTimeoutMs: number; onCrash: (e: PluginCrashEvent) => void },
  ): Promise<PluginHandle> => {
    if (file.endsWith('.node')) {
      return Promise.reject(new StreamplugError('E_ISOLATION', `${file}: .node plugins run inside Node only; install it with isolation "in-process"`, { file }));
    }
    return loadIsolatedPlugin(file, opts.admit, { loadTimeoutMs: opts.loadTimeoutMs, ...options }, { onLog, onCrash: opts.onCrash });
  };
}
