/**
 * REST sink: sends each message as the body of an HTTP request with the global fetch.
 * A non-2xx answer, a network error or a timeout is a failed attempt (the runner retries).
 */
import { StreamplugError } from '../../errors.js';
import { PropReader } from '../props.js';
import type { ConnectorContext, Props, Row, SinkConnector, SinkMessage } from '../types.js';
import { messageText } from './encode.js';

export interface RestSinkOptions {
  url: string;
  method: 'POST' | 'PUT' | 'PATCH';
  headers: Record<string, string>;
  timeout: number;
  bodyType: 'json' | 'text';
}

export class RestSink implements SinkConnector {
  constructor(readonly opts: RestSinkOptions) {}

  async open(): Promise<void> {}

  async collect(rows: Row[]): Promise<void> {
    return this.send({ data: rows });
  }

  async send(msg: SinkMessage): Promise<void> {
    const { url, method, timeout } = this.opts;
    const headers = {
      'content-type': this.opts.bodyType === 'json' ? 'application/json' : 'text/plain; charset=utf-8',
      ...this.opts.headers,
    };
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: messageText(msg), signal: AbortSignal.timeout(timeout) });
    } catch (e) {
      const err = e as Error;
      const why = err.name === 'TimeoutError' ? `no answer within ${timeout} ms` : `${err.message}${err.cause ? ` (${(err.cause as Error).message ?? err.cause})` : ''}`;
      throw new StreamplugError('E_SINK_FAILED', `rest sink ${method} ${url}: ${why}; check that the endpoint is up or raise "timeout"`, { url, method });
    }
    const body = await res.text().catch(() => '');
    if (res.status < 200 || res.status > 299)
      throw new StreamplugError(
        'E_SINK_FAILED',
        `rest sink ${method} ${url}: HTTP ${res.status}${body ? ` ${JSON.stringify(body.slice(0, 200))}` : ''}, expected 2xx; check the endpoint`,
        { url, method, status: res.status, body: body.slice(0, 1000) },
      );
  }

  async close(): Promise<void> {}
}

export function createRestSink(props: Props, _ctx: ConnectorContext): RestSink {
  const p = new PropReader('rest sink', props);
  const url = p.requireString('url');
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw p.fail('url', url, 'an absolute http:// or https:// URL');
  }
  const timeout = p.count('timeout', 5000);
  if (timeout < 1) throw p.fail('timeout', timeout, 'at least 1 ms');
  return new RestSink({
    url,
    method: p.oneOf('method', ['POST', 'PUT', 'PATCH'] as const, 'POST'),
    headers: p.stringMap('headers'),
    timeout,
    bodyType: p.oneOf('bodyType', ['json', 'text'] as const, 'json'),
  });
}
