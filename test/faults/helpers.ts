/** Shared by the fault-containment tests: the crash corpus, zips of it, a broker and a host to crash. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/connectors/mqtt/broker.js';
import { startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { buildDir, samplesDir } from '../helpers/paths.js';
import { makeZip } from '../manager/zips.js';

/** build/crash/NAME.so, made by `npm run build:corpus` (test/fixtures/build-crash.mjs). */
export const crashDir = path.join(buildDir, 'crash');
export function crashPlugin(name: string): string {
  const file = path.join(crashDir, `${name}.so`);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing; run \`npm run build:corpus\` first`);
  return file;
}

export function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `streamplug-${prefix}-`));
}

/** A plugin zip (library at the root) for `file`, installed as `name`; `tag` names the zip file. */
export async function zipOf(dir: string, name: string, file: string, tag = name): Promise<string> {
  const out = path.join(dir, `${tag}.zip`);
  await makeZip(out, [{ name: `${name}.so`, file }]);
  return out;
}

export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const readRows = (file: string): Record<string, unknown>[] =>
  fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];

/** An MQTT broker in the test process: it outlives the hosts the tests crash. */
export async function testBroker(): Promise<EmbeddedBroker & { publish(topic: string, payload: unknown): Promise<void> }> {
  const broker = await startEmbeddedBroker({ host: '127.0.0.1', port: 0 });
  return Object.assign(broker, {
    async publish(topic: string, payload: unknown) {
      const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      await client.publishAsync(topic, JSON.stringify(payload), { qos: 1 });
      await client.endAsync();
    },
  });
}

export function startHost(dataDir: string, brokerUrl: string, opts: { noWait?: boolean } = {}): Promise<HostProcess> {
  return startHostProcess({ dataDir, args: ['--mqtt-url', brokerUrl], noWait: opts.noWait });
}

/** Installs a plugin zip through REST (JSON body naming the file); returns the reply. */
export async function install(host: HostProcess, name: string, zip: string, extra: Record<string, unknown> = {}) {
  return host.api('POST', '/plugins/functions', { name, file: zip, ...extra });
}

/** The echo sample, a stream on `topic` and a rule `good` writing echo(x) to `out`: what must keep working. */
export async function goodRule(host: HostProcess, dir: string, topic: string, out: string): Promise<void> {
  const r = await install(host, 'echo', await zipOf(dir, 'echo', path.join(samplesDir, 'echo.so')));
  assert.equal(r.status, 201, r.text);
  const s = await host.api('POST', '/streams', { sql: `CREATE STREAM s (x float) WITH (DATASOURCE="${topic}", FORMAT="json")` });
  assert.equal(s.status, 201, s.text);
  const g = await host.api('POST', '/rules', { id: 'good', sql: 'SELECT echo(x) AS y FROM s', actions: [{ file: { path: out, interval: 20 } }] });
  assert.equal(g.status, 201, g.text);
}

/** Until rule `id` runs and its MQTT source is subscribed (messages published before would be lost). */
export async function ruleReady(host: HostProcess, id: string): Promise<void> {
  await waitUntil(`rule ${id} running with its source connected`, async () => {
    const st = await host.api('GET', `/rules/${id}/status`);
    return st.body?.status === 'running' && st.body?.source?.state === 'connected';
  });
}

/** The host's exit, or a failure naming what was awaited after `ms` (a crash that did not happen). */
export async function exitOf(host: HostProcess, what: string, ms = 30_000) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the host did not exit within ${ms} ms: ${what}; stderr:\n${host.stderr()}`)), ms);
  });
  try {
    return await Promise.race([host.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
