import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeZip, sample } from '../manager/zips.js';

export function tempRoot(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `streamplug-sec-${tag}-`));
}

/** Real plugin zips built from the sample plugins (compiled from plugin.h by build:plugins). */
export async function sampleZips(dir: string): Promise<{ echo: string; vector: string; count: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const echo = path.join(dir, 'echo.zip');
  const vector = path.join(dir, 'vector.zip');
  const count = path.join(dir, 'count.zip');
  await makeZip(echo, [{ name: 'echo.so', file: sample('echo.so') }, { name: 'echo.json', data: '{"version":"1.0.0"}' }]);
  await makeZip(vector, [{ name: 'vector.so', file: sample('vector.so') }]);
  await makeZip(count, [{ name: 'countPlusOne.so', file: sample('countPlusOne.so') }]);
  return { echo, vector, count };
}

/** Open file descriptors of a process (Linux /proc). */
export function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

export function filesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

export async function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export interface RawReply {
  status: number;
  body: string;
}

/** A raw HTTP request with exactly the bytes given (fetch would fix up what an attacker sends). */
export function rawRequest(
  target: { url?: string; socketPath?: string },
  method: string,
  urlPath: string,
  headers: Record<string, string>,
  body?: Buffer | string,
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const u = target.url ? new URL(target.url) : undefined;
    const req = http.request(
      { method, path: urlPath, headers, ...(u ? { host: u.hostname, port: u.port } : { socketPath: target.socketPath }) },
      (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}
