import type { FastifyInstance, FastifyRequest } from 'fastify';
import { makeAuthenticator, type Authenticator, type AuthMode, type Principal } from './auth.js';
import { checkHost, checkOrigin, type BrowserPolicy } from './browser.js';

export { apiTokenFile, readApiToken, ensureApiToken, tokenId } from './token.js';
export { mgmtKeysDir, type AuthMode, type Principal } from './auth.js';
export { resolveTimeouts, DEFAULT_TIMEOUTS, MULTIPART_LIMITS, type HttpTimeouts } from './http-limits.js';
export { fileRootsFor, type FileRootPolicy } from './file-roots.js';

/** Everything the REST API enforces before a route runs. */
export interface SecurityOptions {
  /** token (default), jwt (eKuiper's RS256 mode) or none (--no-auth). */
  auth: AuthMode;
  allowedOrigins?: string[];
  allowedHosts?: string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent the request (set by the auth hook; "anonymous" with --no-auth). */
    principal?: Principal;
  }
}

/** Endpoints open without credentials: only eKuiper's readiness probe. */
function isOpen(req: FastifyRequest): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && req.routeOptions.url === '/ping';
}

/**
 * One onRequest hook: Origin and Host first (403), then credentials (401). It runs before the body
 * is read, so a refused request changes nothing and uploads nothing.
 */
export function installSecurity(app: FastifyInstance, dataDir: string, boundHost: string, opts: SecurityOptions): Authenticator {
  const authenticator = makeAuthenticator(opts.auth, dataDir);
  const policy: BrowserPolicy = { allowedOrigins: opts.allowedOrigins ?? [], allowedHosts: opts.allowedHosts ?? [], boundHost };
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (req) => {
    checkOrigin(req.headers.origin, policy);
    checkHost(req.headers.host, policy);
    if (isOpen(req)) return;
    req.principal = await authenticator.authenticate(req.headers.authorization);
  });
  return authenticator;
}

/** The principal's id for audit entries. */
export function actorOf(req: FastifyRequest): string {
  return req.principal?.id ?? 'anonymous';
}
