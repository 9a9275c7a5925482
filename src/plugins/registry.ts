/**
 * The plugins loaded in this process and the functions they provide. Every load goes through the
 * pre-load check first (a file this process cannot map safely is never dlopened), then the
 * flavour's loader; names are unique across plugins, function names case-insensitively.
 */
import path from 'node:path';
import { checkPluginFile } from '../check/index.js';
import { builtinNamed } from '../check/builtins.js';
import { LIMITS } from '../check/contract.js';
import type { CheckReport } from '../check/types.js';
import { StreamplugError } from '../errors.js';
import type { IsolatedLoader, IsolatedWorkerStatus, PluginHandle, UnloadResult } from './handle.js';
import { isolatedLoader, type IsolatedWorker, type IsolationOptions } from './isolated/index.js';
import { isolatedIo } from './isolated/io.js';
import { hostAddon, type MemoryUse, type PluginLogLine } from './native-addon.js';
import { DEFAULT_LOAD_TIMEOUT_MS, loadNativePlugin } from './native-plugin.js';
import { loadNodePlugin } from './node-plugin.js';
import { PluginIo, registerNativeIo } from './io-connectors.js';
import { nodeIoExtensions, registerNodeIo } from './node-io.js';
import type { Isolation, LoadedPluginInfo, PluginCrashEvent, PluginFunction } from './types.js';

/** Reads a file without loading it and says whether it may be loaded (src/check). */
export type PreloadCheck = (file: string) => CheckReport;

export interface RegistryOptions {
  /** Default: src/check's checkPluginFile. */
  check?: PreloadCheck;
  /** Plugin log lines (host->log), on the JS thread. Default: one line each on stderr. */
  onLog?: (line: PluginLogLine) => void;
  /** How long dlopen + constructors, and then init, may each take (ms). Default 10000. */
  loadTimeoutMs?: number;
  /**
   * A plugin crashed (in-process: found in the journal at start; isolated: its worker died).
   * `quarantine: true` asks the owner (the manager) to quarantine it. Fired by whoever detects it.
   */
  onCrash?: (e: PluginCrashEvent) => void;
  /** Loads a plugin with isolation "process". Default: src/plugins/isolated with `isolation` below. */
  isolated?: IsolatedLoader;
  /** Limits and supervision of isolated workers (timeouts, memory, crash budget, tag). */
  isolation?: IsolationOptions;
}

export interface LoadOptions {
  /** Default "in-process". */
  isolation?: Isolation;
  /** Names the file in the crash journal until the descriptor is read (the install name). */
  label?: string;
  /** Overrides RegistryOptions.loadTimeoutMs for this load. */
  loadTimeoutMs?: number;
}

export interface PluginStatus extends LoadedPluginInfo {
  /** What the plugin holds through host->alloc (`.so` only). */
  memory?: MemoryUse;
  openInstances: number;
  /** Source / sink types the plugin registered in the connector registry, when it has any. */
  sources?: string[];
  sinks?: string[];
  /** Isolation "process": the worker's state, pid, restarts and recent crashes. */
  worker?: IsolatedWorkerStatus;
}

const LEVELS: Record<number, string> = { 20: 'debug', 30: 'info', 40: 'warn', 50: 'error' };

function logToStderr(line: PluginLogLine): void {
  const rule = line.rule ? ` rule=${line.rule}` : '';
  process.stderr.write(`[plugin ${line.plugin}${rule}] ${LEVELS[line.level] ?? line.level}: ${line.message}\n`);
}

function refusal(report: CheckReport): StreamplugError {
  if (report.error) return report.error;
  const row = report.rows.find((r) => r.status === 'refused');
  return new StreamplugError('E_DLOPEN', `${report.file}: ${row?.message ?? 'refused by the pre-load check'}`, { file: report.file });
}

export class PluginRegistry {
  private readonly plugins = new Map<string, PluginHandle>();
  private readonly byFunction = new Map<string, PluginFunction>(); // lower-cased name
  private readonly io = new Map<string, PluginIo>(); // plugin name -> its sources and sinks
  private readonly loading = new Set<string>(); // names admitted by a load still in progress
  private logSinkSet = false;

  constructor(private readonly options: RegistryOptions = {}) {
    this.options.isolated ??= isolatedLoader(options.isolation ?? {}, (line) => (this.options.onLog ?? logToStderr)(line));
  }

  /** load(file, { isolation: "process" }): the plugin in a worker process of its own. */
  loadIsolated(file: string, opts: Omit<LoadOptions, 'isolation'> = {}): Promise<LoadedPluginInfo> {
    return this.load(file, { ...opts, isolation: 'process' });
  }

  /** Installs the loader for isolation "process" (src/plugins/isolated). */
  setIsolatedLoader(loader: IsolatedLoader): void {
    this.options.isolated = loader;
  }

  /** Reports a crash to the registry's owner (RegistryOptions.onCrash). */
  reportCrash(e: PluginCrashEvent): void {
    this.options.onCrash?.(e);
  }

  /**
   * Checks, loads and registers `file`. A `.so` is opened and initialised off the JavaScript thread,
   * each step bounded by loadTimeoutMs (E_LOAD_TIMEOUT). Rejects with a StreamplugError; on failure
   * nothing is registered or left loaded (a load abandoned after its timeout stays mapped, unused).
   */
  async load(file: string, opts: LoadOptions = {}): Promise<LoadedPluginInfo> {
    const absolute = path.resolve(file);
    const isolation = opts.isolation ?? 'in-process';
    if (isolation !== 'in-process' && isolation !== 'process') {
      throw new StreamplugError('E_BAD_REQUEST', `isolation "${String(isolation)}" is unknown; expected "in-process" or "process"`, { isolation });
    }
    const report = (this.options.check ?? checkPluginFile)(absolute);
    if (!report.loadable) throw refusal(report);
    const manifest = report.manifest;
    if (manifest && (this.plugins.has(manifest.name) || this.loading.has(manifest.name))) throw this.alreadyLoaded(manifest.name, absolute);

    const reserved: string[] = [];
    const admit = (name: string, functions: readonly string[]): void => {
      if (this.plugins.has(name) || this.loading.has(name)) throw this.alreadyLoaded(name, absolute);
      if (manifest && manifest.name !== name) {
        throw new StreamplugError('E_MANIFEST_MISMATCH', `${absolute}: manifest names the plugin '${manifest.name}', the plugin says '${name}'; rebuild it`, { file: absolute });
      }
      if (manifest && report.flavour === 'node') {
        // sources and sinks are compared by registerNodeIo, once the exports are read
        const declared = manifest.extensions.filter((e) => e.startsWith('function:')).sort().join(',');
        const actual = functions.map((f) => `function:${f}`).sort().join(',');
        if (declared !== actual) {
          throw new StreamplugError('E_MANIFEST_MISMATCH', `${absolute}: manifest declares ${declared || '(none)'}, the plugin provides ${actual || '(none)'}; make them agree`, { file: absolute });
        }
      }
      for (const f of functions) {
        const builtin = builtinNamed(f);
        if (builtin) {
          // SQL resolves built-ins first: the plugin's function would never run.
          throw new StreamplugError(
            'E_BUILTIN_SHADOW',
            `${absolute}: plugin ${name} provides function ${f}, which has the name of the built-in SQL function ${builtin}; SQL would call the built-in: rename the plugin function`,
            { file: absolute, function: f, builtin },
          );
        }
        if (Buffer.byteLength(f) > LIMITS.nameLength) {
          throw new StreamplugError('E_LIMIT', `${absolute}: function name ${f.slice(0, LIMITS.nameLength)}… is longer than ${LIMITS.nameLength} bytes (SP_MAX_NAME_LENGTH in plugin.h); shorten it`, { file: absolute, function: f });
        }
        const other = this.byFunction.get(f.toLowerCase());
        if (other) {
          throw new StreamplugError(
            'E_DUPLICATE_FUNCTION',
            `${absolute}: function ${f} is already provided by plugin ${other.plugin}; unload ${other.plugin} or rename the function`,
            { file: absolute, function: f, plugin: other.plugin },
          );
        }
      }
      this.loading.add(name);
      reserved.push(name);
    };

    const isNode = report.flavour === 'node' || (report.flavour === 'unknown' && absolute.endsWith('.node'));
    let handle: PluginHandle;
    try {
      if (isolation === 'process') {
        if (!this.options.isolated) {
          throw new StreamplugError(
            'E_ISOLATION_UNAVAILABLE',
            `${absolute}: isolation "process" (the plugin in a worker process of its own) is not available in this host build; install it with isolation "in-process"`,
            { file: absolute, isolation },
          );
        }
        handle = await this.options.isolated(absolute, { admit, label: opts.label, loadTimeoutMs: opts.loadTimeoutMs ?? this.options.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS, onCrash: (e) => this.reportCrash(e) });
      } else {
        if (!isNode) this.ensureLogSink();
        handle = isNode
          ? loadNodePlugin(absolute, admit, this.options.onLog ?? logToStderr)
          : await loadNativePlugin(absolute, admit, { label: opts.label, timeoutMs: opts.loadTimeoutMs ?? this.options.loadTimeoutMs });
      }
    } finally {
      for (const n of reserved) this.loading.delete(n);
    }
    // Sources and sinks go into the connector registry under their names; a clash (or a
    // manifest that disagrees) unloads the plugin again.
    let io: PluginIo;
    try {
      // An isolated plugin's sources and sinks run in its worker (isolated/io.ts); no library here.
      const worker = (handle as { isolated?: IsolatedWorker }).isolated;
      io = isolation === 'process'
        ? worker ? registerNativeIo(handle.info.name, absolute, isolatedIo(worker)) : new PluginIo(handle.info.name)
        : isNode ? registerNodeIo(handle.info.name, absolute, manifest ? nodeIoExtensions(manifest.extensions) : undefined) : registerNativeIo(handle.info.name, absolute);
    } catch (err) {
      handle.unload();
      throw err;
    }
    if (io.sources.length + io.sinks.length > 0) this.io.set(handle.info.name, io);
    handle.info.isolation = isolation;
    this.plugins.set(handle.info.name, handle);
    for (const f of handle.functions) this.byFunction.set(f.name.toLowerCase(), f);
    return handle.info;
  }

  /**
   * Runs the plugin's deinit and unloads it. Refuses (E_CONFLICT) while function instances are
   * open, unless `force`: their close hooks then run first and later calls on them throw.
   */
  unload(name: string, opts: { force?: boolean } = {}): UnloadResult {
    const handle = this.plugins.get(name);
    if (!handle) {
      throw new StreamplugError('E_PLUGIN_NOT_LOADED', `plugin ${name} is not loaded; loaded: ${[...this.plugins.keys()].join(', ') || '(none)'}`, { plugin: name });
    }
    const io = this.io.get(name);
    const open = handle.openInstances() + (io?.live.size ?? 0);
    if (open > 0 && !opts.force) {
      throw new StreamplugError(
        'E_CONFLICT',
        `plugin ${name} has ${open} open ${io?.live.size ? 'function, source or sink' : 'function'} instance(s) (rules using it); stop those rules first, or unload with force`,
        { plugin: name, openInstances: open },
      );
    }
    for (const f of handle.functions) this.byFunction.delete(f.name.toLowerCase());
    this.plugins.delete(name);
    if (io) {
      // Forced: ask live sources/sinks to stop; a thread still running keeps the library mapped.
      void io.stopAll();
      io.unregister();
      this.io.delete(name);
    }
    return handle.unload();
  }

  /** Unloads everything, open instances included (shutdown). */
  unloadAll(): UnloadResult[] {
    return [...this.plugins.keys()].map((name) => this.unload(name, { force: true }));
  }

  has(name: string): boolean {
    return this.plugins.has(name);
  }

  get(name: string): LoadedPluginInfo | undefined {
    return this.plugins.get(name)?.info;
  }

  list(): LoadedPluginInfo[] {
    return [...this.plugins.values()].map((h) => h.info);
  }

  status(name: string): PluginStatus | undefined {
    const handle = this.plugins.get(name);
    const io = this.io.get(name);
    return handle && {
      ...handle.info,
      memory: handle.memory(),
      openInstances: handle.openInstances() + (io?.live.size ?? 0),
      ...(io && { sources: [...io.sources], sinks: [...io.sinks] }),
      ...(handle.worker && { worker: handle.worker() }),
    };
  }

  /** The source and sink types a plugin registered (empty when it has none). */
  connectors(name: string): { sources: string[]; sinks: string[] } {
    const io = this.io.get(name);
    return { sources: [...(io?.sources ?? [])], sinks: [...(io?.sinks ?? [])] };
  }

  /** The function called `name` in SQL (case-insensitive), or undefined. */
  getFunction(name: string): PluginFunction | undefined {
    return this.byFunction.get(name.toLowerCase());
  }

  requireFunction(name: string): PluginFunction {
    const fn = this.getFunction(name);
    if (!fn) throw new StreamplugError('E_UNKNOWN_FUNCTION', `no function ${name} is loaded; install the plugin that provides it`, { function: name });
    return fn;
  }

  listFunctions(): PluginFunction[] {
    return [...this.byFunction.values()];
  }

  private alreadyLoaded(name: string, file: string): StreamplugError {
    const loaded = this.plugins.get(name)!;
    return new StreamplugError(
      'E_PLUGIN_LOADED',
      `${file}: plugin ${name} is already loaded from ${loaded.info.file}; unload it first`,
      { file, plugin: name, loadedFrom: loaded.info.file },
    );
  }

  private ensureLogSink(): void {
    if (this.logSinkSet) return;
    hostAddon().setLogSink(this.options.onLog ?? logToStderr);
    this.logSinkSet = true;
  }
}
