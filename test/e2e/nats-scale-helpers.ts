/**
 * Shared by the scale-out tests and bench/scale: hosts reading one JetStream durable consumer with a
 * file sink each, a publisher that confirms every message, and the union of what the sinks wrote.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { freePort, tempDir } from '../connectors/helpers.js';

export const OUT_FILE = 'out/n.jsonl';

/** A host with etc/nats_source.json = {"default": conf}, stream n on `subject`, rule r: SELECT * → file. */
export async function startNatsHost(conf: Record<string, unknown>, subject: string, tag: string, triggered = true): Promise<HostProcess> {
  const dataDir = tempDir(`scale-${tag}`);
  fs.mkdirSync(path.join(dataDir, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(dataDir, 'etc', 'nats_source.json'), JSON.stringify({ default: conf }));
  const host = await startHostProcess({ dataDir, args: ['--mqtt-port', String(await freePort())] });
  const s = await host.api('POST', '/streams', { sql: `CREATE STREAM n () WITH (TYPE="nats", DATASOURCE="${subject}", FORMAT="json", CONF_KEY="default")` });
  if (s.status !== 201) throw new Error(`create stream on ${tag}: ${s.status} ${s.text}`);
  const r = await host.api('POST', '/rules', { id: 'r', sql: 'SELECT * FROM n', actions: [{ file: { path: OUT_FILE, interval: 100 } }], triggered });
  if (r.status !== 201) throw new Error(`create rule on ${tag}: ${r.status} ${r.text}`);
  return host;
}

export function fileSize(host: HostProcess): number {
  try {
    return fs.statSync(path.join(host.dataDir, OUT_FILE)).size;
  } catch {
    return 0;
  }
}

/** ids written by one host's sink (a line cut by kill -9 mid-write is ignored: it was never acked). */
export function idsWritten(host: HostProcess): number[] {
  let text = '';
  try {
    text = fs.readFileSync(path.join(host.dataDir, OUT_FILE), 'utf8');
  } catch {
    return [];
  }
  const ids: number[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      ids.push((JSON.parse(line) as { id: number }).id);
    } catch {
      /* torn last line */
    }
  }
  return ids;
}

export interface Union {
  distinct: number;
  total: number;
  duplicates: number;
  missing: number[];
  perHost: number[];
}

export function union(hosts: HostProcess[], count: number): Union {
  const seen = new Uint8Array(count);
  let total = 0;
  const perHost: number[] = [];
  for (const h of hosts) {
    const ids = idsWritten(h);
    perHost.push(ids.length);
    total += ids.length;
    for (const id of ids) if (id >= 0 && id < count) seen[id] = 1;
  }
  const missing: number[] = [];
  for (let i = 0; i < count; i++) if (!seen[i]) missing.push(i);
  const distinct = count - missing.length;
  return { distinct, total, duplicates: total - distinct, missing, perHost };
}

/**
 * Publishes {id, v} for id in [from, to) through JetStream, `window` unconfirmed at a time, retrying a
 * message whose ack does not come (a node died), so the stream holds every id at least once.
 */
export async function publishRange(nc: NatsConnection, subject: string, from: number, to: number, onProgress?: (done: number) => void, window = 256): Promise<void> {
  const js = jetstream(nc, { timeout: 5000 });
  let next = from;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const id = next++;
      if (id >= to) return;
      const body = JSON.stringify({ id, v: id % 97, ts: Date.now() });
      for (let attempt = 0; ; attempt++) {
        try {
          await js.publish(subject, body, { msgID: `m${id}` }); // msgID: a retried publish is not stored twice
          break;
        } catch (e) {
          if (attempt > 40) throw e;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
}
