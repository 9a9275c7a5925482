/**
 * A small REST client for a running host's stream and rule endpoints (the CLI's transport). Non-2xx
 * answers become StreamplugError with the host's code and message.
 */
import { StreamplugError, type ErrorCode } from '../errors.js';
import type { RuleDef } from './definition.js';
import type { RuleStatus } from './status.js';
import type { RuleSummary, StreamDescription } from './service.js';

export class RulesClient {
  /** `headers`: sent with every call (the CLI's Authorization). */
  constructor(
    readonly base = 'http://127.0.0.1:9081',
    private readonly headers: Record<string, string> = {},
  ) {}

  async request(method: string, route: string, json?: unknown): Promise<string> {
    const url = new URL(route.replace(/^\//, ''), this.base.endsWith('/') ? this.base : `${this.base}/`);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { ...this.headers, ...(json !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: json !== undefined ? (typeof json === 'string' ? json : JSON.stringify(json)) : undefined,
      });
    } catch (e) {
      const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
      throw new StreamplugError('E_FETCH', `cannot reach the host at ${this.base}: ${cause}; is \`streamplug start\` running there? (--host URL)`, { url: this.base });
    }
    const text = await res.text();
    if (!res.ok) {
      let body: { error?: string; message?: string; details?: Record<string, unknown> } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        // not JSON: keep the text
      }
      const code = (typeof body.error === 'string' && /^[EW]_[A-Z0-9_]+$/.test(body.error) ? body.error : res.status === 404 ? 'E_NOT_FOUND' : 'E_BAD_REQUEST') as ErrorCode;
      throw new StreamplugError(code, body.message ?? `HTTP ${res.status} from ${method} ${url.pathname}: ${text}`, { status: res.status, ...(body.details ?? {}) });
    }
    return text;
  }

  private async json<T>(method: string, route: string, body?: unknown): Promise<T> {
    return JSON.parse(await this.request(method, route, body)) as T;
  }

  createStream(sql: string): Promise<string> {
    return this.request('POST', 'streams', { sql });
  }
  listStreams(): Promise<string[]> {
    return this.json('GET', 'streams');
  }
  describeStream(name: string): Promise<StreamDescription> {
    return this.json('GET', `streams/${encodeURIComponent(name)}`);
  }
  updateStream(name: string, sql: string): Promise<string> {
    return this.request('PUT', `streams/${encodeURIComponent(name)}`, { sql });
  }
  dropStream(name: string): Promise<string> {
    return this.request('DELETE', `streams/${encodeURIComponent(name)}`);
  }

  createTable(sql: string): Promise<string> {
    return this.request('POST', 'tables', { sql });
  }
  listTables(): Promise<string[]> {
    return this.json('GET', 'tables');
  }
  describeTable(name: string): Promise<StreamDescription & { rows: number }> {
    return this.json('GET', `tables/${encodeURIComponent(name)}`);
  }
  dropTable(name: string): Promise<string> {
    return this.request('DELETE', `tables/${encodeURIComponent(name)}`);
  }

  /** `rule` is the rule JSON, as an object or as text (sent verbatim so the host reports JSON errors). */
  createRule(rule: unknown): Promise<string> {
    return this.request('POST', 'rules', rule);
  }
  listRules(): Promise<RuleSummary[]> {
    return this.json('GET', 'rules');
  }
  describeRule(id: string): Promise<RuleDef> {
    return this.json('GET', `rules/${encodeURIComponent(id)}`);
  }
  updateRule(id: string, rule: unknown): Promise<string> {
    return this.request('PUT', `rules/${encodeURIComponent(id)}`, rule);
  }
  deleteRule(id: string): Promise<string> {
    return this.request('DELETE', `rules/${encodeURIComponent(id)}`);
  }
  ruleStatus(id: string): Promise<RuleStatus> {
    return this.json('GET', `rules/${encodeURIComponent(id)}/status`);
  }
  ruleAction(id: string, action: 'start' | 'stop' | 'restart'): Promise<string> {
    return this.request('POST', `rules/${encodeURIComponent(id)}/${action}`);
  }
}
