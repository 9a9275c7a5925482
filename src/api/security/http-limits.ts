/**
 * Server-side timeouts, so that a client that stalls cannot hold a connection or an upload forever.
 * Node's http server enforces them (fastify passes them through); a stalled client gets 408 or a
 * closed socket, and its spooled upload is removed.
 */
export interface HttpTimeouts {
  /** Whole header block must arrive within this (Node's headersTimeout). */
  headersTimeoutMs: number;
  /** Whole request, body included, must arrive within this (fastify's requestTimeout). */
  requestTimeoutMs: number;
  /** A connection with no bytes moving for this long is closed (fastify's connectionTimeout). */
  idleTimeoutMs: number;
  /** Keep-alive connections idle between requests are closed after this. */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: HttpTimeouts = {
  headersTimeoutMs: 10_000,
  // a 64 MiB zip over a slow link still fits; a 1 byte/s upload does not
  requestTimeoutMs: 300_000,
  // generous: a queued install's client waits silently while the ones before it download and load
  idleTimeoutMs: 120_000,
  keepAliveTimeoutMs: 5_000,
};

export function resolveTimeouts(partial?: Partial<HttpTimeouts>): HttpTimeouts {
  const t = { ...DEFAULT_TIMEOUTS, ...(partial ?? {}) };
  // Node requires headersTimeout <= requestTimeout when both are set
  if (t.requestTimeoutMs > 0 && t.headersTimeoutMs > t.requestTimeoutMs) t.headersTimeoutMs = t.requestTimeoutMs;
  return t;
}

/** Multipart limits: an install form has a handful of fields and one file. */
export const MULTIPART_LIMITS = {
  fields: 16,
  files: 1,
  parts: 17,
  fieldNameSize: 100,
  fieldSize: 64 * 1024,
  headerPairs: 32,
  headerSize: 8 * 1024,
};
