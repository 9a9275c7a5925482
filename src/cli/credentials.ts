import path from 'node:path';
import { readApiToken } from '../api/security/token.js';

export interface CredentialOpts {
  /** --token */
  token?: string;
  /** --data: the host's data directory, whose etc/api-token the CLI reads. */
  data?: string;
}

/**
 * The bearer token the CLI sends to a running host, found without the operator's help: --token,
 * then $STREAMPLUG_TOKEN, then `<data>/etc/api-token` of --data, $STREAMPLUG_DATA or ./data. The
 * owner of the data directory can read its token (0600); nobody else can.
 */
export function cliToken(o: CredentialOpts): string | undefined {
  if (o.token) return o.token;
  if (process.env.STREAMPLUG_TOKEN) return process.env.STREAMPLUG_TOKEN;
  return readApiToken(path.resolve(o.data ?? process.env.STREAMPLUG_DATA ?? 'data'));
}

export function authHeaders(o: CredentialOpts): Record<string, string> {
  const t = cliToken(o);
  return t ? { authorization: `Bearer ${t}` } : {};
}
