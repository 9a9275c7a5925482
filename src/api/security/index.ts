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
  app.addHook('onRequest', async (req, reply) => {
    checkOrigin(req.headers.origin, policy);
    checkHost(req.headers.host, policy);
    if (typeof req.headers.origin === 'string') {
      // an allowed web origin (checked above): let its page read answers and send the token
      void reply.header('access-control-allow-origin', req.headers.origin).header('vary', 'Origin');
      if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
        // a CORS preflight carries no credentials by design; it changes nothing and is answered here
        return reply
          .code(204)
          .header('access-control-allow-methods', 'GET, POST, PUT, DELETE')
          .header('access-control-allow-headers', 'authorization, content-type')
          .header('access-control-max-age', '600')
          .send();
      }
    }
    if (isOpen(req)) return;
    req.principal = await authenticator.authenticate(req.headers.authorization);
  });
  return authenticator;
}

/** The principal's id for audit entries. */
export function actorOf(req: FastifyRequest): string {
  return req.principal?.id ?? 'anonymous';
}
