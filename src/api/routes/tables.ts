/**
 * eKuiper's table endpoints: POST/GET /tables, GET/DELETE /tables/{name}. Bodies are
 * `{"sql": "CREATE TABLE …"}` (or the SQL as text/plain); errors are `{"error": code, "message": text}`.
 * GET /tables/{name} also says how many rows the table holds now (`rows`).
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
    throw new StreamplugError('E_BAD_REQUEST', 'the body must be {"sql": "CREATE TABLE name (…) WITH (DATASOURCE=\\"file.json\\", TYPE=\\"file\\")"}; "sql" is missing or empty');
  return sql;
}

/** Registers the table routes in their own scope (with the JSON error handler). Await it before listen(). */
export function registerTableRoutes(app: FastifyInstance, service: RuleService): PromiseLike<unknown> {
  return app.register(async (scope) => {
    scope.setErrorHandler(errorHandler);
    useJsonBodies(scope);

    scope.post('/tables', async (req, reply) => {
      const sql = sqlOf(req.body);
      if (!/^\s*create\s+table\b/i.test(sql))
        throw new StreamplugError('E_BAD_REQUEST', `POST /tables takes a CREATE TABLE statement but the SQL starts with ${JSON.stringify(sql.trim().slice(0, 20))}; use DELETE /tables/{name} to drop and GET to list or describe`);
      const r = service.createTable(sql);
      return reply.code(201).type('text/plain; charset=utf-8').send(r.message);
    });

    scope.get('/tables', async () => service.listTables());

    scope.get<{ Params: { name: string } }>('/tables/:name', async (req) => service.describeTable(req.params.name));

    scope.delete<{ Params: { name: string } }>('/tables/:name', async (req, reply) => {
      const r = service.dropTable(req.params.name);
      return reply.type('text/plain; charset=utf-8').send(r.message);
    });
  });
}
