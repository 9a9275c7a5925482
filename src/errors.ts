/**
 * Every error streamplug reports carries a stable code. The message says what was found, what was
 * expected, and what to do. Codes are never reused for another meaning: retire, don't recycle.
 */
export const ERROR_CODES = {
  // usage / input
  E_USAGE: 'bad command-line usage',
  E_BAD_REQUEST: 'malformed request',
  E_NOT_FOUND: 'no such thing',
  E_CONFLICT: 'already exists or in use',
  // the compatibility check (src/check): a file this process cannot load
  E_NOT_FOUND_FILE: 'file does not exist',
  E_NOT_FILE: 'not a regular file',
  E_EMPTY: 'empty file',
  E_TRUNCATED: 'file shorter than its headers say',
  E_NOT_ELF: 'not an ELF file',
  E_NOT_SHARED: 'ELF but not a shared object',
  E_ELF_CLASS: '32/64-bit class does not match this process',
  E_ELF_ENDIAN: 'byte order does not match this process',
  E_ARCH: 'machine does not match this process',
  E_OSABI: 'built for another OS ABI',
  E_LIBC: 'built for another C library (musl/glibc)',
  E_GLIBC_VERSION: 'needs a newer glibc than this system has',
  E_GLIBCXX_VERSION: 'needs a newer libstdc++ than this system has',
  E_MISSING_LIBRARY: 'a needed library cannot be found',
  E_NO_ENTRY: 'no streamplug entry point',
  E_NO_MANIFEST: 'no streamplug manifest note',
  E_BAD_MANIFEST: 'manifest note unreadable',
  E_CONTRACT_MAJOR: 'contract major differs from the host',
  E_CONTRACT_MINOR: 'contract minor newer than the host',
  E_NAPI_VERSION: 'Node-API version newer than this Node offers',
  E_NODE_ABI: 'built for another NODE_MODULE_VERSION',
  E_NOT_ADDON: 'a .node file without a Node-API or Node module entry',
  W_GNU_UNIQUE: 'exports STB_GNU_UNIQUE symbols (never unloaded)',
  E_BAD_ELF: 'ELF structures inconsistent (corrupt file)',
  W_NAPI_UNKNOWN: 'retired: an unreadable Node-API version is now refused (E_NAPI_UNKNOWN)',
  E_NAPI_UNKNOWN: 'Node-API version could not be read statically (instrumented build)',
  W_NODELETE: 'linked with -z nodelete (never unloaded)',
  E_LIMIT: 'a name, count or arity beyond the limits of plugin.h',
  E_BUILTIN_SHADOW: 'a plugin function has the name of a built-in SQL function',
  E_TYPE_MISMATCH: 'the plugin does not provide the extension kind it is installed as',
  E_LOAD_CRASHED: 'the trial load in a child process crashed',
  // loading (native host)
  E_ADDON_MISSING: 'the host addon is not built',
  E_DLOPEN: 'dlopen failed',
  E_UNDEFINED_SYMBOL: 'an undefined symbol',
  E_BAD_MAGIC: 'descriptor magic is wrong',
  E_BAD_DESCRIPTOR: 'descriptor malformed',
  E_MANIFEST_MISMATCH: 'descriptor and manifest disagree',
  E_INIT_FAILED: 'plugin init returned an error',
  E_DUPLICATE_FUNCTION: 'function name already provided by another plugin',
  E_PLUGIN_LOADED: 'plugin already loaded',
  E_PLUGIN_NOT_LOADED: 'plugin not loaded',
  E_LOAD_TIMEOUT: 'loading a plugin (dlopen, constructors, init) took longer than loadTimeoutMs',
  E_ISOLATION_UNAVAILABLE: 'the isolation mode asked for is not available in this host',
  // fault containment
  E_PLUGIN_CRASHED: 'a plugin crashed the host or its worker (signal, exit() or C++ exception)',
  E_QUARANTINED: 'the plugin is quarantined after a crash; enable it to load it again',
  E_JOURNAL: 'the crash journal cannot be opened',
  // calling
  E_ARITY: 'wrong number of arguments',
  E_ARG_TYPE: 'argument of the wrong type',
  E_ARG_LITERAL: 'argument must be a literal',
  E_FUNCTION_FAILED: 'a plugin function returned an error',
  E_UNKNOWN_FUNCTION: 'no such function',
  E_VALIDATE_REFUSED: 'a plugin refused the arguments of a rule',
  E_INSTANCE_CLOSED: 'a function instance or frame was closed',
  E_BAD_RESULT: 'a plugin returned a result of the wrong shape',
  // fault containment: isolated workers (src/plugins/isolated)
  E_CALL_TIMEOUT: 'a call into an isolated plugin exceeded callTimeoutMs; its worker was killed',
  E_PLUGIN_RESTARTING: 'an isolated plugin is restarting after a crash',
  E_ISOLATION: 'an isolated worker could not be set up',
  // rules engine (src/engine)
  E_SQL_SYNTAX: 'SQL does not parse',
  E_SQL_SEMANTIC: 'SQL parses but cannot be compiled (unknown stream/field, misplaced aggregate, bad window)',
  E_EVAL: 'an expression failed on a row at run time',
  E_WINDOW_FULL: 'a window reached maxWindowRows; rows were refused',
  E_RULE_CLOSED: 'the rule was closed',
  E_RULE_FAILED: 'a running rule failed (a sink died) and was stopped',
  // connectors and store (src/connectors, src/store)
  E_CONNECTOR_CONFIG: 'a source or sink property is missing or invalid',
  E_SINK_FAILED: 'a sink could not deliver a message',
  E_STORE_VERSION: 'the data store was written by a newer streamplug',
  E_SOURCE_FAILED: 'a native source failed to open or stopped with an error',
  E_CLOSE_TIMEOUT: 'a plugin source or sink did not finish closing in time',
  // rule sets and fleets (src/rules/ruleset.ts, streamplug fleet)
  E_IMPORT_INCOMPLETE: 'some items of a rule set could not be imported',
  E_FLEET_INCOMPLETE: 'some hosts of a fleet did not take the whole rule set',
  // plugin manager: zips, downloads, signatures, install state (src/manager)
  E_ZIP_SLIP: 'zip entry escapes the target folder (..)',
  E_ZIP_ABSOLUTE: 'zip entry has an absolute path',
  E_ZIP_SYMLINK: 'zip entry is a symbolic link',
  E_ZIP_BOMB: 'zip inflates beyond the size or ratio limit',
  E_ZIP_TOO_MANY: 'zip has more entries than the limit',
  E_ZIP_TOO_BIG: 'zip file larger than the download limit',
  E_ZIP_CORRUPT: 'zip unreadable, truncated or failing its CRC',
  E_ZIP_UNSUPPORTED: 'zip uses encryption or an unsupported compression method',
  E_ZIP_NO_LIBRARY: 'zip has no plugin library at its root',
  E_ZIP_BAD_NAME: 'plugin or library name invalid or not matching',
  E_SHA256: 'zip sha256 differs from the one given',
  E_SIGNATURE: 'plugin unsigned or signature not from a trusted key',
  E_FETCH: 'the plugin zip could not be fetched',
  E_URL_FORBIDDEN: 'URL scheme or target not allowed',
  E_FILE_REFUSED: 'a local zip path named over REST is not a readable zip (existence not told)',
  E_PLUGIN_IN_USE: 'plugin used by rules',
  E_HOST_RUNNING: 'a host is running on this data directory',
  // control-plane security (src/api/security)
  E_UNAUTHORIZED: 'no or wrong credentials for the REST API',
  E_FORBIDDEN: 'request refused by the Origin/Host policy',
  E_CANCELLED: 'the client went away before its queued change ran',
  E_DOWNGRADE: 'update to an older version without force',
  E_INTERNAL: 'unexpected internal error',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class StreamplugError extends Error {
  readonly code: ErrorCode;
  /** Extra structured facts (file, found, expected, …) for JSON output. */
  readonly details?: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'StreamplugError';
    this.code = code;
    this.details = details;
  }
}

export function isStreamplugError(e: unknown): e is StreamplugError {
  return e instanceof StreamplugError;
}
