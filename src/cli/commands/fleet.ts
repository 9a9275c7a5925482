/**
 * `streamplug fleet apply --hosts URL,URL,… ruleset.json`: one eKuiper rule set (GET /data/export's
 * format) applied to every host, with the plugins it names, and a report per host.
 *
 * Per host, in parallel: each plugin of `nativePlugins` that the host lacks is installed first — a
 * zip on this machine (a path, relative to the rule set file, or a file:// URL) is uploaded, an
 * http(s) URL is handed to the host to download — then the set goes to POST /data/import (the host
 * then holds exactly the set; --partial keeps what the set does not name). Items equal to what a
 * host has are left alone, so applying the same file again restarts nothing.
 * Exit 0 when every host took the whole set, 1 when any host refused something or was unreachable,
 * 2 for usage errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { StreamplugError, isStreamplugError } from '../../errors.js';
import { parseRuleSet, pluginRefs, type ImportReport, type PluginRef, type RuleSet } from '../../rules/ruleset.js';
import { authHeaders } from '../credentials.js';
import { fail, usage } from './plugin.js';

interface FleetOpts {
  hosts?: string;
  partial?: boolean;
  json?: boolean;
  timeout?: string;
  token?: string;
  data?: string;
}

export interface HostResult {
  host: string;
  ok: boolean;
  plugins: { plugin: string; outcome: 'present' | 'installed' | 'failed'; message?: string }[];
  applied: ImportReport['applied'];
  failed: ImportReport['failed'];
  /** Set when the host could not be reached or refused the set as a whole. */
  error?: { code: string; message: string };
}

/** How every call reaches a host: its time limit and the credentials sent (the same token for all hosts). */
interface Transport {
  timeoutMs: number;
  auth?: Record<string, string>;
}

async function call(base: string, method: string, route: string, body: BodyInit | undefined, headers: Record<string, string>, t: Transport) {
  const url = new URL(route, base.endsWith('/') ? base : `${base}/`);
  let res: Response;
  try {
    res = await fetch(url, { method, body, headers: { ...t.auth, ...headers }, signal: AbortSignal.timeout(t.timeoutMs) });
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    throw new StreamplugError('E_FETCH', `cannot reach ${base}: ${cause}; is \`streamplug start\` running there?`, { url: base });
  }
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

function hostError(r: { status: number; text: string; json: any }, what: string): StreamplugError {
  const code = typeof r.json?.error === 'string' && /^E_[A-Z0-9_]+$/.test(r.json.error) ? r.json.error : 'E_BAD_REQUEST';
  return new StreamplugError(code, `${what}: HTTP ${r.status}: ${r.json?.message ?? r.text}`);
}

/** A zip on this machine: a path (relative to the rule set's folder) or a file:// URL; undefined for http(s). */
function localZip(file: string, baseDir: string): string | undefined {
  if (/^https?:\/\//i.test(file)) return undefined;
  if (file.startsWith('file:')) return fileURLToPath(file);
  return path.resolve(baseDir, file);
}

async function ensurePlugin(base: string, ref: PluginRef, baseDir: string, t: Transport): Promise<HostResult['plugins'][number]> {
  const key = `${ref.type}_${ref.name}`;
  const have = await call(base, 'GET', `plugins/${ref.type}/${encodeURIComponent(ref.name)}`, undefined, {}, t);
  if (have.status === 200) return { plugin: key, outcome: 'present' };
  if (have.status !== 404) throw hostError(have, `GET /plugins/${ref.type}/${ref.name}`);
  const zip = localZip(ref.file, baseDir);
  let r;
  if (zip === undefined) {
    r = await call(base, 'POST', `plugins/${ref.type}`, JSON.stringify({ name: ref.name, file: ref.file, ...(ref.functions ? { functions: ref.functions } : {}) }), { 'content-type': 'application/json' }, t);
  } else {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(zip);
    } catch (e) {
      return { plugin: key, outcome: 'failed', message: `E_NOT_FOUND: the zip ${zip} named by nativePlugins.${key} cannot be read (${(e as Error).message})` };
    }
    const q = new URLSearchParams({ name: ref.name, ...(ref.functions ? { functions: ref.functions.join(',') } : {}) });
    r = await call(base, 'POST', `plugins/${ref.type}?${q}`, new Uint8Array(bytes), { 'content-type': 'application/zip' }, t);
  }
  if (r.status === 201 || r.status === 200) return { plugin: key, outcome: 'installed' };
  return { plugin: key, outcome: 'failed', message: `${r.json?.error ?? 'E_BAD_REQUEST'}: ${r.json?.message ?? r.text}` };
}

export async function applyToHost(base: string, set: RuleSet, baseDir: string, o: { partial?: boolean } & Transport): Promise<HostResult> {
  const result: HostResult = { host: base, ok: false, plugins: [], applied: [], failed: [] };
  try {
    const ping = await call(base, 'GET', 'ping', undefined, {}, o);
    if (ping.status !== 200) throw hostError(ping, 'GET /ping');
    for (const ref of pluginRefs(set)) result.plugins.push(await ensurePlugin(base, ref, baseDir, o));
    // The host sees the plugins installed above as present; one that failed is reported by both.
    const r = await call(base, 'POST', `data/import${o.partial ? '?partial=1' : ''}`, JSON.stringify({ content: JSON.stringify(set) }), { 'content-type': 'application/json' }, o);
    if (r.status !== 200 && r.json?.error !== 'E_IMPORT_INCOMPLETE') throw hostError(r, 'POST /data/import');
    result.applied = r.json?.applied ?? [];
    result.failed = r.json?.failed ?? [];
    result.ok = result.failed.length === 0 && result.plugins.every((p) => p.outcome !== 'failed');
  } catch (e) {
    result.error = isStreamplugError(e) ? { code: e.code, message: e.message } : { code: 'E_INTERNAL', message: (e as Error).message };
  }
  return result;
}

function summary(r: HostResult): string {
  if (r.error) return `${r.host}  FAILED  ${r.error.code}: ${r.error.message}`;
  const count = (xs: { outcome: string }[]) => {
    const m = new Map<string, number>();
    for (const x of xs) m.set(x.outcome, (m.get(x.outcome) ?? 0) + 1);
    return [...m].map(([k, n]) => `${n} ${k}`).join(', ') || 'none';
  };
  const lines = [`${r.host}  ${r.ok ? 'ok' : 'INCOMPLETE'}  plugins: ${count(r.plugins)}; streams: ${count(r.applied.filter((a) => a.section === 'streams'))}; rules: ${count(r.applied.filter((a) => a.section === 'rules'))}`];
  for (const p of r.plugins) if (p.outcome === 'failed') lines.push(`  plugin ${p.plugin}: ${p.message}`);
  for (const f of r.failed) lines.push(`  ${f.section}.${f.name}: ${f.code}: ${f.message}`);
  for (const a of r.applied) if (a.section === 'rules' && a.status === 'failed') lines.push(`  rules.${a.name}: created but failed to start (see streamplug rule status ${a.name} --host ${r.host})`);
  return lines.join('\n');
}

export function register(program: Command): void {
  const fleet = program.command('fleet').description('apply one rule set to many hosts');
  fleet
    .command('apply')
    .argument('<ruleset>', 'rule set JSON file (GET /data/export format; - for stdin)')
    .option('--hosts <urls>', 'comma-separated host URLs, e.g. http://10.0.0.5:9081,http://10.0.0.6:9081')
    .option('--partial', 'keep streams and rules the set does not name (default: each host holds exactly the set)')
    .option('--timeout <ms>', 'per request (default 60000)')
    .option('--token <token>', 'API token sent to every host (default $STREAMPLUG_TOKEN, else <data>/etc/api-token)')
    .option('--data <dir>', 'data directory whose etc/api-token to send (default $STREAMPLUG_DATA or ./data)')
    .option('--json', 'print the per-host results as JSON')
    .description('install the plugins a rule set names and import the set on every host; report per host')
    .action(async (file: string, o: FleetOpts) => {
      try {
        if (!o.hosts) usage('--hosts is missing: give the hosts as --hosts http://h1:9081,http://h2:9081');
        const hosts = o.hosts.split(',').map((h) => h.trim()).filter(Boolean);
        for (const h of hosts) {
          try {
            if (!/^https?:$/.test(new URL(h).protocol)) throw new Error('scheme');
          } catch {
            usage(`--hosts entry ${JSON.stringify(h)} is not an http(s) URL like http://127.0.0.1:9081`);
          }
        }
        if (hosts.length === 0) usage('--hosts lists no host');
        const timeoutMs = o.timeout === undefined ? 60_000 : Number(o.timeout);
        if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) usage(`--timeout ${o.timeout} is not a positive number of milliseconds`);
        let text: string;
        try {
          text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
        } catch (e) {
          usage(`cannot read the rule set ${file}: ${(e as Error).message}`);
        }
        const set = parseRuleSet(text); // refused here, before any host is touched
        pluginRefs(set);
        const baseDir = file === '-' ? process.cwd() : path.dirname(path.resolve(file));
        const results = await Promise.all(hosts.map((h) => applyToHost(h, set, baseDir, { partial: o.partial, timeoutMs, auth: authHeaders(o) })));
        process.stdout.write(`${o.json ? JSON.stringify(results, null, 2) : results.map(summary).join('\n')}\n`);
        const bad = results.filter((r) => !r.ok).length;
        if (bad) {
          process.stderr.write(`streamplug: E_FLEET_INCOMPLETE: ${bad} of ${hosts.length} host(s) did not take the whole rule set; see above, fix and apply again (applying is repeatable)\n`);
          process.exitCode = 1;
        }
      } catch (e) {
        fail(e);
      }
    });
}
