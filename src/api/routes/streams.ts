/**
 * eKuiper's stream endpoints: POST/GET /streams, GET/PUT/DELETE /streams/{name}. Bodies are
 * `{"sql": "CREATE STREAM …"}` (or the SQL as text/plain); errors are `{"error": code, "message": text}`.
 */
import type { FastifyInstance } from 'fastify';
import { StreamplugError } from '../../errors.js';
import type { RuleService } from '../../rules/service.js';
import { errorHandler } from '../errors.js';
import { useJsonBodies } from '../../rules/json-body.js';

function sqlOf(body: unknown): string {
  if (typeof body === 'string') return body;
  const sql = (body as { sql?: unknown } | null)?.sql;
  if (typeof sql !== 'string' || !sql.trim())
    throw new StreamplugError('E_BAD_REQUEST', 'the body must be {"sql": "CREATE STREAM name (…) WITH (DATASOURCE=\\"topic\\")"}; "sql" is missing or empty');
  return sql;
}

/** Registers the stream routes in their own scope (with the JSON error handler). Await it before listen(). */
export function registerStreamRoutes(app: FastifyInstance, service: RuleService): PromiseLike<unknown> {
  return app.register(async (scope) => {
    scope.setErrorHandler(errorHandler);
    useJsonBodies(scope);

    scope.post('/streams', async (req, reply) => {
      const sql = sqlOf(req.body);
      if (!/^\s*create\s+stream\b/i.test(sql))
        throw new StreamplugError('E_BAD_REQUEST', `POST /streams takes a CREATE STREAM statement but the SQL starts with ${JSON.stringify(sql.trim().slice(0, 20))}; use DELETE /streams/{name} to drop and GET to list or describe`);
      const r = service.createStream(sql);
      return reply.code(201).type('text/plain; charset=utf-8').send(r.message);
    });

    scope.get('/streams', async () => service.listStreams());

    scope.get<{ Params: { name: string } }>('/streams/:name', async (req) => service.describeStream(req.params.name));

    scope.put<{ Params: { name: string } }>('/streams/:name', async (req, reply) => {
      const r = await service.replaceStream(req.params.name, sqlOf(req.body));
      return reply.type('text/plain; charset=utf-8').send(r.message);
    });

    scope.delete<{ Params: { name: string } }>('/streams/:name', async (req, reply) => {
      const r = service.dropStream(req.params.name);
      return reply.type('text/plain; charset=utf-8').send(r.message);
    });
  });
}
