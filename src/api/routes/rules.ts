/**
 * eKuiper's rule endpoints: POST/GET /rules, GET/PUT/DELETE /rules/{id}, GET /rules/{id}/status,
 * POST /rules/{id}/start|stop|restart. Errors are `{"error": code, "message": text}` with 400 for a
 * refused rule (SQL position and reason in the message and details), 404 for an unknown id, 409 for a clash.
 */
import type { FastifyInstance } from 'fastify';
import type { RuleService } from '../../rules/service.js';
import { errorHandler } from '../errors.js';
import { useJsonBodies } from '../../rules/json-body.js';

type IdParams = { Params: { id: string } };

/** Registers the rule routes in their own scope (with the JSON error handler). Await it before listen(). */
export function registerRuleRoutes(app: FastifyInstance, service: RuleService): PromiseLike<unknown> {
  return app.register(async (scope) => {
    scope.setErrorHandler(errorHandler);
    useJsonBodies(scope);
    const text = (reply: { type(t: string): { send(s: string): unknown } }, s: string) => reply.type('text/plain; charset=utf-8').send(s);

    scope.post('/rules', async (req, reply) => {
      const r = await service.createRule(req.body);
      reply.code(201);
      return text(
        reply,
        r.status === 'failed'
          ? `Rule ${r.id} was created but could not start: ${r.message}; GET /rules/${r.id}/status shows the details.`
          : `Rule ${r.id} was created successfully.`,
      );
    });

    scope.get('/rules', async () => service.listRules());

    scope.get<IdParams>('/rules/:id', async (req) => service.describeRule(req.params.id));

    scope.put<IdParams>('/rules/:id', async (req, reply) => {
      const r = await service.updateRule(req.params.id, req.body);
      return text(
        reply,
        r.status === 'failed'
          ? `Rule ${r.id} was updated but could not start: ${r.message}; GET /rules/${r.id}/status shows the details.`
          : `Rule ${r.id} was updated successfully.`,
      );
    });

    scope.delete<IdParams>('/rules/:id', async (req, reply) => {
      await service.deleteRule(req.params.id);
      return text(reply, `Rule ${req.params.id} is dropped.`);
    });

    scope.get<IdParams>('/rules/:id/status', async (req) => service.ruleStatus(req.params.id));

    scope.post<IdParams>('/rules/:id/start', async (req, reply) => {
      await service.startRule(req.params.id);
      return text(reply, `Rule ${req.params.id} was started.`);
    });

    scope.post<IdParams>('/rules/:id/stop', async (req, reply) => {
      await service.stopRule(req.params.id);
      return text(reply, `Rule ${req.params.id} was stopped.`);
    });

    scope.post<IdParams>('/rules/:id/restart', async (req, reply) => {
      await service.restartRule(req.params.id);
      return text(reply, `Rule ${req.params.id} was restarted.`);
    });
  });
}
