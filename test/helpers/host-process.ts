/**
 * A real host in a child process, for tests that kill it, restart it or read what it prints.
 *
 * Every REST call a test makes goes through `api()`, so that whatever the API asks of a client
 * (an auth token under `<data>/etc/api-token`, for one) is handled here, in one place.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from './paths.js';

export const cliPath = path.join(repoRoot, 'bin', 'streamplug.js');

export interface HostProcess {
  child: ChildProcess;
  dataDir: string;
  /** Base URL of the REST API, e.g. http://127.0.0.1:41234 */
  url: string;
  /** Everything the host printed so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code and signal once the process has gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** A REST call with the client credentials a real operator would send. */
  api(method: string, urlPath: string, body?: unknown, headers?: Record<string, string>): Promise<ApiReply>;
  /** Sends a signal and waits for the exit (SIGKILL by default: a real crash, no clean-up). */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `ms`. */
  stop(ms?: number): Promise<void>;
}

export interface ApiReply {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

export interface StartOptions {
  dataDir: string;
  /** Extra arguments after `start --data DIR --port 0`. */
  args?: string[];
  env?: Record<string, string>;
  /** How long to wait for `GET /ping` (ms). */
  readyMs?: number;
  /** Do not wait for /ping (for hosts expected to die while starting). */
  noWait?: boolean;
}

/** Headers a legitimate client sends: the token the host wrote, when it wrote one. */
export function clientHeaders(dataDir: string): Record<string, string> {
  const tokenFile = path.join(dataDir, 'etc', 'api-token');
  try {
    const token = fs.readFileSync(tokenFile, 'utf8').trim();
    if (token) return { authorization: `Bearer ${token}` };
  } catch {
    /* no token: an API without auth */
  }
  return {};
}

export async function apiCall(
  dataDir: string,
  baseUrl: string,
  method: string,
  urlPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiReply> {
  const h: Record<string, string> = { ...clientHeaders(dataDir), ...headers };
  let payload: string | Blob | undefined;
  if (body !== undefined) {
    if (typeof body === 'string') payload = body;
    else if (body instanceof Uint8Array) payload = new Blob([new Uint8Array(body)]);
    else {
      payload = JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
  }
  const res = await fetch(baseUrl + urlPath, { method, headers: h, body: payload });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

function readLockUrl(dataDir: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dataDir, 'host.lock'), 'utf8')) as { url?: string }).url;
  } catch {
    return undefined;
  }
}

/** Starts `streamplug start --data DIR --port 0 …` and waits until `GET /ping` answers. */
export async function startHostProcess(opts: StartOptions): Promise<HostProcess> {
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const child = spawn(process.execPath, [cliPath, 'start', '--data', opts.dataDir, '--port', '0', ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STREAMPLUG_LOG_LEVEL: 'info', ...opts.env },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));

  const host: HostProcess = {
    child,
    dataDir: opts.dataDir,
    url: '',
    stdout: () => out,
    stderr: () => err,
    exited,
    api: (method, urlPath, body, headers) => apiCall(opts.dataDir, host.url, method, urlPath, body, headers),
    async kill(signal = 'SIGKILL') {
      if (!gone) child.kill(signal);
      return exited;
    },
    async stop(ms = 5000) {
      if (gone) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      await exited;
      clearTimeout(t);
    },
  };
  if (opts.noWait) return host;

  const end = Date.now() + (opts.readyMs ?? 20_000);
  for (;;) {
    if (gone) {
      const e = await exited;
      throw new Error(`host exited while starting (code ${e.code}, signal ${e.signal}); stderr:\n${err}`);
    }
    const url = readLockUrl(opts.dataDir);
    if (url) {
      try {
        const r = await fetch(`${url}/ping`);
        if (r.ok) {
          host.url = url;
          return host;
        }
      } catch {
        /* not listening yet */
      }
    }
    if (Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`host did not answer /ping within ${opts.readyMs ?? 20_000} ms; stderr:\n${err}`);
    }
    await sleep(50);
  }
}
