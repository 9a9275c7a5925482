import net from 'node:net';
import { StreamplugError } from '../../errors.js';

/**
 * Defences against web pages. A page can make a browser post a multipart form to 127.0.0.1 without
 * a CORS preflight, and a page on a name the attacker re-points at 127.0.0.1 (DNS rebinding) even
 * reads the answers. Browsers always send `Origin` on such posts and the page's own name in `Host`;
 * curl and the CLI send no Origin, and the address they dialled as Host.
 */
export interface BrowserPolicy {
  /** Exact origins (scheme://host[:port]) allowed to call; default none. */
  allowedOrigins: string[];
  /** Extra host names the API answers to besides IP literals, localhost and the bound name. */
  allowedHosts: string[];
  /** The address the server listens on (a name or an IP). */
  boundHost: string;
}

function forbidden(message: string, details: Record<string, unknown>): StreamplugError {
  return new StreamplugError('E_FORBIDDEN', message, details);
}

/** The host name of a Host header, without port and IPv6 brackets, lower case. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

export function checkOrigin(origin: string | string[] | undefined, policy: BrowserPolicy): void {
  if (origin === undefined) return;
  const o = Array.isArray(origin) ? origin.join(',') : origin;
  if (policy.allowedOrigins.includes(o)) return;
  throw forbidden(
    `requests from web pages are refused: Origin ${JSON.stringify(o)} is not in allowedOrigins (${policy.allowedOrigins.join(', ') || 'none'}); ` +
      'start the host with --allowed-origin ORIGIN to let that page call the API',
    { origin: o },
  );
}

/**
 * Accepts a Host that names the server: any IP literal (rebinding needs a DNS name), localhost,
 * the bound name, or a configured name. A missing Host (HTTP/1.0, unix socket clients) is accepted.
 */
export function checkHost(host: string | undefined, policy: BrowserPolicy): void {
  if (host === undefined || host === '') return;
  const name = hostName(host);
  if (net.isIP(name)) return;
  if (name === 'localhost' || name.endsWith('.localhost')) return;
  if (name === policy.boundHost.toLowerCase()) return;
  if (policy.allowedHosts.some((h) => h.toLowerCase() === name)) return;
  throw forbidden(
    `Host ${JSON.stringify(host)} is not a name of this server (against DNS rebinding); expected an IP address, localhost or one of allowedHosts (${policy.allowedHosts.join(', ') || 'none'}): start the host with --allowed-host NAME`,
    { host },
  );
}
