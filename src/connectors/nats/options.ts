/**
 * NATS client options from connector properties (shared by source and sink). TLS files and
 * credentials are passed through to the official client as they are:
 *   server             nats://host:4222, or several comma-separated (a cluster: the client fails over)
 *   user / password, token, credsFile (a .creds file: JWT + NKey seed)
 *   rootCaPath, certificationPath, privateKeyPath (eKuiper's names; caFile/certFile/keyFile too), tls
 *   name               the connection name the server shows
 */
import { readFileSync } from 'node:fs';
import { credsAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { PropReader } from '../props.js';
import type { ConnectorContext } from '../types.js';

export function natsConnectionOptions(p: PropReader, ctx: ConnectorContext, role: 'source' | 'sink'): NodeConnectionOptions {
  const server = p.string('server', 'nats://127.0.0.1:4222');
  const servers = server.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of servers) {
    let ok = false;
    try {
      ok = ['nats:', 'tls:', 'nats+tls:'].includes(new URL(s).protocol);
    } catch {
      /* not a URL */
    }
    if (!ok) throw p.fail('server', server, 'nats://host:port (or tls://host:port), several comma-separated');
  }
  const opts: NodeConnectionOptions = {
    servers,
    name: p.string('name', `streamplug_${role}_${(ctx.ruleId ?? 'x').replace(/[^\w-]/g, '_').slice(0, 32)}`),
    // Keep trying for ever: a cluster node going away is normal; the status shows "reconnecting".
    maxReconnectAttempts: -1,
    reconnectTimeWait: p.count('reconnectWait', 500),
    timeout: p.count('connectTimeout', 5000),
    waitOnFirstConnect: true,
  };
  const user = p.string('user') ?? p.string('username');
  if (user !== undefined) {
    opts.user = user;
    opts.pass = p.string('password');
  }
  const token = p.string('token');
  if (token !== undefined) opts.token = token;
  const creds = p.string('credsFile');
  if (creds !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(creds);
    } catch (e) {
      throw p.fail('credsFile', creds, `a readable .creds file (${(e as Error).message})`);
    }
    opts.authenticator = credsAuthenticator(bytes);
  }
  const caFile = p.string('rootCaPath') ?? p.string('caFile');
  const certFile = p.string('certificationPath') ?? p.string('certFile');
  const keyFile = p.string('privateKeyPath') ?? p.string('keyFile');
  for (const [name, f] of [['rootCaPath', caFile], ['certificationPath', certFile], ['privateKeyPath', keyFile]] as const) {
    if (f === undefined) continue;
    try {
      readFileSync(f);
    } catch (e) {
      throw p.fail(name, f, `a readable PEM file (${(e as Error).message})`);
    }
  }
  if (caFile || certFile || keyFile || p.bool('tls', false) || servers.some((s) => s.startsWith('tls:'))) {
    opts.tls = {
      ...(caFile ? { caFile } : {}),
      ...(certFile ? { certFile } : {}),
      ...(keyFile ? { keyFile } : {}),
    };
  }
  return opts;
}

/** Milliseconds → the nanoseconds JetStream configs take. */
export function msToNanos(ms: number): number {
  return Math.round(ms * 1_000_000);
}
