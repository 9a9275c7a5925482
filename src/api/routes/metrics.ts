import type { FastifyPluginAsync } from 'fastify';
import type { RouteOptions } from '../context.js';
import { renderMetrics } from '../../rules/prometheus.js';

/** GET /metrics: Prometheus text format (src/rules/prometheus.ts says what is in it). */
export const metricsRoutes: FastifyPluginAsync<RouteOptions> = async (app, { services }) => {
  app.get('/metrics', async (_req, reply) => {
    if (!services.rules) return reply.code(404).send();
    const { contentType, text } = await renderMetrics(services.rules);
    return reply.header('content-type', contentType).send(text);
  });
};
