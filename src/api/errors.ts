import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isStreamplugError, type ErrorCode } from '../errors.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  E_NOT_FOUND: 404,
  E_CONFLICT: 409,
  E_PLUGIN_IN_USE: 409,
  E_PLUGIN_LOADED: 409,
  E_DUPLICATE_FUNCTION: 409,
  E_HOST_RUNNING: 409,
  E_UNAUTHORIZED: 401,
  E_FORBIDDEN: 403,
  E_DOWNGRADE: 409,
  // the host could not get the zip from elsewhere: a gateway error, not the client's
  E_FETCH: 502,
  E_INTERNAL: 500,
};

/** eKuiper's statuses: 404 only for what does not exist, 409 for clashes, 400 for every other refusal. */
export function httpStatus(code: string): number {
  return STATUS[code as ErrorCode] ?? 400;
}

/** Every error leaves as `{"error": code, "message": text}`; never a stack trace. */
export function errorHandler(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): void {
  if (isStreamplugError(err)) {
    const status = httpStatus(err.code);
    if (err.code === 'E_INTERNAL') return internal(err, req, reply);
    if (status >= 500) req.log.error({ err }, err.message);
    void reply.code(status).send({ error: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) });
    return;
  }
  const fe = err as FastifyError;
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // fastify's own refusals: bad JSON, unsupported content type, body too large
    void reply.code(fe.statusCode).send({ error: 'E_BAD_REQUEST', message: `${err.message}${fe.code ? ` (${fe.code})` : ''}` });
    return;
  }
  internal(err, req, reply);
}

/**
 * An unexpected error: logged in full, answered without its message, which can name server paths
 * or file contents. The request id ties the answer to the log line.
 */
function internal(err: Error, req: FastifyRequest, reply: FastifyReply): void {
  req.log.error({ err, reqId: req.id }, 'unexpected error');
  void reply.code(500).send({ error: 'E_INTERNAL', message: `internal error (request ${req.id}); the host log has the details` });
}

export function notFoundHandler(req: FastifyRequest, reply: FastifyReply): void {
  void reply.code(404).send({ error: 'E_NOT_FOUND', message: `no route ${req.method} ${req.url}; GET / lists the endpoints` });
}
