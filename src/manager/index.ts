/**
 * The plugin manager: safe zip install, update, delete, startup loading, signatures.
 *
 *   const m = new PluginManager({ dataDir, registry, usage?, limits?, trustedKeyFiles?, allowPrivateUrls?, log? });
 *   await m.start();                                    // sweep leftovers, load plugins/{sources,sinks,functions}
 *   await m.install({ type, name, source: { file } | { stream }, functions?, sha256?, onProgress? });
 *   await m.update(sameShape); await m.remove(type, name, { force? });
 *   m.list(type); m.describe(type, name); m.listUdfs(); m.udf(fn); await m.registerFunctions(name, fns);
 *   await m.inspect(zip, { type, name? });              // check a zip as install would, install nothing
 */
export { PluginManager, type ManagerOptions, type InstallRequest, type InstallResult, type StartupReport, type ZipSource, type ManagerLogger } from './manager.js';
export { DEFAULT_LIMITS, resolveLimits, type ZipLimits } from './limits.js';
export { dataLayout, ensureLayout, isPluginType, singular, PLUGIN_TYPES, PLUGIN_NAME_RE, type DataLayout, type PluginType } from './layout.js';
export { NO_USAGE, type PluginUsage, type RegistryLike, type PluginDescription, type PluginRecord, type ProgressEvent } from './types.js';
export { generateKeyPair, signBytes, loadTrustedKeys, verifyManifest, verifyInstalled, signManifest, fingerprint, type SignatureFile } from './signature.js';
export { extractZip, safeEntryName } from './zip.js';
export { unpackPlugin, type UnpackedPlugin } from './unpack.js';
