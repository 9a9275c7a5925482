import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { checkPluginFile } from '../check/index.js';
import { StreamplugError, isStreamplugError } from '../errors.js';
import type { Isolation, LoadedPluginInfo, PluginCrashEvent } from '../plugins/types.js';
import type { JournalReport } from '../plugins/native-addon.js';
import { crashesIn, crashInfo, crashMessage, matchRecord } from './crashes.js';
import { readHostConfig, type HostConfig } from './host-config.js';
import { fetchZip, spoolStream, type FetchedZip } from './fetch.js';
import { dataLayout, ensureLayout, isPluginType, PLUGIN_TYPES, singular, type DataLayout, type PluginType } from './layout.js';
import { resolveLimits, type ZipLimits } from './limits.js';
import { deleteRecord, readAllRecords, readRecord, writeRecord } from './records.js';
import { appendAudit, readAudit, type AuditEntry } from './audit.js';
import { loadTrustedKeys, verifyInstalled, verifyManifest, type TrustedKey } from './signature.js';
import { compareVersions } from './version.js';
import {
  NO_USAGE,
  type CrashInfo,
  type PluginDescription,
  type PluginRecord,
  type PluginStatus,
  type PluginUsage,
  type ProgressEvent,
  type RegistryLike,
} from './types.js';
import { assertPluginName, unpackPlugin, type UnpackedPlugin } from './unpack.js';

export interface ManagerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const silent: ManagerLogger = { info() {}, warn() {}, error() {} };

export interface ManagerOptions {
  dataDir: string;
  registry: RegistryLike;
  usage?: PluginUsage;
  limits?: Partial<ZipLimits>;
  /** PEM files of trusted public keys, in addition to `<data>/etc/trusted-keys/*.pem`. */
  trustedKeyFiles?: string[];
  /** Let http(s) downloads reach loopback/private addresses. */
  allowPrivateUrls?: boolean;
  /** A download receiving nothing for this long fails (E_FETCH) instead of holding the queue; default 30 s. */
  downloadIdleTimeoutMs?: number;
  /**
   * Refuse plugins without a valid signature from a trusted key. An explicit setting, off by
   * default: never inferred from whether key files exist (deleting them must not turn it off).
   */
  requireSignatures?: boolean;
  log?: ManagerLogger;
  /** Operator settings; default: read `<data>/etc/host.json` at start. */
  hostConfig?: HostConfig;
}

/** Where the zip comes from: a path or URL to fetch, or a stream already open (an HTTP upload). */
export type ZipSource = { file: string } | { stream: Readable; label?: string };

export interface InstallRequest {
  type: PluginType;
  name: string;
  source: ZipSource;
  functions?: string[];
  sha256?: string;
  /** Recorded as where the zip came from; default the path/URL, or "upload". */
  origin?: string;
  /** Where the plugin runs; default the operator's host.json default (for signed or unsigned zips), else "in-process". An update keeps the old mode unless given. */
  isolation?: Isolation;
  onProgress?: (p: ProgressEvent) => void;
  /** Who asks, for the audit log ("token:…", "jwt:…", "cli"). */
  actor?: string;
  /** Aborted when the requester went away: a queued change then never runs. */
  signal?: AbortSignal;
  /** Update to an older version (a downgrade) on purpose. */
  force?: boolean;
}

export interface RemoveOptions {
  force?: boolean;
  actor?: string;
  signal?: AbortSignal;
}

export interface InstallResult {
  type: PluginType;
  name: string;
  file: string;
  state: 'loaded' | 'pending-restart';
  /** True when an update's zip held exactly what is installed and running: nothing was reloaded. */
  unchanged?: boolean;
  /** eKuiper's plain-text answer, e.g. "function plugin echo is created". */
  message: string;
  info?: LoadedPluginInfo;
}

export interface StartupReport {
  loaded: { type: PluginType; name: string; file: string; functions: string[] }[];
  failed: { type: PluginType; name: string; file: string; code: string; message: string }[];
  cleaned: string[];
  /** Plugins not loaded because they are quarantined (this start's crashes included). */
  quarantined: { type: PluginType; name: string; crash: CrashInfo }[];
}

/** Files the manager itself names: NAME@<sha8>.so|.node. Others in plugins/<type>/ were dropped in by hand. */
const OWNED_RE = /^([A-Za-z0-9_-]+)@([0-9a-f]{8})\.(so|node)$/;
const LIB_EXT_RE = /\.(so|node)$/;
/** Version folders of plugins that ship private libraries: NAME@<sha8>/ holding the library and lib/. */
const OWNED_DIR_RE = /^([A-Za-z0-9_-]+)@([0-9a-f]{8})$/;

/** What to remove for an installed file: its version folder when it has one, else the file. */
function installedPath(pluginDir: string, file: string): string {
  return path.join(pluginDir, file.includes('/') ? file.split('/')[0] : file);
}

const key = (type: PluginType, name: string) => `${type}/${name}`;

/** What applyPendingUpdates did with one pending update. */
export interface PendingOutcome {
  type: PluginType;
  name: string;
  applied: boolean;
  state: 'loaded' | 'pending-restart';
  message: string;
}

/**
 * Installs, updates and removes plugins in one data directory, and loads them at start.
 * Every change is all-or-nothing: the plugin's record is written last (an install's commit point)
 * and removed first (a delete's), and start() sweeps whatever a crash left between the two.
 */
export class PluginManager {
  readonly layout: DataLayout;
  readonly limits: ZipLimits;
  private readonly registry: RegistryLike;
  private usage: PluginUsage;
  private readonly log: ManagerLogger;
  private readonly opts: ManagerOptions;
  private readonly status = new Map<string, PluginStatus>();
  private queue: Promise<unknown> = Promise.resolve();
  private hostConfig: HostConfig | undefined;

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.layout = dataLayout(opts.dataDir);
    this.limits = resolveLimits(opts.limits);
    this.registry = opts.registry;
    this.usage = opts.usage ?? NO_USAGE;
    this.log = opts.log ?? silent;
  }

  /** The rules engine plugs itself in here once it exists. */
  setUsage(usage: PluginUsage): void {
    this.usage = usage;
  }

  trustedKeys(): TrustedKey[] {
    return loadTrustedKeys(this.layout.trustedKeysDir, this.opts.trustedKeyFiles);
  }

  get requireSignatures(): boolean {
    return !!this.opts.requireSignatures;
  }

  /** One change at a time: installs, updates and deletes are serialised. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // ---------------------------------------------------------------- startup

  /**
   * Creates the layout, sweeps what an interrupted install or delete left, quarantines the plugins
   * the previous run's crash journal blames, and loads every other plugin.
   */
  async start(opts: { journal?: JournalReport } = {}): Promise<StartupReport> {
    return this.exclusive(async () => this.startNow(opts.journal));
  }

  private config(): HostConfig {
    this.hostConfig ??= this.opts.hostConfig ?? readHostConfig(this.layout.hostConfig);
    return this.hostConfig;
  }

  private loadOptions(rec: Pick<PluginRecord, 'name' | 'isolation'>) {
    return { isolation: rec.isolation ?? 'in-process', label: rec.name, loadTimeoutMs: this.config().loadTimeoutMs };
  }

  /** Marks `rec` quarantined (persisted in its record) and logs E_PLUGIN_CRASHED. */
  private quarantine(rec: PluginRecord, crash: CrashInfo): void {
    rec.quarantine = crash;
    writeRecord(this.layout, rec);
    this.audit({ action: 'quarantine', type: rec.type, name: rec.name, actor: 'host', sha256: rec.sha256, outcome: 'ok', code: crash.code });
    this.status.set(key(rec.type, rec.name), { state: 'quarantined', lastError: { code: crash.code, message: crash.message, at: crash.at } });
    this.log.error(
      { code: 'E_PLUGIN_CRASHED', plugin: rec.name, type: rec.type, file: rec.file, hook: crash.hook, rule: crash.rule, signal: crash.signal, kind: crash.kind, backtrace: crash.backtrace },
      `E_PLUGIN_CRASHED: ${crash.message}; ${singular(rec.type)} plugin ${rec.name} is quarantined: it is not loaded and the rules using it stay stopped. ` +
        `Fix or update it, or lift the quarantine with POST /plugins/${rec.type}/${rec.name}/enable (streamplug plugin enable ${rec.type} ${rec.name})`,
    );
  }

  private async startNow(journal?: JournalReport): Promise<StartupReport> {
    ensureLayout(this.layout);
    const report: StartupReport = { loaded: [], failed: [], cleaned: [], quarantined: [] };
    const clean = (p: string, why: string) => {
      fs.rmSync(p, { recursive: true, force: true });
      report.cleaned.push(p);
      this.log.warn({ path: p }, `removed ${why}`);
    };
    for (const f of fs.readdirSync(this.layout.tmp)) clean(path.join(this.layout.tmp, f), 'a temporary folder of an unfinished install');

    const { records, broken } = readAllRecords(this.layout);
    for (const b of broken) clean(b, 'an unreadable plugin record');
    const live: PluginRecord[] = [];
    for (const rec of records) {
      if (!fs.existsSync(path.join(this.layout.pluginDir(rec.type), rec.file))) {
        // The library went away (deleted by hand, or a delete interrupted after its file step).
        clean(this.layout.recordFile(rec.type, rec.name), `the record of ${singular(rec.type)} plugin ${rec.name}: its library ${rec.file} is missing`);
        this.removeEtc(rec);
        continue;
      }
      live.push(rec);
    }

    for (const type of PLUGIN_TYPES) {
      const dir = this.layout.pluginDir(type);
      const referenced = new Set(live.filter((r) => r.type === type).map((r) => r.file.split('/')[0]));
      for (const f of fs.readdirSync(dir)) {
        if (referenced.has(f)) continue;
        const full = path.join(dir, f);
        if (OWNED_DIR_RE.test(f) && fs.statSync(full, { throwIfNoEntry: false })?.isDirectory()) {
          clean(full, 'a plugin version folder no plugin record refers to');
          continue;
        }
        if (!LIB_EXT_RE.test(f)) continue; // not ours to judge
        if (OWNED_RE.test(f)) {
          // A library copied in by an install that never reached its record, or the previous
          // version an update left for after the restart.
          clean(full, 'a library no plugin record refers to');
          continue;
        }
        const adopted = this.adopt(type, f);
        if (adopted) live.push(adopted);
      }
      const etcRoot = path.join(this.layout.etc, 'plugins', type);
      if (fs.existsSync(etcRoot)) {
        const names = new Set(live.filter((r) => r.type === type).map((r) => r.name));
        for (const d of fs.readdirSync(etcRoot)) if (!names.has(d)) clean(path.join(etcRoot, d), 'configuration of a plugin with no record');
      }
    }

    const found = now();
    for (const entry of crashesIn(journal)) {
      const rec = matchRecord(entry, live);
      const crash = crashInfo(entry, found);
      if (!rec) {
        this.log.error({ code: 'E_PLUGIN_CRASHED', plugin: entry.plugin, file: entry.path, hook: entry.hook }, `E_PLUGIN_CRASHED: ${crash.message}; no installed plugin matches ${entry.path}, nothing to quarantine`);
        continue;
      }
      this.quarantine(rec, crash);
    }

    let keys: TrustedKey[] = [];
    let keyError: StreamplugError | undefined;
    try {
      keys = this.trustedKeys();
    } catch (e) {
      keyError = e as StreamplugError;
      this.log.error({ code: keyError.code }, keyError.message);
    }
    for (const rec of live) {
      const file = path.join(this.layout.pluginDir(rec.type), rec.file);
      if (rec.pendingRestart) {
        delete rec.pendingRestart;
        writeRecord(this.layout, rec);
      }
      if (rec.quarantine) {
        this.status.set(key(rec.type, rec.name), { state: 'quarantined', lastError: { code: rec.quarantine.code, message: rec.quarantine.message, at: rec.quarantine.at } });
        report.quarantined.push({ type: rec.type, name: rec.name, crash: rec.quarantine });
        this.log.warn({ plugin: rec.name, type: rec.type, code: 'E_QUARANTINED' }, `${singular(rec.type)} plugin ${rec.name} is quarantined (${rec.quarantine.message}); not loaded`);
        continue;
      }
      try {
        if (keyError) throw keyError;
        verifyInstalled(sha256Of(file), rec.file, rec.signature, keys, this.requireSignatures);
        const info = await this.registry.load(file, this.loadOptions(rec));
        this.status.set(key(rec.type, rec.name), { state: 'loaded', info });
        report.loaded.push({ type: rec.type, name: rec.name, file, functions: info.functions });
        this.log.info({ plugin: rec.name, type: rec.type, file, functions: info.functions }, `loaded ${singular(rec.type)} plugin ${rec.name}`);
      } catch (e) {
        const err = asError(e);
        this.status.set(key(rec.type, rec.name), { state: 'failed', lastError: { code: err.code, message: err.message, at: now() } });
        report.failed.push({ type: rec.type, name: rec.name, file, code: err.code, message: err.message });
        this.log.error({ plugin: rec.name, type: rec.type, file, code: err.code }, `cannot load ${file}: ${err.message}`);
      }
    }
    return report;
  }

  /** A library dropped into plugins/<type>/ by hand (eKuiper style): record it under its file name. */
  private adopt(type: PluginType, file: string): PluginRecord | undefined {
    const name = file.replace(LIB_EXT_RE, '').replace(/@.*$/, '');
    const full = path.join(this.layout.pluginDir(type), file);
    // A bad file found at startup is logged and skipped: nothing about it may stop the host.
    try {
      assertPluginName(name);
      if (readRecord(this.layout, type, name)) throw new StreamplugError('E_CONFLICT', `a plugin named ${name} is already installed`);
      const stamp = now();
      const rec: PluginRecord = {
        type,
        name,
        file,
        flavour: file.endsWith('.node') ? 'node' : 'so',
        sha256: crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex'),
        installedAt: stamp,
        updatedAt: stamp,
        etcFiles: [],
      };
      writeRecord(this.layout, rec);
      this.log.info({ file: full }, `adopted ${full} as ${singular(type)} plugin ${name}: a library placed in plugins/${type}/ without the REST API (the demo's samples, or a manual copy)`);
      return rec;
    } catch (e) {
      this.log.error({ file: full, code: asError(e).code }, `ignoring ${full}: ${asError(e).message}`);
      return undefined;
    }
  }

  // ---------------------------------------------------------------- queries

  list(type: PluginType): string[] {
    return readAllRecords(this.layout, { readOnly: true })
      .records.filter((r) => r.type === type)
      .map((r) => r.name);
  }

  record(type: PluginType, name: string): PluginRecord | undefined {
    return readRecord(this.layout, type, name);
  }

  describe(type: PluginType, name: string): PluginDescription {
    const rec = this.requireRecord(type, name);
    const file = path.join(this.layout.pluginDir(type), rec.file);
    const st = this.status.get(key(type, name)) ?? { state: 'not-loaded' as const };
    const info = st.info;
    const report = checkPluginFile(file);
    let signedBy: string | null = null;
    try {
      signedBy = verifyInstalled(sha256Of(file), rec.file, rec.signature, this.trustedKeys(), false) ?? null;
    } catch {
      signedBy = null;
    }
    return {
      name,
      type,
      version: rec.version ?? info?.version ?? null,
      file,
      flavour: rec.flavour,
      sha256: rec.sha256,
      installedAt: rec.installedAt,
      updatedAt: rec.updatedAt,
      origin: rec.origin,
      metadata: rec.metadata,
      functions: rec.functions ?? info?.functions ?? report.manifest?.extensions.filter((e) => e.startsWith('function:')).map((e) => e.slice(9)) ?? [],
      build: info?.build ?? null,
      contract: info?.contract ?? report.manifest?.contract ?? null,
      state: rec.pendingRestart ? 'pending-restart' : rec.quarantine ? 'quarantined' : st.state,
      isolation: rec.isolation ?? 'in-process',
      ...(rec.quarantine ? { crash: rec.quarantine } : {}),
      lastError: st.lastError ?? null,
      pendingRestart: rec.pendingRestart?.reason ?? null,
      signedBy,
      signedFiles: signedBy && rec.signature?.files ? Object.keys(rec.signature.files).sort() : [],
      check: { loadable: report.loadable, rows: report.rows },
      rulesUsing: this.usage.rulesUsing(name),
      installed: { version: rec.version ?? null, file, sha256: rec.sha256 },
      running: st.state === 'loaded' && info ? { version: info.version, file: info.file } : null,
    };
  }

  /** Every function provided by a loaded plugin, by SQL name. */
  listUdfs(): string[] {
    return this.registry.listFunctions().map((f) => f.name);
  }

  /** Which plugin provides the function `name` (case-insensitive), as installed. */
  udf(name: string): { name: string; plugin: string; type: PluginType } {
    const fn = this.registry.getFunction(name);
    if (!fn) throw new StreamplugError('E_NOT_FOUND', `no loaded plugin provides function "${name}"; GET /plugins/udfs lists those that exist`, { name });
    const owner = this.ownerOf(fn.plugin);
    return { name: fn.name, plugin: owner?.name ?? fn.plugin, type: owner?.type ?? 'functions' };
  }

  /** The installed plugin whose loaded library has descriptor name `loadedName`. */
  private ownerOf(loadedName: string): { type: PluginType; name: string } | undefined {
    for (const [k, st] of this.status) {
      if (st.info?.name === loadedName) {
        const [type, name] = k.split('/') as [PluginType, string];
        return { type, name };
      }
    }
    return undefined;
  }

  /** An installed plugin of this type whose name differs from `name` only in case. */
  private recordNamedLike(type: PluginType, name: string): PluginRecord | undefined {
    const lower = name.toLowerCase();
    return readAllRecords(this.layout, { readOnly: true }).records.find((r) => r.type === type && r.name.toLowerCase() === lower);
  }

  private requireRecord(type: PluginType, name: string): PluginRecord {
    if (!isPluginType(type)) throw badType(type);
    assertPluginName(name);
    const rec = readRecord(this.layout, type, name);
    if (!rec) {
      throw new StreamplugError('E_NOT_FOUND', `${singular(type)} plugin ${name} is not installed; GET /plugins/${type} lists those that are`, {
        type,
        name,
      });
    }
    return rec;
  }

  // ---------------------------------------------------------------- inspect (pack, `plugin check`)

  /** Unpacks and checks a zip exactly as install would, without loading or installing anything. */
  async inspect(zipFile: string, opts: { type: PluginType; name?: string; onProgress?: (p: ProgressEvent) => void }): Promise<Omit<UnpackedPlugin, 'dir' | 'library'>> {
    ensureLayout(this.layout);
    const work = this.workDir('inspect');
    try {
      const u = await unpackPlugin(zipFile, path.join(work, 'x'), { ...opts, limits: this.limits, keys: this.trustedKeys(), loadTimeoutMs: this.config().loadTimeoutMs, requireSignatures: this.requireSignatures });
      const { dir: _d, library: _l, ...rest } = u;
      return rest;
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  // ---------------------------------------------------------------- install / update

  install(req: InstallRequest): Promise<InstallResult> {
    return this.exclusive(() => this.audited(req, 'install', () => this.installNow(req, 'create')));
  }

  update(req: InstallRequest): Promise<InstallResult> {
    return this.exclusive(() => this.audited(req, 'update', () => this.installNow(req, 'update')));
  }

  /** Records the outcome of an install or update in the audit log, refusals included. */
  private async audited(req: InstallRequest, action: 'install' | 'update', fn: () => Promise<InstallResult>): Promise<InstallResult> {
    try {
      notCancelled(req.signal);
      const r = await fn();
      this.audit({ action, type: req.type, name: req.name, actor: req.actor ?? 'cli', sha256: this.record(req.type, req.name)?.sha256, outcome: 'ok' });
      return r;
    } catch (e) {
      this.audit({ action, type: String(req.type), name: String(req.name), actor: req.actor ?? 'cli', outcome: 'refused', code: asError(e).code });
      throw e;
    }
  }

  /**
   * The one audit hook: every install, update, delete — and enable / quarantine, whose code calls
   * it too — lands in `<data>/plugins/audit.jsonl`. A failing audit write is logged, never fatal.
   */
  audit(entry: Omit<AuditEntry, 'at'>): void {
    try {
      appendAudit(this.layout.root, entry);
    } catch (e) {
      this.log.error({ code: (e as NodeJS.ErrnoException).code }, `cannot write the audit log: ${(e as Error).message}`);
    }
  }

  auditEntries(): AuditEntry[] {
    return readAudit(this.layout.root);
  }

  private workDir(kind: string): string {
    const dir = path.join(this.layout.tmp, `${kind}-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  private async installNow(req: InstallRequest, mode: 'create' | 'update'): Promise<InstallResult> {
    const { type, name } = req;
    if (!isPluginType(type)) throw badType(type);
    if (typeof name !== 'string') throw new StreamplugError('E_BAD_REQUEST', '"name" must be a string: the plugin name');
    assertPluginName(name);
    if (req.functions !== undefined && (!Array.isArray(req.functions) || req.functions.some((f) => typeof f !== 'string'))) {
      throw new StreamplugError('E_BAD_REQUEST', '"functions" must be an array of function names');
    }
    const old = readRecord(this.layout, type, name);
    const sameName = mode === 'create' && !old ? this.recordNamedLike(type, name) : undefined;
    if (sameName) {
      // Echo and echo would be two plugins to the manager but one to SQL, whose names ignore case.
      throw new StreamplugError(
        'E_CONFLICT',
        `${singular(type)} plugin ${sameName.name} is installed and names are unique regardless of case; expected a new name, or update ${sameName.name}`,
        { type, name, existing: sameName.name },
      );
    }
    if (mode === 'create' && old) {
      throw new StreamplugError(
        'E_CONFLICT',
        `${singular(type)} plugin ${name} already exists; to replace it use PUT /plugins/${type}/${name} (or \`streamplug plugin update\`)`,
        { type, name },
      );
    }
    if (mode === 'update' && !old) {
      throw new StreamplugError('E_NOT_FOUND', `${singular(type)} plugin ${name} is not installed; create it with POST /plugins/${type}`, { type, name });
    }
    ensureLayout(this.layout);
    const work = this.workDir('install');
    const created: string[] = []; // files to remove if this install does not complete
    let loadedNew: string | undefined;
    let unloadedOld: LoadedPluginInfo | undefined;
    try {
      const zip = await this.obtainZip(req.source, path.join(work, 'plugin.zip'), req.onProgress);
      if (req.sha256 !== undefined) {
        const want = String(req.sha256).toLowerCase();
        if (want !== zip.sha256) {
          // The actual hash is not told: it would make the host a hash oracle for any file it can read.
          throw new StreamplugError('E_SHA256', `the zip's sha256 is not the ${want} given; the download is damaged or not the file meant`, {
            expected: want,
          });
        }
      }
      const u = await unpackPlugin(zip.file, path.join(work, 'x'), {
        type,
        name,
        limits: this.limits,
        keys: this.trustedKeys(),
        requireSignatures: this.requireSignatures,
        onProgress: req.onProgress,
        loadTimeoutMs: this.config().loadTimeoutMs,
      });
      const newVersion = (typeof u.metadata?.version === 'string' ? u.metadata.version : undefined) ?? u.report.manifest?.version;
      if (mode === 'update' && old?.version && newVersion && !req.force && compareVersions(newVersion, old.version) < 0) {
        throw new StreamplugError(
          'E_DOWNGRADE',
          `${singular(type)} plugin ${name} ${newVersion} is older than the installed ${old.version}; a downgrade needs force (PUT ?force=true, \`plugin update --force\`)`,
          { installed: old.version, offered: newVersion },
        );
      }

      // A fresh file name per content: a loaded library's path is never written over. A plugin
      // with private libraries (lib/) gets a version folder of its own, NAME@sha8/, holding the
      // library and lib/, so its RUNPATH $ORIGIN/lib finds exactly the libraries it came with.
      const version = `${name}@${u.sha256.slice(0, 8)}`;
      const fileName = u.privateLibs.length ? `${version}/${version}.${u.flavour}` : `${version}.${u.flavour}`;
      const dest = path.join(this.layout.pluginDir(type), fileName);
      if (!fs.existsSync(dest)) {
        if (u.privateLibs.length) {
          const folder = path.dirname(dest);
          fs.mkdirSync(folder, { recursive: true });
          created.push(folder);
          fs.renameSync(path.join(u.dir, 'lib'), path.join(folder, 'lib'));
        }
        fs.renameSync(u.library, dest);
        if (!u.privateLibs.length) created.push(dest);
      }

      const isolation: Isolation =
        req.isolation ?? old?.isolation ?? (u.signature ? this.config().isolation.default : this.config().isolation.unsigned);
      const oldStatus = this.status.get(key(type, name));
      // What is mapped now, not what the record says: after a pending update they differ.
      const runningFile = oldStatus?.state === 'loaded' ? oldStatus.info?.file : undefined;
      const runsDest = runningFile !== undefined && path.resolve(runningFile) === path.resolve(dest);
      // A switch of isolation alone is a change: the plugin moves into or out of a worker.
      if (mode === 'update' && old && !old.pendingRestart && old.sha256 === u.sha256 && runsDest && this.sameEtc(u, old) && (old.isolation ?? 'in-process') === isolation) {
        const message = `${singular(type)} plugin ${name} is unchanged: the zip holds the library already running (sha256 ${u.sha256.slice(0, 8)}…) and the same etc files; nothing was reloaded`;
        this.log.info({ plugin: name, type, file: dest }, message);
        return { type, name, file: dest, state: 'loaded', unchanged: true, message, info: oldStatus?.info };
      }
      const rulesUsing = old ? this.usage.rulesUsing(name) : [];
      let pending: string | undefined;
      let info: LoadedPluginInfo | undefined;
      if (old && runsDest && (old.isolation ?? 'in-process') === isolation) {
        info = oldStatus!.info; // same bytes already running, the same way
      } else if (old && oldStatus?.state === 'loaded' && (old.flavour === 'node' || rulesUsing.length > 0)) {
        pending =
          old.flavour === 'node'
            ? `Node never unloads a .node addon: the new version of ${name} loads at the next start`
            : `rules ${rulesUsing.join(', ')} use ${name}: the new version loads at the next start`;
      } else {
        if (old && oldStatus?.state === 'loaded' && oldStatus.info) {
          try {
            this.registry.unload(oldStatus.info.name);
            unloadedOld = oldStatus.info;
            this.status.set(key(type, name), { state: 'not-loaded' });
          } catch (e) {
            // Function instances still open (a rule runs it): keep the running one until restart.
            if (asError(e).code !== 'E_CONFLICT') throw e;
            pending = `${asError(e).message.replace(/;.*$/, '')}: the new version of ${name} loads at the next start`;
          }
        }
        if (!pending) {
          info = await this.registry.load(dest, { isolation, label: name, loadTimeoutMs: this.config().loadTimeoutMs });
          loadedNew = info.name;
        }
      }

      if (req.functions && info) {
        const provided = new Set(info.functions.map((f) => f.toLowerCase()));
        const missing = req.functions.filter((f) => !provided.has(f.toLowerCase()));
        if (missing.length) {
          throw new StreamplugError(
            'E_UNKNOWN_FUNCTION',
            `${singular(type)} plugin ${name} does not provide ${missing.join(', ')}; it provides ${info.functions.join(', ') || 'no functions'}`,
            { missing, provided: info.functions },
          );
        }
      }

      const etcFiles = this.placeEtc(u, created);
      const stamp = now();
      const rec: PluginRecord = {
        type,
        name,
        file: fileName,
        flavour: u.flavour,
        sha256: u.sha256,
        version: (typeof u.metadata?.version === 'string' ? u.metadata.version : undefined) ?? u.report.manifest?.version ?? info?.version,
        installedAt: old?.installedAt ?? stamp,
        updatedAt: stamp,
        origin: req.origin ?? ('file' in req.source ? req.source.file : req.source.label ?? 'upload'),
        metadata: u.metadata,
        functions: req.functions ?? old?.functions,
        signature: u.signature,
        etcFiles,
        pendingRestart: pending ? { reason: pending } : undefined,
        // A successful update lifts a quarantine (the record is written afresh, without it).
        ...(isolation !== 'in-process' ? { isolation } : {}),
      };
      writeRecord(this.layout, rec); // commit point
      created.length = 0;

      if (info) this.status.set(key(type, name), { state: 'loaded', info });
      if (old && old.file !== fileName && !pending) {
        // The old library is unloaded; unlinking a file never disturbs a mapping anyway.
        fs.rmSync(installedPath(this.layout.pluginDir(type), old.file), { recursive: true, force: true });
      }
      // A pending update applied now: the library that was running is neither the record's old
      // file nor the new one; remove it too (only inside this type's plugin folder).
      if (unloadedOld) {
        const dir = this.layout.pluginDir(type);
        const top = (f: string) => path.relative(dir, path.resolve(f)).split(path.sep)[0];
        const was = top(unloadedOld.file); // its file, or its NAME@sha8/ version folder
        if (was && was !== '..' && !path.isAbsolute(was) && was !== top(dest)) fs.rmSync(path.join(dir, was), { recursive: true, force: true });
      }
      const verb = mode === 'create' ? 'created' : 'updated';
      const message = pending
        ? `${singular(type)} plugin ${name} is ${verb}; the change takes effect at restart (${pending})`
        : `${singular(type)} plugin ${name} is ${verb}`;
      this.log.info({ plugin: name, type, file: dest, functions: info?.functions }, message);
      return { type, name, file: dest, state: pending ? 'pending-restart' : 'loaded', message, info };
    } catch (e) {
      if (loadedNew) {
        try {
          this.registry.unload(loadedNew, { force: true });
        } catch (ue) {
          this.log.error({ plugin: name, code: asError(ue).code }, `rollback could not unload ${loadedNew}: ${asError(ue).message}`);
        }
      }
      if (unloadedOld && old) {
        try {
          const info = await this.registry.load(path.join(this.layout.pluginDir(type), old.file), this.loadOptions(old));
          this.status.set(key(type, name), { state: 'loaded', info });
        } catch (le) {
          const err = asError(le);
          this.status.set(key(type, name), { state: 'failed', lastError: { code: err.code, message: err.message, at: now() } });
        }
      }
      for (const f of created) fs.rmSync(f, { recursive: true, force: true });
      const err = asError(e);
      this.log.warn({ plugin: name, type, code: err.code }, `${mode === 'create' ? 'install' : 'update'} of ${name} refused: ${err.message}`);
      throw err;
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  private obtainZip(source: ZipSource, dest: string, onProgress?: (p: ProgressEvent) => void): Promise<FetchedZip> {
    const opts = { maxBytes: this.limits.maxZipBytes, allowPrivateNetworks: this.opts.allowPrivateUrls, idleTimeoutMs: this.opts.downloadIdleTimeoutMs, onProgress };
    return 'file' in source ? fetchZip(source.file, dest, opts) : spoolStream(source.stream, dest, opts);
  }

  /** Moves the zip's etc/ folder and a source's NAME.yaml into place; returns what was written. */
  /** True when the zip's etc files (and source yaml) are byte for byte those the record placed. */
  private sameEtc(u: UnpackedPlugin, rec: PluginRecord): boolean {
    const placed: [string, string][] = u.etcFiles.map((f) => [path.join(u.dir, 'etc', f), path.join(this.layout.pluginEtcDir(u.type, u.name), f)]);
    if (u.yaml && u.type === 'sources') placed.push([u.yaml, this.layout.sourceYaml(u.name)]);
    if (placed.length !== (rec.etcFiles ?? []).length) return false;
    return placed.every(([from, to]) => fs.existsSync(to) && fs.readFileSync(from).equals(fs.readFileSync(to)));
  }

  private placeEtc(u: UnpackedPlugin, created: string[]): string[] {
    const written: string[] = [];
    const etcSrc = path.join(u.dir, 'etc');
    const etcDest = this.layout.pluginEtcDir(u.type, u.name);
    if (u.etcFiles.length && fs.existsSync(etcSrc)) {
      fs.rmSync(etcDest, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(etcDest), { recursive: true });
      fs.renameSync(etcSrc, etcDest);
      created.push(etcDest);
      for (const f of u.etcFiles) written.push(path.relative(this.layout.root, path.join(etcDest, f)));
    }
    if (u.yaml && u.type === 'sources') {
      const dest = this.layout.sourceYaml(u.name);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.renameSync(u.yaml, dest);
      created.push(dest);
      written.push(path.relative(this.layout.root, dest));
    }
    return written;
  }

  private removeEtc(rec: PluginRecord): void {
    for (const f of rec.etcFiles ?? []) {
      const full = path.resolve(this.layout.root, f);
      if (full.startsWith(this.layout.etc + path.sep)) fs.rmSync(full, { force: true });
    }
    fs.rmSync(this.layout.pluginEtcDir(rec.type, rec.name), { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- delete / register

  remove(type: PluginType, name: string, opts: RemoveOptions = {}): Promise<{ message: string; restartNeeded: boolean }> {
    return this.exclusive(async () => {
      try {
        notCancelled(opts.signal);
        const r = await this.removeNow(type, name, opts);
        this.audit({ action: 'delete', type, name, actor: opts.actor ?? 'cli', sha256: r.sha256, outcome: 'ok' });
        return { message: r.message, restartNeeded: r.restartNeeded };
      } catch (e) {
        this.audit({ action: 'delete', type: String(type), name: String(name), actor: opts.actor ?? 'cli', outcome: 'refused', code: asError(e).code });
        throw e;
      }
    });
  }

  private async removeNow(type: PluginType, name: string, opts: RemoveOptions): Promise<{ message: string; restartNeeded: boolean; sha256: string }> {
    const rec = this.requireRecord(type, name);
    const rules = this.usage.rulesUsing(name);
    if (rules.length && !opts.force) {
      throw new StreamplugError(
        'E_PLUGIN_IN_USE',
        `${singular(type)} plugin ${name} is used by rule(s) ${rules.join(', ')}; delete or change those rules first, or delete with force`,
        { type, name, rules },
      );
    }
    const st = this.status.get(key(type, name));
    if (st?.state === 'loaded' && st.info) this.registry.unload(st.info.name, { force: opts.force });
    this.status.delete(key(type, name));
    deleteRecord(this.layout, type, name); // commit point: from here the plugin is gone
    fs.rmSync(installedPath(this.layout.pluginDir(type), rec.file), { recursive: true, force: true });
    this.removeEtc(rec);
    const restartNeeded = rec.flavour === 'node';
    const message = restartNeeded
      ? `${singular(type)} plugin ${name} is deleted; its functions are unregistered, and Node releases the .node library at restart`
      : `${singular(type)} plugin ${name} is deleted`;
    this.log.info({ plugin: name, type }, message);
    return { message, restartNeeded, sha256: rec.sha256 };
  }

  /** eKuiper's POST /plugins/functions/{name}/register: records which functions the plugin serves. */
  registerFunctions(name: string, functions: unknown): Promise<string> {
    return this.exclusive(async () => {
      const rec = this.requireRecord('functions', name);
      if (!Array.isArray(functions) || functions.length === 0 || functions.some((f) => typeof f !== 'string' || !f)) {
        throw new StreamplugError('E_BAD_REQUEST', 'expected a body {"functions": ["name", …]} with at least one function name');
      }
      const st = this.status.get(key('functions', name));
      const provided = st?.info?.functions ?? [];
      const lower = new Set(provided.map((f) => f.toLowerCase()));
      const missing = (functions as string[]).filter((f) => !lower.has(f.toLowerCase()));
      if (missing.length) {
        throw new StreamplugError(
          'E_UNKNOWN_FUNCTION',
          `function plugin ${name} does not provide ${missing.join(', ')}; it provides ${provided.join(', ') || 'nothing (not loaded)'}`,
          { missing, provided },
        );
      }
      writeRecord(this.layout, { ...rec, functions: functions as string[], updatedAt: now() });
      return `function plugin ${name} function list is registered`;
    });
  }

  // ---------------------------------------------------------------- pending updates

  /**
   * Applies every pending update (`pending-restart`) that nothing blocks any more: no rule uses the
   * plugin (stopped rules count: they still name its functions), it is a `.so`, and no function
   * instance is open. The running library is unloaded, the installed one loaded, the old file
   * removed; describe then shows `loaded` with `running` = `installed`. When the new library fails
   * to load, the old one is loaded again and the record says why (still pending, applied or
   * refused again at restart). The rules service calls this after a rule is deleted or changed.
   */
  applyPendingUpdates(): Promise<PendingOutcome[]> {
    return this.exclusive(async () => {
      const out: PendingOutcome[] = [];
      for (const rec of readAllRecords(this.layout).records) {
        if (rec.pendingRestart && !rec.quarantine) out.push(await this.applyPendingNow(rec));
      }
      return out;
    });
  }

  private async applyPendingNow(rec: PluginRecord): Promise<PendingOutcome> {
    const { type, name } = rec;
    const what = `pending update of ${singular(type)} plugin ${name}`;
    const keep = (reason: string): PendingOutcome => {
      if (rec.pendingRestart?.reason !== reason) writeRecord(this.layout, { ...rec, pendingRestart: { reason } });
      return { type, name, applied: false, state: 'pending-restart', message: `${what} not applied: ${reason}` };
    };
    const rules = this.usage.rulesUsing(name);
    if (rules.length) return keep(`rules ${rules.join(', ')} use ${name}: the new version loads at the next start`);
    if (rec.flavour === 'node') return keep(rec.pendingRestart!.reason);
    const file = path.join(this.layout.pluginDir(type), rec.file);
    const st = this.status.get(key(type, name));
    const old = st?.state === 'loaded' ? st.info : undefined;
    if (old) {
      try {
        this.registry.unload(old.name);
      } catch (e) {
        const err = asError(e);
        if (err.code !== 'E_CONFLICT') throw err;
        const reason = `${err.message.replace(/;.*$/, '')}: the new version of ${name} loads at the next start`;
        this.log.info({ plugin: name, type }, `${what} not applied: ${reason}`);
        return keep(reason);
      }
    }
    let info: LoadedPluginInfo;
    try {
      info = await this.registry.load(file, this.loadOptions(rec));
    } catch (e) {
      const err = asError(e);
      let reason = `the new version failed to load (${err.code}: ${err.message})`;
      if (old) {
        try {
          this.status.set(key(type, name), { state: 'loaded', info: await this.registry.load(old.file, this.loadOptions(rec)) });
          reason += `; the previous version ${old.version} keeps running`;
        } catch (le) {
          const again = asError(le);
          this.status.set(key(type, name), { state: 'failed', lastError: { code: again.code, message: again.message, at: now() } });
          reason += `; the previous version could not be loaded again either (${again.code}: ${again.message})`;
        }
      }
      this.log.error({ plugin: name, type, file, code: err.code }, `${what} not applied: ${reason}`);
      return keep(reason);
    }
    this.status.set(key(type, name), { state: 'loaded', info });
    const { pendingRestart: _applied, ...applied } = rec;
    writeRecord(this.layout, applied);
    if (old) {
      // The library that was running is neither the record's file nor in its folder: remove it
      // (only inside this type's plugin folder), as an update that could unload at once does.
      const dir = this.layout.pluginDir(type);
      const top = (f: string) => path.relative(dir, path.resolve(f)).split(path.sep)[0];
      const was = top(old.file);
      if (was && was !== '..' && !path.isAbsolute(was) && was !== top(file)) fs.rmSync(path.join(dir, was), { recursive: true, force: true });
    }
    const message = `${what} applied: no rule uses it any more; version ${old?.version ?? '?'} unloaded, version ${info.version} loaded from ${file}`;
    this.log.info({ plugin: name, type, file, functions: info.functions }, message);
    return { type, name, applied: true, state: 'loaded', message };
  }

  // ---------------------------------------------------------------- quarantine

  /**
   * Lifts a quarantine and loads the plugin. The record loses its crash either way; a load that
   * fails leaves the plugin `failed` with the reason. Returns the message and the new state.
   */
  enable(type: PluginType, name: string, actor = 'cli'): Promise<{ message: string; state: string; info?: LoadedPluginInfo }> {
    return this.exclusive(async () => {
      const rec = this.requireRecord(type, name);
      this.audit({ action: 'enable', type, name, actor, sha256: rec.sha256, outcome: 'ok' });
      const st = this.status.get(key(type, name));
      if (!rec.quarantine && st?.state === 'loaded') {
        return { message: `${singular(type)} plugin ${name} is not quarantined; it is loaded`, state: 'loaded', info: st.info };
      }
      delete rec.quarantine;
      writeRecord(this.layout, rec);
      const file = path.join(this.layout.pluginDir(type), rec.file);
      try {
        const info = await this.registry.load(file, this.loadOptions(rec));
        this.status.set(key(type, name), { state: 'loaded', info });
        this.log.info({ plugin: name, type }, `${singular(type)} plugin ${name} is enabled and loaded`);
        await this.onEnabled?.(info.name);
        return { message: `${singular(type)} plugin ${name} is enabled and loaded`, state: 'loaded', info };
      } catch (e) {
        const err = asError(e);
        this.status.set(key(type, name), { state: 'failed', lastError: { code: err.code, message: err.message, at: now() } });
        this.log.error({ plugin: name, type, code: err.code }, `${singular(type)} plugin ${name} is enabled but cannot load: ${err.message}`);
        return { message: `${singular(type)} plugin ${name} is enabled but cannot load: ${err.code}: ${err.message}`, state: 'failed' };
      }
    });
  }

  /** Called after enable() loaded a plugin (the host starts the rules held back for it). */
  onEnabled?: (loadedName: string) => Promise<unknown>;

  /**
   * A crash reported at run time (RegistryOptions.onCrash; an isolated plugin's worker): logged as
   * E_PLUGIN_CRASHED, and with `quarantine` the plugin is quarantined and unloaded.
   */
  handleCrash(e: PluginCrashEvent): void {
    const records = readAllRecords(this.layout).records.filter((r) => e.type === undefined || r.type === e.type);
    const rec = records.find((r) => r.name === e.plugin) ?? records.find((r) => this.status.get(key(r.type, r.name))?.info?.name === e.plugin);
    const base = { code: 'E_PLUGIN_CRASHED' as const, plugin: e.plugin, at: now(), hook: e.hook, rule: e.rule, signal: e.signal, kind: 'worker' };
    const crash: CrashInfo = { ...base, message: `${crashMessage(base)}: ${e.detail}` };
    if (!rec || !e.quarantine) {
      this.log.error({ code: 'E_PLUGIN_CRASHED', plugin: e.plugin, hook: e.hook, rule: e.rule, signal: e.signal }, `E_PLUGIN_CRASHED: ${crash.message}`);
      return;
    }
    const loaded = this.status.get(key(rec.type, rec.name))?.info?.name;
    if (loaded) {
      try {
        this.registry.unload(loaded, { force: true });
      } catch (ue) {
        this.log.warn({ plugin: rec.name, code: asError(ue).code }, `could not unload quarantined plugin ${rec.name}: ${asError(ue).message}`);
      }
    }
    this.quarantine(rec, crash);
  }

  /** For the rules gate: why rules using the loaded plugin `plugin` must not start, if they must not. */
  quarantineReason(plugin: string): string | undefined {
    for (const rec of readAllRecords(this.layout).records) {
      if (rec.quarantine && (rec.name === plugin || rec.quarantine.plugin === plugin)) {
        return `stopped because ${rec.quarantine.message}; enable it with POST /plugins/${rec.type}/${rec.name}/enable once fixed`;
      }
    }
    return undefined;
  }

  /** Status of a plugin as loaded in this process (for hosts and tests). */
  statusOf(type: PluginType, name: string): PluginStatus | undefined {
    return this.status.get(key(type, name));
  }
}

/** A change whose requester has gone (`signal` aborted) by the time its turn comes is dropped, not run. */
function notCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new StreamplugError('E_CANCELLED', 'the client went away before this change ran; nothing was changed: send the request again');
  }
}

function sha256Of(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function now(): string {
  return new Date().toISOString();
}

function badType(type: string): StreamplugError {
  return new StreamplugError('E_BAD_REQUEST', `plugin type "${type}" is unknown; expected sources, sinks or functions`, { type });
}

function asError(e: unknown): StreamplugError {
  if (isStreamplugError(e)) return e;
  const code = (e as { code?: unknown })?.code;
  const message = e instanceof Error ? e.message : String(e);
  if (typeof code === 'string' && /^E_[A-Z0-9_]+$/.test(code)) return new StreamplugError(code as never, message);
  return new StreamplugError('E_INTERNAL', message);
}
