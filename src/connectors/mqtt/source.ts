/**
 * MQTT source: subscribes to the datasource's topic filter(s) (comma-separated, wildcards allowed)
 * and emits every message decoded per FORMAT. Reconnects on its own (`reconnectPeriod`) and
 * subscribes again after every connect, so a restarted broker without our session still feeds us.
 */
import { connect, type MqttClient } from 'mqtt';
import { PropReader } from '../props.js';
import { decode, readFormat, readMaxMessageSize, SourceCounters, tooLarge, type Format } from '../decode.js';
import { validateFilter } from '../topic.js';
import { resolveMqttProps } from './conf.js';
import { mqttConnection, type MqttConnection } from './options.js';
import type { ConnectorContext, EmitFn, Props, SourceConnector, SourceMetrics, StatusFn } from '../types.js';

export class MqttSource implements SourceConnector {
  private client?: MqttClient;
  private readonly counters = new SourceCounters();
  private stopping = false;
  private onStatus?: StatusFn;

  constructor(
    readonly topics: string[],
    readonly conn: MqttConnection,
    readonly format: Format,
    readonly maxMessageSize = 0,
  ) {
    topics.forEach(validateFilter);
  }

  start(emit: EmitFn, onStatus: StatusFn): Promise<void> {
    if (this.client) return Promise.resolve();
    this.stopping = false;
    this.onStatus = onStatus;
    onStatus({ state: 'connecting' });
    const client = connect(this.conn.url, this.conn.options);
    this.client = client;
    return new Promise<void>((resolve) => {
      client.on('connect', () => {
        client.subscribe(this.topics, { qos: this.conn.qos }, (err, granted) => {
          const refused = granted?.find((g) => g.qos === 128);
          if (err || refused) {
            onStatus({ state: 'error', error: `subscribe to ${refused?.topic ?? this.topics.join(',')} refused: ${err?.message ?? 'SUBACK 128'}` });
          } else if (!this.stopping) onStatus({ state: 'connected' });
          resolve();
        });
      });
      client.on('message', (topic, payload) => {
        const rows = this.counters.record(tooLarge(payload.length, this.maxMessageSize) ?? decode(this.format, payload));
        if (rows) emit(rows, { topic, ts: Date.now() });
      });
      client.on('reconnect', () => {
        if (!this.stopping) onStatus({ state: 'reconnecting' });
      });
      client.on('error', (err) => {
        if (!this.stopping) onStatus({ state: 'error', error: `${this.conn.url}: ${err.message}` });
        resolve();
      });
      client.on('close', () => {
        if (!this.stopping) resolve(); // the first attempt failed; mqtt.js keeps trying
      });
    });
  }

  async stop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.stopping = true;
    this.client = undefined;
    await client.endAsync(true);
    this.onStatus?.({ state: 'stopped' });
  }

  metrics(): SourceMetrics {
    return this.counters.snapshot();
  }
}

export function createMqttSource(datasource: string, props: Props, ctx: ConnectorContext): MqttSource {
  const merged = resolveMqttProps(props, ctx, 'mqtt source');
  const p = new PropReader('mqtt source', merged);
  const topics = datasource.split(',').map((t) => t.trim()).filter(Boolean);
  if (topics.length === 0) throw p.fail('DATASOURCE', datasource, 'one or more MQTT topic filters, comma-separated');
  return new MqttSource(topics, mqttConnection(p, ctx, 'source'), readFormat(p), readMaxMessageSize(p));
}
