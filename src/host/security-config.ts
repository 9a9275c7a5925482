import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { StreamplugError } from '../errors.js';
import type { AuthMode } from '../api/security/index.js';

/**
 * The host's security settings: flags over `<data>/etc/security.json` over defaults. Every setting
 * is explicit; none is inferred from which files happen to exist.
 */
export interface SecuritySettings {
  auth: AuthMode;
  allowedOrigins: string[];
  allowedHosts: string[];
  /** Folders REST clients may name local zips in; undefined = anywhere (auth on only). */
  fileRoots?: string[];
  requireSignatures: boolean;
}

export function securityConfigFile(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'etc', 'security.json');
}

function strings(v: unknown, key: string, file: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new StreamplugError('E_USAGE', `${file}: "${key}" must be an array of strings`);
  }
  return v as string[];
}

export function readSecurityConfig(dataDir: string): Partial<SecuritySettings> {
  const file = securityConfigFile(dataDir);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not an object');
  } catch (e) {
    throw new StreamplugError('E_USAGE', `${file} is not a JSON object (${(e as Error).message}); expected e.g. {"requireSignatures": true}`);
  }
  const out: Partial<SecuritySettings> = {};
  if (raw.auth !== undefined) {
    if (raw.auth !== 'token' && raw.auth !== 'jwt' && raw.auth !== 'none') throw new StreamplugError('E_USAGE', `${file}: "auth" must be "token", "jwt" or "none"`);
    out.auth = raw.auth;
  }
  if (raw.requireSignatures !== undefined) {
    if (typeof raw.requireSignatures !== 'boolean') throw new StreamplugError('E_USAGE', `${file}: "requireSignatures" must be true or false`);
    out.requireSignatures = raw.requireSignatures;
  }
  out.allowedOrigins = strings(raw.allowedOrigins, 'allowedOrigins', file);
  out.allowedHosts = strings(raw.allowedHosts, 'allowedHosts', file);
  out.fileRoots = strings(raw.fileRoots, 'fileRoots', file);
  for (const k of Object.keys(out) as (keyof SecuritySettings)[]) if (out[k] === undefined) delete out[k];
  return out;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  return h === '::1';
}

/**
 * Without auth, anyone who can reach the port can run native code as the host's user. On loopback
 * that is eKuiper's behaviour; on any other address it needs the operator to say so (`iKnow`).
 */
export function assertAuthPolicy(auth: AuthMode, host: string, socket: boolean, iKnow: boolean): void {
  if (auth !== 'none' || socket || isLoopback(host) || iKnow) return;
  throw new StreamplugError(
    'E_USAGE',
    `--no-auth with --host ${host} lets anyone who reaches that address install native code that runs as this user; ` +
      'keep auth on, listen on 127.0.0.1 or a --socket, or add --i-know if this network really is trusted',
  );
}
