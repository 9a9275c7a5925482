/**
 * The operator's host settings, `<data>/etc/host.json`. Today: which isolation a plugin gets when
 * its install does not say, e.g. `{"isolation": {"default": "in-process", "unsigned": "process"}}`
 * runs every plugin without a trusted signature in a worker process of its own.
 */
import fs from 'node:fs';
import { StreamplugError } from '../errors.js';
import type { Isolation } from '../plugins/types.js';

export interface HostConfig {
  isolation: { default: Isolation; unsigned: Isolation };
  /** How long dlopen + constructors, then init, may each take (ms). */
  loadTimeoutMs?: number;
}

const MODES: readonly string[] = ['in-process', 'process'];

function mode(v: unknown, where: string, file: string, fallback: Isolation): Isolation {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !MODES.includes(v)) {
    throw new StreamplugError('E_BAD_REQUEST', `${file}: ${where} is ${JSON.stringify(v)}, expected "in-process" or "process"; fix the file and restart`, { file });
  }
  return v as Isolation;
}

/** Reads `file`; a missing file means the defaults (everything in-process). Throws on a malformed one. */
export function readHostConfig(file: string): HostConfig {
  let raw: unknown = {};
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new StreamplugError('E_BAD_REQUEST', `${file} is not valid JSON (${(e as Error).message}); fix the file and restart`, { file });
    }
  }
  const o = (raw ?? {}) as { isolation?: { default?: unknown; unsigned?: unknown }; loadTimeoutMs?: unknown };
  const def = mode(o.isolation?.default, 'isolation.default', file, 'in-process');
  const timeout = o.loadTimeoutMs;
  if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1)) {
    throw new StreamplugError('E_BAD_REQUEST', `${file}: loadTimeoutMs is ${JSON.stringify(timeout)}, expected a positive integer (ms)`, { file });
  }
  return {
    isolation: { default: def, unsigned: mode(o.isolation?.unsigned, 'isolation.unsigned', file, def) },
    ...(timeout !== undefined ? { loadTimeoutMs: timeout as number } : {}),
  };
}

/** Parses an `isolation` value from a request (JSON body, multipart field, CLI flag). */
export function parseIsolation(v: unknown): Isolation | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || !MODES.includes(v)) {
    throw new StreamplugError('E_BAD_REQUEST', `"isolation" is ${JSON.stringify(v)}; expected "in-process" (the default) or "process"`, { isolation: v });
  }
  return v as Isolation;
}
