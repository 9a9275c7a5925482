export { PluginRegistry, type PreloadCheck, type RegistryOptions, type PluginStatus, type LoadOptions } from './registry.js';
export type { UnloadResult, PluginHandle, IsolatedLoader } from './handle.js';
export type { PluginLogLine, MemoryUse } from './native-addon.js';
export type { NodeFunctionDef, NodeCallContext } from './node-plugin.js';
export * from './types.js';
