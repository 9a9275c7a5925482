/** Isolation "process": a plugin in a worker process of its own, over shared memory. */
export { loadIsolatedPlugin } from './plugin.js';
export { IsolatedWorker, reapLeftoverWorkers, workerPath, type IsolationOptions, type PluginCrashEvent, type WorkerDescription } from './worker.js';
