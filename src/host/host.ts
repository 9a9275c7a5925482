import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildServer } from '../api/server.js';
import { PluginRegistry } from '../plugins/registry.js';
import { reapLeftoverWorkers } from '../plugins/isolated/index.js';
import { openCrashJournal } from '../plugins/journal.js';
import { PluginManager, type StartupReport } from '../manager/manager.js';
import { dataLayout, ensureLayout } from '../manager/layout.js';
import type { ZipLimits } from '../manager/limits.js';
import type { PluginUsage } from '../manager/types.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../connectors/index.js';
import { createRuleService, type RuleService } from '../rules/index.js';
import { openStore, type Store } from '../store/index.js';
import { acquireLock, releaseLock, writeLock } from './lock.js';
import { apiTokenFile, fileRootsFor, type AuthMode, type HttpTimeouts } from '../api/security/index.js';
import { assertAuthPolicy, readSecurityConfig, type SecuritySettings } from './security-config.js';
import { listenOnSocket } from './socket.js';
import { createLogger } from './logger.js';

export interface HostOptions {
  /** Default ./data (STREAMPLUG_DATA). */
  dataDir?: string;
  /** Default 9081 (STREAMPLUG_PORT); 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  logger?: Logger;
  limits?: Partial<ZipLimits>;
  trustedKeyFiles?: string[];
  allowPrivateUrls?: boolean;
  usage?: PluginUsage;
  /** Runs after the data layout exists and before plugins load (the demo copies samples in here). */
  beforeStart?: (dataDir: string) => void;
  /**
   * MQTT for the built-in mqtt source/sink. `url`: an external broker, nothing embedded. Otherwise
   * an embedded broker (aedes) on `host`:`port` (default 127.0.0.1, port 0 = a free one; the CLI
   * defaults to 1883). `false`: no broker at all.
   */
  mqtt?: { url?: string; host?: string; port?: number } | false;
  /** REST authentication: token (default), jwt or none (--no-auth). Also settable in etc/security.json. */
  auth?: AuthMode;
  /** --no-auth on a non-loopback address is refused unless this is set (--i-know). */
  iKnow?: boolean;
  /** Origins (scheme://host:port) allowed to call the API; default none. */
  allowedOrigins?: string[];
  /** Host names the API answers to besides IP literals and localhost. */
  allowedHosts?: string[];
  /** Folders REST clients may name local zips in (default: anywhere with auth, nowhere without). */
  fileRoots?: string[];
  /** Refuse plugins not signed by a trusted key (explicit; off by default). */
  requireSignatures?: boolean;
  /** Listen on this unix socket (mode 0600) instead of TCP. */
  socketPath?: string;
  /** HTTP server timeouts (header, whole request, idle). */
  timeouts?: Partial<HttpTimeouts>;
}

export interface Host {
  url: string;
  dataDir: string;
  registry: PluginRegistry;
  manager: PluginManager;
  server: FastifyInstance;
  startup: StartupReport;
  rules: RuleService;
  store: Store;
  /** The MQTT broker rules use by default (embedded or external), if any. */
  mqttUrl?: string;
  logger: Logger;
  /** The security settings in force (flags over etc/security.json over defaults). */
  security: SecuritySettings;
  close(): Promise<void>;
}

/** Resolves flags over environment over defaults. */
export function hostDefaults(opts: HostOptions = {}): { dataDir: string; port: number; host: string } {
  const port = opts.port ?? (process.env.STREAMPLUG_PORT !== undefined ? Number(process.env.STREAMPLUG_PORT) : 9081);
  return {
    dataDir: path.resolve(opts.dataDir ?? process.env.STREAMPLUG_DATA ?? 'data'),
    port,
    host: opts.host ?? process.env.STREAMPLUG_HOST ?? '127.0.0.1',
  };
}

/**
 * Starts a host on one data directory: layout, lock, registry, the manager's startup scan (a broken
 * plugin is logged and skipped, never fatal), then the REST API. `GET /ping` answers once ready.
 */
export async function startHost(opts: HostOptions = {}): Promise<Host> {
  const { dataDir, port, host } = hostDefaults(opts);
  const logger = opts.logger ?? createLogger();
  const layout = dataLayout(dataDir);
  const fromFile = readSecurityConfig(dataDir);
  const security: SecuritySettings = {
    auth: opts.auth ?? fromFile.auth ?? 'token',
    allowedOrigins: opts.allowedOrigins ?? fromFile.allowedOrigins ?? [],
    allowedHosts: opts.allowedHosts ?? fromFile.allowedHosts ?? [],
    fileRoots: opts.fileRoots ?? fromFile.fileRoots,
    requireSignatures: opts.requireSignatures ?? fromFile.requireSignatures ?? false,
  };
  assertAuthPolicy(security.auth, host, !!opts.socketPath, !!opts.iKnow);
  ensureLayout(layout);
  acquireLock(layout.lockFile);
  const pluginLog = logger.child({ component: 'plugin' });
  // Isolated workers carry the data directory as their tag: one held by no live host of this data
  // directory (the lock says there is at most one: us) is a leftover of a host that died.
  const leftovers = reapLeftoverWorkers(dataDir);
  if (leftovers.length) logger.warn({ pids: leftovers }, `killed ${leftovers.length} isolated worker(s) left by an earlier host of ${dataDir}`);
  let manager: PluginManager | undefined;
  const registry = new PluginRegistry({
    onCrash: (e) => manager?.handleCrash(e),
    onLog: (line) => {
      const level = line.level >= 50 ? 'error' : line.level >= 40 ? 'warn' : line.level >= 30 ? 'info' : 'debug';
      pluginLog[level]({ plugin: line.plugin, rule: line.rule || undefined }, line.message);
    },
    isolation: { tag: dataDir, report: (line) => pluginLog.error(line) },
  });
  let server: FastifyInstance | undefined;
  let store: Store | undefined;
  let broker: EmbeddedBroker | undefined;
  let rules: RuleService | undefined;
  try {
    opts.beforeStart?.(dataDir);
    // After the lock (one host per journal), before any plugin code runs.
    const journal = openCrashJournal(layout.crashJournal, (m) => logger.error({ code: 'E_JOURNAL' }, m));
    const mgr = (manager = new PluginManager({
      dataDir,
      registry,
      usage: opts.usage,
      limits: opts.limits,
      trustedKeyFiles: opts.trustedKeyFiles,
      allowPrivateUrls: opts.allowPrivateUrls,
      requireSignatures: security.requireSignatures,
      log: logger.child({ component: 'manager' }),
    }));
    const startup = await mgr.start({ journal });
    store = openStore(dataDir);
    let mqttUrl: string | undefined;
    if (opts.mqtt !== false) {
      if (opts.mqtt?.url) mqttUrl = opts.mqtt.url;
      else {
        broker = await startEmbeddedBroker({ host: opts.mqtt?.host ?? '127.0.0.1', port: opts.mqtt?.port ?? 0 });
        mqttUrl = broker.url;
        logger.info({ url: broker.url }, `embedded MQTT broker on ${broker.url}`);
      }
    }
    rules = createRuleService({
      dataDir,
      store,
      functions: registry,
      broker: mqttUrl ? { url: mqttUrl } : undefined,
      log: logger.child({ component: 'rules' }),
      // A deleted or changed rule may have been the last user of a plugin with a pending update.
      onPluginUseChanged: opts.usage ? undefined : () => mgr.applyPendingUpdates(),
    });
    if (!opts.usage) mgr.setUsage(rules);
    // Rules that use a quarantined plugin stay stopped, saying why; enabling it starts them.
    rules.setPluginGate((plugin) => mgr.quarantineReason(plugin));
    const rulesRef = rules;
    mgr.onEnabled = (loadedName) => rulesRef.resumeHeld(loadedName);
    const restored = await rules.restore();
    logger.info(restored, 'streams and rules restored');
    if (security.auth === 'none') {
      logger.warn(
        { auth: 'none' },
        'authentication is OFF (--no-auth): anyone who can reach the API can install native code that runs as this user',
      );
    }
    server = await buildServer({
      services: { dataDir, manager: mgr, registry, rules, fileRoots: fileRootsFor(security.auth !== 'none', security.fileRoots) },
      logger,
      security: { auth: security.auth, allowedOrigins: security.allowedOrigins, allowedHosts: security.allowedHosts, boundHost: host },
      timeouts: opts.timeouts,
    });
    let url: string;
    if (opts.socketPath) {
      url = `unix:${await listenOnSocket(server, opts.socketPath)}`;
    } else {
      await server.listen({ port, host });
      const addr = server.server.address();
      const actualPort = typeof addr === 'object' && addr ? addr.port : port;
      url = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
    }
    writeLock(layout.lockFile, { pid: process.pid, url, startedAt: new Date().toISOString() });
    logger.info(
      { url, dataDir, loaded: startup.loaded.length, failed: startup.failed.length, auth: security.auth, requireSignatures: security.requireSignatures },
      `streamplug listening on ${url} (auth ${security.auth}${security.auth === 'token' ? `, token in ${apiTokenFile(dataDir)}` : ''}; requireSignatures ${security.requireSignatures})`,
    );
    let closed = false;
    const srv = server;
    const [st, br, rs] = [store, broker, rules];
    return {
      url,
      dataDir,
      registry,
      manager: mgr,
      server: srv,
      startup,
      rules: rs,
      store: st,
      mqttUrl,
      logger,
      security,
      async close() {
        if (closed) return;
        closed = true;
        await srv.close();
        // Rules stop (sources first, sinks flushed) before the broker and the plugins they use go.
        await rs.close();
        st.close();
        await br?.close();
        registry.unloadAll();
        releaseLock(layout.lockFile);
        logger.info({ dataDir }, 'streamplug stopped');
      },
    };
  } catch (e) {
    await server?.close().catch(() => undefined);
    await rules?.close().catch(() => undefined);
    store?.close();
    await broker?.close().catch(() => undefined);
    try {
      registry.unloadAll();
    } catch {
      // best effort on a failed start
    }
    releaseLock(layout.lockFile);
    throw e;
  }
}

