/**
 * `npm start`'s demo: a stream `demo` on MQTT topic demo/sensors, a rule `demo` averaging the
 * temperatures of each sensor in Fahrenheit over 5-second tumbling windows with the native sample
 * function `scale` (build/plugins/vector.so), writing to <data>/demo/results.jsonl and MQTT topic
 * demo/results, and a publisher sending a reading per sensor every second so data flows at once.
 */
import path from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { isStreamplugError } from '../errors.js';
import type { RuleService } from './service.js';

export const DEMO_STREAM_SQL = 'CREATE STREAM demo (id bigint, temperature float, humidity float) WITH (DATASOURCE="demo/sensors", FORMAT="json")';
export const DEMO_RULE = {
  id: 'demo',
  sql: 'SELECT id, round(avg(scale(temperature, 1.8)) + 32, 2) AS avg_f, max(humidity) AS max_humidity, count(*) AS n, window_end() AS at FROM demo GROUP BY id, TUMBLINGWINDOW(ss, 5)',
  actions: [{ file: { path: 'demo/results.jsonl', interval: 1000 } }, { mqtt: { topic: 'demo/results' } }],
};

export interface DemoOptions {
  /** Publish sample readings (default true). */
  publish?: boolean;
  /** Between two rounds of readings, ms (default 1000). */
  intervalMs?: number;
  sensors?: number;
}

export interface DemoHandle {
  stream: string;
  rule: string;
  resultsFile: string;
  resultsTopic: string;
  /** One line each for the operator: what was created, what is missing. */
  notes: string[];
  /** Stops the publisher (the stream and rule stay). */
  stop(): Promise<void>;
}

export async function installDemo(service: RuleService, opts: DemoOptions = {}): Promise<DemoHandle> {
  const notes: string[] = [];
  if (!service.listStreams().includes('demo')) {
    service.createStream(DEMO_STREAM_SQL);
    notes.push('created stream demo on MQTT topic demo/sensors');
  }
  if (!service.listRules().some((r) => r.id === 'demo')) {
    try {
      const r = await service.createRule(DEMO_RULE);
      notes.push(r.status === 'failed' ? `created rule demo but it could not start: ${r.message}` : 'created rule demo: 5 s windows per sensor, scale() from vector.so');
    } catch (e) {
      notes.push(`rule demo was not created: ${isStreamplugError(e) ? `${e.code} ${e.message}` : String(e)} (run \`npm run build:plugins\` for vector.so)`);
    }
  }
  const url = service.broker?.url ?? 'mqtt://127.0.0.1:1883';
  let client: MqttClient | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (opts.publish ?? true) {
    const sensors = opts.sensors ?? 3;
    client = connect(url, { clientId: `streamplug_demo_publisher_${process.pid}`, reconnectPeriod: 1000 });
    client.on('error', () => undefined); // reconnects on its own; the rule status shows the broker state
    let t = 0;
    timer = setInterval(() => {
      if (!client?.connected) return;
      t++;
      for (let id = 1; id <= sensors; id++) {
        const temperature = Math.round((20 + id + 5 * Math.sin((t + id) / 6)) * 100) / 100;
        const humidity = Math.round((50 + 10 * Math.cos((t + 2 * id) / 9)) * 10) / 10;
        client.publish('demo/sensors', JSON.stringify({ id, temperature, humidity }));
      }
    }, opts.intervalMs ?? 1000);
    timer.unref();
    notes.push(`publishing ${sensors} sensor readings every ${opts.intervalMs ?? 1000} ms to ${url} topic demo/sensors`);
  }
  const resultsFile = path.join(service.dataDir, 'demo', 'results.jsonl');
  notes.push(`results: ${resultsFile} and MQTT topic demo/results; GET /rules/demo/status for counters`);
  return {
    stream: 'demo',
    rule: 'demo',
    resultsFile,
    resultsTopic: 'demo/results',
    notes,
    async stop() {
      if (timer) clearInterval(timer);
      await client?.endAsync(true);
    },
  };
}
