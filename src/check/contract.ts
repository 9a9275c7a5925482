/**
 * The plugin contract this host implements: mirrors STREAMPLUG_CONTRACT_MAJOR / _MINOR and the
 * SP_MAX_* limits in native/include/streamplug/plugin.h (a test keeps them equal).
 */
export const HOST_CONTRACT = { major: 1, minor: 3 } as const;

/** The limits of plugin.h ("LIMITS"): enforced by the check, install, startup and the loader alike. */
export const LIMITS = {
  /** SP_MAX_NAME_LENGTH: plugin, function, source and sink names, in bytes. */
  nameLength: 64,
  /** SP_MAX_FUNCTIONS, SP_MAX_SOURCES, SP_MAX_SINKS. */
  functions: 1024,
  sources: 256,
  sinks: 256,
  /** SP_MAX_ARGS: min_args and max_args. */
  args: 64,
  /** SP_MAX_MANIFEST_BYTES: the manifest text. */
  manifestBytes: 8192,
} as const;

/** The oldest contract minor that offers each kind of extension (sources and sinks came in 1.1). */
export const MINOR_FOR_KIND = { function: 0, source: 1, sink: 1 } as const;

/** The entry point a plugin of contract major N exports. */
export const entryName = (major: number): string => `streamplug_plugin_v${major}`;
