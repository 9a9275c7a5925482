/**
 * MQTT source: subscribes to the datasource's topic filter(s) (comma-separated, wildcards allowed)
 * and emits every message decoded per FORMAT. Reconnects on its own (`reconnectPeriod`) and
 * subscribes again after every connect, so a restarted broker without our session still feeds us.
 *
 * SHARED="group" subscribes with MQTT shared subscriptions (`$share/group/<filter>`, MQTT 5 and
 * Mosquitto's 3.1.1 extension): every host running a stream with the same group on the same broker
 * gets a share of the messages instead of all of them. SHARED="true"/"false" keep eKuiper's meaning
 * (one connector shared by the rules of a stream, which streamplug always does) and subscribe normally.
 */
import { connect, MqttClient } from 'mqtt';
import { limitedStreamBuilder } from './size-limit.js';
import { PropReader } from '../props.js';
import { decode, readFormat, SourceCounters, type Format } from '../decode.js';
import { validateFilter } from '../topic.js';
import { resolveMqttProps } from './conf.js';
import { mqttConnection, type MqttConnection } from './options.js';
import type { ConnectorContext, EmitFn, Props, SourceConnector, SourceMetrics, StatusFn } from '../types.js';

/** Default maximum MQTT message a source accepts: 8 MiB (MQTT itself allows 256 MiB). */
export const DEFAULT_MAX_MESSAGE_SIZE = 8 * 1024 * 1024;

export class MqttSource implements SourceConnector {
  private client?: MqttClient;
  private readonly counters = new SourceCounters();
  private stopping = false;
  private onStatus?: StatusFn;

  /** What is sent in SUBSCRIBE: the filters, each as `$share/group/filter` when shared. */
  readonly subscriptions: string[];

  constructor(
    readonly topics: string[],
    readonly conn: MqttConnection,
    readonly format: Format,
    readonly shareGroup?: string,
    /** Largest PUBLISH accepted, in bytes; larger ones are skipped unbuffered and counted as errors. */
    readonly maxMessageSize: number = DEFAULT_MAX_MESSAGE_SIZE,
  ) {
    topics.forEach(validateFilter);
    this.subscriptions = shareGroup ? topics.map((t) => `$share/${shareGroup}/${t}`) : topics;
  }

  start(emit: EmitFn, onStatus: StatusFn): Promise<void> {
    if (this.client) return Promise.resolve();
    this.stopping = false;
    this.onStatus = onStatus;
    onStatus({ state: 'connecting' });
    const oversize = (bytes: number) =>
      this.counters.record({ ok: false, error: `a message of ${bytes} bytes exceeds maxMessageSize ${this.maxMessageSize}; it was dropped unread (raise maxMessageSize if such messages are expected)` });
    const builder = limitedStreamBuilder(this.conn.url, this.conn.options, this.maxMessageSize, oversize);
    // websockets keep mqtt.js's own transport (no size filter there)
    const client = builder ? new MqttClient(builder, { ...this.conn.options }) : connect(this.conn.url, this.conn.options);
    this.client = client;
    return new Promise<void>((resolve) => {
      client.on('connect', () => {
        client.subscribe(this.subscriptions, { qos: this.conn.qos }, (err, granted) => {
          const refused = granted?.find((g) => g.qos === 128);
          if (err || refused) {
            onStatus({ state: 'error', error: `subscribe to ${refused?.topic ?? this.subscriptions.join(',')} refused: ${err?.message ?? 'SUBACK 128'}` });
          } else if (!this.stopping) onStatus({ state: 'connected' });
          resolve();
        });
      });
      client.on('message', (topic, payload) => {
        const rows = this.counters.record(decode(this.format, payload));
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
  const maxMessageSize = p.count('maxMessageSize', DEFAULT_MAX_MESSAGE_SIZE);
  return new MqttSource(topics, mqttConnection(p, ctx, 'source'), readFormat(p), shareGroupOf(p), maxMessageSize);
}

/** SHARED="group" → the group; unset, "true" or "false" (eKuiper's boolean) → none. */
function shareGroupOf(p: PropReader): string | undefined {
  const v = p.string('SHARED');
  if (v === undefined || /^(true|false)$/i.test(v)) return undefined;
  if (!/^[^/+#$\s]+$/.test(v)) throw p.fail('SHARED', v, 'a shared-subscription group name without "/", "+", "#", "$" or spaces (or true/false)');
  return v;
}
