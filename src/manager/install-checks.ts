/**
 * The checks a plugin library must pass to be installed: one function, run by install, `pack`,
 * `plugin check` and `streamplug check`, so none of them can pass what another refuses.
 *   1. the static pre-load check (src/check): ELF, libraries, manifest, limits, contract minors;
 *   2. the install name against the manifest's name, and the name limits;
 *   3. the trial load in a child process (src/check/probe.ts): what the host's loader says;
 *   4. the declared type (sources / sinks / functions) against what the library provides.
 * The result is the check's report with these rows added; `loadable` and `error` cover them all.
 */
import { checkPluginFile } from '../check/index.js';
import { LIMITS } from '../check/contract.js';
import { probePluginFile, type ProbeResult } from '../check/probe.js';
import type { CheckReport, CheckRow } from '../check/types.js';
import { StreamplugError, type ErrorCode } from '../errors.js';
import { PLUGIN_NAME_RE, singular, type PluginType } from './layout.js';

export interface InstallCheckOptions {
  /** What the plugin is installed as; absent (`streamplug check` without --type): not compared. */
  type?: PluginType;
  /** The install name; absent: the manifest's. */
  name?: string;
  /** Run the trial load (default true). */
  probe?: boolean;
  /** The operator's loadTimeoutMs (etc/host.json), for the trial load's dlopen and init. */
  loadTimeoutMs?: number;
}

export interface InstallCheckReport extends CheckReport {
  /** What the trial load found the library to provide, when it ran. */
  provides?: { name: string; functions: string[]; sources: string[]; sinks: string[] };
}

/** A plugin name install accepts: the pattern and SP_MAX_NAME_LENGTH. */
export function pluginNameProblem(name: string): { code: ErrorCode; message: string } | undefined {
  if (Buffer.byteLength(name) > LIMITS.nameLength) {
    return {
      code: 'E_LIMIT',
      message: `plugin name "${name.slice(0, LIMITS.nameLength)}…" is ${Buffer.byteLength(name)} bytes; names are at most ${LIMITS.nameLength} bytes (SP_MAX_NAME_LENGTH in plugin.h): use a shorter name`,
    };
  }
  if (!PLUGIN_NAME_RE.test(name)) {
    return { code: 'E_ZIP_BAD_NAME', message: `plugin name "${name}" is invalid; expected letters, digits, "_" or "-" only (^[A-Za-z0-9_-]+$)` };
  }
  return undefined;
}

export async function runInstallChecks(file: string, opts: InstallCheckOptions = {}): Promise<InstallCheckReport> {
  const report: InstallCheckReport = checkPluginFile(file);
  const refuse = (check: string, code: ErrorCode, message: string, details: Record<string, unknown> = {}) => {
    const row: CheckRow = { check, status: 'refused', code, message };
    report.rows.push(row);
    report.loadable = false;
    report.error ??= new StreamplugError(code, message, { file, check, ...details });
  };
  if (!report.loadable) return report;

  const m = report.manifest;
  if (opts.name !== undefined) {
    const problem = pluginNameProblem(opts.name);
    if (problem) {
      refuse('name', problem.code, problem.message, { name: opts.name });
      return report;
    }
    if (m && m.name.toLowerCase() !== opts.name.toLowerCase()) {
      refuse('name', 'E_ZIP_BAD_NAME', `${file} declares plugin name "${m.name}" in its manifest but is installed as "${opts.name}"; expected the same name: install it as "${m.name}"`, {
        found: m.name,
        expected: opts.name,
      });
      return report;
    }
  }

  let probe: ProbeResult | undefined;
  if (opts.probe !== false) {
    probe = await probePluginFile(file, undefined, opts.loadTimeoutMs);
    if (probe.status === 'loaded') {
      report.rows.push({ check: 'trial-load', status: 'ok', message: `loaded in a child process as the host would: plugin ${probe.name}` });
      report.provides = { name: probe.name, functions: probe.functions, sources: probe.sources, sinks: probe.sinks };
    } else if (probe.status === 'refused') {
      refuse('trial-load', probe.code as ErrorCode, probe.message);
      return report;
    } else if (probe.status === 'crashed') {
      refuse('trial-load', 'E_LOAD_CRASHED', `${file}: ${probe.message}; the host would crash on it too: run the plugin under gdb or valgrind and fix its constructor, entry point or init`);
      return report;
    } else {
      report.rows.push({ check: 'trial-load', status: 'skipped', message: probe.message });
    }
  }

  if (opts.type !== undefined) {
    const provided = report.provides ?? fromManifest(report);
    if (provided) {
      const kind = singular(opts.type);
      const have = opts.type === 'functions' ? provided.functions : opts.type === 'sources' ? provided.sources : provided.sinks;
      if (have.length === 0) {
        const list = [...provided.functions.map((f) => `function:${f}`), ...provided.sources.map((s) => `source:${s}`), ...provided.sinks.map((s) => `sink:${s}`)];
        refuse('type', 'E_TYPE_MISMATCH', `${file} is installed as a ${kind} plugin but provides no ${kind}s (it provides ${list.join(', ') || 'nothing'}); install it as ${suggest(provided)}`, {
          found: list,
          expected: `at least one ${kind}`,
        });
        return report;
      }
      report.rows.push({ check: 'type', status: 'ok', message: `provides ${have.length} ${kind}${have.length > 1 ? 's' : ''}, as a ${kind} plugin must` });
    }
  }
  return report;
}

function fromManifest(report: CheckReport): InstallCheckReport['provides'] | undefined {
  const m = report.manifest;
  if (!m) return undefined;
  const of = (kind: string) => m.extensions.filter((e) => e.startsWith(`${kind}:`)).map((e) => e.slice(kind.length + 1));
  return { name: m.name, functions: of('function'), sources: of('source'), sinks: of('sink') };
}

function suggest(p: NonNullable<InstallCheckReport['provides']>): string {
  const types = [p.functions.length ? 'functions' : '', p.sources.length ? 'sources' : '', p.sinks.length ? 'sinks' : ''].filter(Boolean);
  return types.length ? `--type ${types.join(' or --type ')}` : 'nothing: it provides no extension';
}
