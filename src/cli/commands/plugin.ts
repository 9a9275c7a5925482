import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { StreamplugError, isStreamplugError } from '../../errors.js';
import { runningHost, acquireLock, releaseLock } from '../../host/lock.js';
import { dataLayout, ensureLayout, isPluginType, PLUGIN_TYPES, type PluginType } from '../../manager/layout.js';
import { PluginManager } from '../../manager/manager.js';
import type { ProgressEvent } from '../../manager/types.js';
import { openCrashJournal } from '../../plugins/journal.js';
import { parseIsolation } from '../../manager/host-config.js';
import { PluginRegistry } from '../../plugins/registry.js';
import { authHeaders } from '../credentials.js';
import { readSecurityConfig } from '../../host/security-config.js';

/** Exit codes shared by these commands: 0 ok, 1 refused, 2 usage. */
export function fail(e: unknown): never {
  if (isStreamplugError(e)) {
    process.stderr.write(`streamplug: ${e.code}: ${e.message}\n`);
    process.exit(e.code === 'E_USAGE' ? 2 : 1);
  }
  process.stderr.write(`streamplug: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
}

export function usage(message: string): never {
  fail(new StreamplugError('E_USAGE', message));
}

/** Progress on stderr, only on a terminal or when asked: a rewritten line on a TTY, a line per step otherwise. */
export function progressPrinter(enabled: boolean): ((p: ProgressEvent) => void) | undefined {
  if (!enabled) return undefined;
  const tty = process.stderr.isTTY;
  let last = '';
  let lastAt = 0;
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  return (p) => {
    const text =
      p.phase === 'download'
        ? `downloading ${mib(p.bytes)}${p.total ? ` / ${mib(p.total)}` : ''}`
        : `unpacking ${p.entries}/${p.totalEntries} entries, ${mib(p.bytes)}`;
    const t = Date.now();
    if (text === last || (!tty && t - lastAt < 500 && !(p.phase === 'unpack' && p.entries === p.totalEntries))) return;
    last = text;
    lastAt = t;
    process.stderr.write(tty ? `\r\x1b[K${text}` : `${text}\n`);
  };
}

function endProgress(enabled: boolean): void {
  if (enabled && process.stderr.isTTY) process.stderr.write('\n');
}

function parseType(t: string): PluginType {
  if (!isPluginType(t)) usage(`plugin type "${t}" is unknown; expected sources, sinks or functions`);
  return t;
}

function parseFunctions(s?: string): string[] | undefined {
  return s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined;
}

interface Common {
  data?: string;
  host?: string;
  json?: boolean;
  token?: string;
}

// ------------------------------------------------------------------ running host (REST)

/** A REST call to a running host, with the token found by cliToken (see ../credentials.ts). */
async function http(o: Common, method: string, route: string, init: { json?: unknown; body?: BodyInit; headers?: Record<string, string> } = {}) {
  const base = o.host!;
  const url = new URL(route, base.endsWith('/') ? base : `${base}/`);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { ...authHeaders(o), ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) },
      body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
      ...(init.body ? { duplex: 'half' } : {}),
    } as RequestInit);
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    throw new StreamplugError('E_FETCH', `cannot reach the host at ${base}: ${cause}; is \`streamplug start\` running there?`);
  }
  const text = await res.text();
  if (!res.ok) {
    let body: { error?: string; message?: string } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // not JSON
    }
    const code = (body.error && /^E_/.test(body.error) ? body.error : 'E_BAD_REQUEST') as 'E_BAD_REQUEST';
    throw new StreamplugError(code, body.message ?? `HTTP ${res.status}: ${text}`);
  }
  return text;
}

function isUrl(s: string): boolean {
  return /^(https?|file):\/\//i.test(s);
}

async function remoteInstall(base: Common, method: 'POST' | 'PUT', type: PluginType, name: string, zip: string, o: InstallOpts): Promise<string> {
  const route = method === 'POST' ? `plugins/${type}` : `plugins/${type}/${name}`;
  if (isUrl(zip)) {
    return http(base, method, route, { json: { name, file: zip, functions: parseFunctions(o.functions), sha256: o.sha256, isolation: o.isolation, ...(o.force ? { force: true } : {}) } });
  }
  // A local zip is uploaded (the host may run elsewhere), streaming, as application/zip.
  const st = fs.statSync(zip, { throwIfNoEntry: false });
  if (!st?.isFile()) throw new StreamplugError('E_NOT_FOUND_FILE', `zip ${zip} does not exist; expected a readable zip file`);
  const q = new URLSearchParams({ name });
  if (o.sha256) q.set('sha256', o.sha256);
  if (o.functions) q.set('functions', o.functions);
  if (o.force) q.set('force', 'true');
  if (o.isolation) q.set('isolation', o.isolation);
  const show = progressPrinter(!!o.progress || process.stderr.isTTY);
  let sent = 0;
  const stream = fs.createReadStream(zip);
  stream.on('data', (c) => {
    sent += c.length;
    show?.({ phase: 'download', bytes: sent, total: st.size });
  });
  const { Readable } = await import('node:stream');
  try {
    return await http(base, method, `${route}?${q}`, {
      body: Readable.toWeb(stream) as unknown as BodyInit,
      headers: { 'content-type': 'application/zip', 'content-length': String(st.size) },
    });
  } finally {
    endProgress(!!show);
  }
}

// ------------------------------------------------------------------ data directory (direct)

/** Opens the data directory as a host would (lock, registry, startup scan), runs fn, releases it. */
async function withDirect<T>(dataDir: string, fn: (m: PluginManager) => Promise<T>): Promise<T> {
  const layout = dataLayout(dataDir);
  const other = runningHost(layout.lockFile);
  if (other) {
    throw new StreamplugError(
      'E_HOST_RUNNING',
      `a host (pid ${other.pid}) runs on ${layout.root}; use --host ${other.url ?? 'URL'} to go through it`,
      { url: other.url },
    );
  }
  ensureLayout(layout);
  acquireLock(layout.lockFile);
  const registry = new PluginRegistry({ onLog: () => undefined });
  try {
    // the same explicit setting the host reads at start (etc/security.json), never inferred from key files
    const requireSignatures = readSecurityConfig(dataDir).requireSignatures ?? false;
    const manager = new PluginManager({ dataDir, registry, requireSignatures, allowPrivateUrls: process.env.STREAMPLUG_ALLOW_PRIVATE_URLS === '1' });
    // Like a host: what the last run's journal blames is quarantined before anything loads.
    const journal = openCrashJournal(layout.crashJournal, (m) => process.stderr.write(`warning: ${m}\n`));
    const report = await manager.start({ journal });
    for (const q of report.quarantined) process.stderr.write(`warning: ${q.type}/${q.name} is quarantined: ${q.crash.message}\n`);
    for (const f of report.failed) process.stderr.write(`warning: ${f.type}/${f.name} does not load: ${f.code} ${f.message}\n`);
    return await fn(manager);
  } finally {
    try {
      registry.unloadAll();
    } finally {
      releaseLock(layout.lockFile);
    }
  }
}

interface InstallOpts extends Common {
  force?: boolean;
  isolation?: string;
  functions?: string;
  sha256?: string;
  progress?: boolean;
}

function dataDirOf(o: Common): string {
  return path.resolve(o.data ?? process.env.STREAMPLUG_DATA ?? 'data');
}

function print(o: Common, value: unknown, human: () => string): void {
  process.stdout.write(o.json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n');
}

export function register(program: Command): void {
  const plugin = program
    .command('plugin')
    .description('list, describe, install, update, remove and check plugins, on a data directory or a running host');

  const common = (c: Command) =>
    c
      .option('--data <dir>', 'data directory to work on directly (default $STREAMPLUG_DATA or ./data)')
      .option('--host <url>', 'a running host to go through instead, e.g. http://127.0.0.1:9081')
      .option('--token <token>', 'API token for --host (default $STREAMPLUG_TOKEN, else <data>/etc/api-token)')
      .option('--json', 'print JSON');

  common(plugin.command('list').argument('[type]', 'sources, sinks or functions (default: all)').description('list installed plugins'))
    .action(async (type: string | undefined, o: Common) => {
      try {
        const types = type ? [parseType(type)] : [...PLUGIN_TYPES];
        const out: Record<string, string[]> = {};
        if (o.host) for (const t of types) out[t] = JSON.parse(await http(o, 'GET', `plugins/${t}`)) as string[];
        else await withDirect(dataDirOf(o), async (m) => types.forEach((t) => (out[t] = m.list(t))));
        print(o, type ? out[types[0]] : out, () => types.map((t) => `${t}: ${out[t].join(', ') || '(none)'}`).join('\n'));
      } catch (e) {
        fail(e);
      }
    });

  common(
    plugin.command('describe').argument('<type>').argument('<name>').description('show version, file, build, check results, load state, last error'),
  ).action(async (type: string, name: string, o: Common) => {
    try {
      const t = parseType(type);
      const d = o.host
        ? (JSON.parse(await http(o, 'GET', `plugins/${t}/${encodeURIComponent(name)}`)) as Record<string, unknown>)
        : await withDirect(dataDirOf(o), async (m) => m.describe(t, name) as unknown as Record<string, unknown>);
      print(o, d, () => JSON.stringify(d, null, 2));
    } catch (e) {
      fail(e);
    }
  });

  for (const verb of ['install', 'update'] as const) {
    common(
      plugin
        .command(verb)
        .argument('<type>', 'sources, sinks or functions')
        .argument('<name>', 'plugin name (^[A-Za-z0-9_-]+$)')
        .argument('<zip>', 'zip path, file:// or http(s):// URL')
        .option('--functions <list>', 'comma-separated functions the plugin must provide')
        .option('--sha256 <hex>', 'refuse the zip unless its sha256 is this')
        .option('--progress', 'show download/unpack progress on stderr even when not a terminal')
        .option('--force', 'update: accept an older version (a downgrade)')
        .option('--isolation <mode>', '"in-process" (default) or "process": run the plugin in a worker process of its own')
        .description(verb === 'install' ? 'install a plugin zip (refused if the name exists)' : 'replace an installed plugin with a new zip'),
    ).action(async (type: string, name: string, zip: string, o: InstallOpts) => {
      try {
        const t = parseType(type);
        let isolation;
        try {
          isolation = parseIsolation(o.isolation);
        } catch (e) {
          usage((e as Error).message);
        }
        let message: string;
        if (o.host) {
          message = await remoteInstall(o, verb === 'install' ? 'POST' : 'PUT', t, name, zip, o);
        } else {
          const show = progressPrinter(!!o.progress || process.stderr.isTTY);
          try {
            message = await withDirect(dataDirOf(o), async (m) => {
              const req = { type: t, name, source: { file: zip }, functions: parseFunctions(o.functions), sha256: o.sha256, isolation, onProgress: show, force: o.force, actor: 'cli' };
              return (verb === 'install' ? await m.install(req) : await m.update(req)).message;
            });
          } finally {
            endProgress(!!show);
          }
        }
        print(o, { message }, () => message);
      } catch (e) {
        fail(e);
      }
    });
  }

  common(
    plugin
      .command('enable')
      .argument('<type>', 'sources, sinks or functions')
      .argument('<name>')
      .description('lift the quarantine of a plugin that crashed the host, and load it'),
  ).action(async (type: string, name: string, o: Common) => {
    try {
      const t = parseType(type);
      let message: string;
      let state = 'loaded';
      if (o.host) {
        message = await http(o, 'POST', `plugins/${t}/${encodeURIComponent(name)}/enable`);
      } else {
        const r = await withDirect(dataDirOf(o), (m) => m.enable(t, name));
        message = r.message;
        state = r.state;
      }
      print(o, { message }, () => message);
      if (state !== 'loaded' || /cannot load/.test(message)) process.exitCode = 1;
    } catch (e) {
      fail(e);
    }
  });

  common(
    plugin
      .command('remove')
      .argument('<type>')
      .argument('<name>')
      .option('--force', 'remove even when rules use it')
      .description('delete an installed plugin'),
  ).action(async (type: string, name: string, o: Common & { force?: boolean }) => {
    try {
      const t = parseType(type);
      const message = o.host
        ? await http(o, 'DELETE', `plugins/${t}/${encodeURIComponent(name)}${o.force ? '?force=true' : ''}`)
        : (await withDirect(dataDirOf(o), (m) => m.remove(t, name, { force: o.force }))).message;
      print(o, { message }, () => message);
    } catch (e) {
      fail(e);
    }
  });

  plugin
    .command('check')
    .argument('<zip>', 'plugin zip to check')
    // No default: install needs the type, and so does a check that claims to be install's.
    .addOption(new Option('--type <type>', 'plugin type (sources, sinks or functions), as install would be given').choices(['sources', 'sinks', 'functions']).makeOptionMandatory())
    .option('--name <name>', 'install name (default: the library name)')
    .option('--data <dir>', 'data directory whose etc/trusted-keys apply (default: none)')
    .option('--progress', 'show unpack progress')
    .option('--json', 'print JSON')
    .description('unpack and check a plugin zip exactly as install would, without installing it')
    .action(async (zip: string, o: { type: string; name?: string; data?: string; json?: boolean; progress?: boolean }) => {
      try {
        const r = await inspectZip(zip, parseType(o.type), o.name, o.data, progressPrinter(!!o.progress || process.stderr.isTTY));
        print(o, r, () =>
          [
            `${zip}: installable as ${o.type} plugin ${r.name}`,
            `  library ${r.libraryEntry} (${r.flavour}, sha256 ${r.sha256})`,
            ...r.report.rows.map((row) => `  ${row.status.padEnd(8)} ${row.check}: ${row.message}`),
            `  signature: ${r.signedBy ? `verified, key ${r.signedBy}` : r.signature ? `present (key ${r.signature.key}), no trusted keys configured` : 'none'}`,
          ].join('\n'),
        );
      } catch (e) {
        fail(e);
      }
    });
}

/** Used by `plugin check` and `pack`: a throwaway data directory unless one is given (for its trusted keys). */
export async function inspectZip(zip: string, type: PluginType, name: string | undefined, dataDir?: string, onProgress?: (p: ProgressEvent) => void) {
  const scratch = dataDir ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-check-'));
  try {
    const registry = { load: () => { throw new Error('inspect never loads'); }, unload: () => undefined, list: () => [], get: () => undefined, getFunction: () => undefined, listFunctions: () => [] };
    const m = new PluginManager({ dataDir: dataDir ?? scratch!, registry });
    return await m.inspect(zip, { type, name, onProgress });
  } finally {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }
}
