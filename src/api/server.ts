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
import { registerDataRoutes } from './routes/data.js';

export interface ServerOptions {
  services: HostServices;
  logger?: Logger;
}

/**
 * The REST API. Each area is a fastify plugin in ./routes/<area>.ts receiving the host's services;
 * add new areas (streams, rules) with one `register` line below.
 */
export async function buildServer({ services, logger }: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(logger ? { loggerInstance: logger.child({ component: 'api' }) } : { logger: false }),
    // per-request lines would drown the host log; errors are logged by the error handler
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  await app.register(multipart, {
    // the manager counts bytes itself; this only stops fastify buffering beyond the same limit
    limits: { fileSize: services.manager.limits.maxZipBytes + 1, files: 1, fields: 16 },
  });

  await app.register(metaRoutes, { services });
  await app.register(pluginRoutes, { services });
  await app.register(metricsRoutes, { services });
  if (services.rules) {
    await registerStreamRoutes(app, services.rules);
    await registerRuleRoutes(app, services.rules);
    await registerDataRoutes(app, services.rules, services.manager);
  }
  return app;
}
