import Fastify, { LogController, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import type { Logger } from 'pino';
import type { HostServices } from './context.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { metaRoutes } from './routes/meta.js';
import { metricsRoutes } from './routes/metrics.js';
import { pluginRoutes } from './routes/plugins.js';
import { registerRuleRoutes } from './routes/rules.js';
import { registerStreamRoutes } from './routes/streams.js';
import { registerTableRoutes } from './routes/tables.js';
import { installSecurity, MULTIPART_LIMITS, resolveTimeouts, type HttpTimeouts, type SecurityOptions } from './security/index.js';
import { registerDataRoutes } from './routes/data.js';

export interface ServerOptions {
  services: HostServices;
  logger?: Logger;
  /**
   * Auth, Origin and Host checks (src/api/security). Absent only for servers built without them on
   * purpose (tests of the routes themselves); the host always passes them.
   */
  security?: SecurityOptions & { boundHost: string };
  timeouts?: Partial<HttpTimeouts>;
}

/**
 * The REST API. Each area is a fastify plugin in ./routes/<area>.ts receiving the host's services;
 * add new areas (streams, rules) with one `register` line below.
 */
export async function buildServer({ services, logger, security, timeouts }: ServerOptions): Promise<FastifyInstance> {
  const t = resolveTimeouts(timeouts);
  const app = Fastify({
    ...(logger ? { loggerInstance: logger.child({ component: 'api' }) } : { logger: false }),
    // per-request lines would drown the host log; errors are logged by the error handler
    logController: new LogController({ disableRequestLogging: true }),
    // a client that stalls cannot hold a connection (idle), a header block or a whole request forever
    connectionTimeout: t.idleTimeoutMs,
    requestTimeout: t.requestTimeoutMs,
    keepAliveTimeout: t.keepAliveTimeoutMs,
    maxRequestsPerSocket: 1000,
    // JSON bodies are small; zips arrive as streams and are counted by the manager
    bodyLimit: 1024 * 1024,
  }) as unknown as FastifyInstance;
  app.server.headersTimeout = t.headersTimeoutMs;
  // CONNECT never reaches fastify; without this Node drops the connection without an answer
  app.server.on('connect', (_req, socket) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  if (security) services.authMode = installSecurity(app, services.dataDir, security.boundHost, security).mode;
  await app.register(multipart, {
    // the manager counts bytes itself; fileSize only stops busboy going beyond the same limit
    limits: { ...MULTIPART_LIMITS, fileSize: services.manager.limits.maxZipBytes + 1 },
    // a limit passed answers 413 at once instead of being silently truncated
    throwFileSizeLimit: true,
  });

  await app.register(metaRoutes, { services });
  await app.register(pluginRoutes, { services });
  await app.register(metricsRoutes, { services });
  if (services.rules) {
    await registerStreamRoutes(app, services.rules);
    await registerTableRoutes(app, services.rules);
    await registerRuleRoutes(app, services.rules);
    await registerDataRoutes(app, services.rules, services.manager);
  }
  return app;
}
