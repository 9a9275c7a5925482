import type { FastifyPluginAsync } from 'fastify';
import type { RouteOptions } from '../context.js';

/** GET /ping (eKuiper's readiness probe) and GET / (what this host serves). */
export const metaRoutes: FastifyPluginAsync<RouteOptions> = async (app, { services }) => {
  app.get('/ping', async (_req, reply) => reply.code(200).send());
  app.get('/', async () => ({
    name: 'streamplug',
    dataDir: services.dataDir,
    // security posture, so an operator (or a monitor) can see it without reading flags
    auth: services.authMode ?? 'none',
    requireSignatures: services.manager.requireSignatures,
    fileRoots: services.fileRoots?.roots ?? null,
    endpoints: [
      'GET /ping',
      'GET /metrics',
      'GET|POST /plugins/{sources|sinks|functions}',
      'GET|PUT|DELETE /plugins/{type}/{name}',
      'POST /plugins/functions/{name}/register',
      'POST /plugins/{type}/{name}/enable',
      'GET /plugins/udfs',
      'GET /plugins/udfs/{name}',
      'GET /plugins/audit',
    ],
  }));
};
