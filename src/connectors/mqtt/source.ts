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
import { decode, readFormat, readMaxMessageSize, SourceCounters, tooLarge, type Format } from '../decode.js';
import { validateFilter } from '../topic.js';
import { resolveMqttProps } from './conf.js';
import { DeferredAcks } from './deferred-acks.js';
import { mqttConnection, type MqttConnection } from './options.js';
import type { ConnectorContext, EmitFn, Props, SourceConnector, SourceMetrics, StatusFn } from '../types.js';

/**
 * The filter sees whole packets (topic and packet id included, at most 2 + 65535 + 2 bytes), the
 * limit is on the payload: a packet is skipped unread only when no payload within the limit could
 * make it; the few in between are refused after mqtt.js read them (at most 64 KiB over).
 */
const PUBLISH_HEADER_MAX = 2 + 65535 + 2;

export class MqttSource implements SourceConnector {
  private client?: MqttClient;
  private readonly counters = new SourceCounters();
  private stopping = false;
  private onStatus?: StatusFn;
  private acks?: DeferredAcks;

  /** What is sent in SUBSCRIBE: the filters, each as `$share/group/filter` when shared. */
  readonly subscriptions: string[];

  constructor(
    readonly topics: string[],
    readonly conn: MqttConnection,
    readonly format: Format,
    readonly shareGroup?: string,
    /** Largest PUBLISH accepted, in bytes (0: no limit); larger ones are skipped unbuffered and counted. */
    readonly maxMessageSize = 0,
  ) {
    topics.forEach(validateFilter);
    this.subscriptions = shareGroup ? topics.map((t) => `$share/${shareGroup}/${t}`) : topics;
  }

  start(emit: EmitFn, onStatus: StatusFn): Promise<void> {
    if (this.client) return Promise.resolve();
    this.stopping = false;
    this.onStatus = onStatus;
    onStatus({ state: 'connecting' });
    // Over the limit, a PUBLISH is skipped as it streams past (never buffered by mqtt.js) and counted
    // like any message over the limit; the check in 'message' below stays for websocket transports.
    const oversize = (bytes: number) => this.counters.record(tooLarge(bytes, this.maxMessageSize)!);
    const builder = this.maxMessageSize > 0 ? limitedStreamBuilder(this.conn.url, this.conn.options, this.maxMessageSize + PUBLISH_HEADER_MAX, oversize) : undefined;
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
      // QoS 1 on a persistent session: PUBACK once the rules settled the rows (deferred-acks.ts).
      const acks = this.conn.qos >= 1 && this.conn.options.clean === false ? new DeferredAcks(client) : undefined;
      this.acks = acks;
      client.on('message', (topic, payload, packet) => {
        const rows = this.counters.record(tooLarge(payload.length, this.maxMessageSize) ?? decode(this.format, payload));
        const release = acks && packet.qos === 1 ? acks.releaser(packet) : undefined;
        if (!rows) return release?.(); // a message that never decodes would come back for ever
        emit(rows, release ? { topic, ts: Date.now(), onDelivered: release } : { topic, ts: Date.now() });
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

  metrics(): SourceMetrics & { acksHeld?: number; acksDeferred?: number } {
    const m = this.counters.snapshot();
    return this.acks ? { ...m, acksHeld: this.acks.heldNow, acksDeferred: this.acks.released } : m;
  }
}

export function createMqttSource(datasource: string, props: Props, ctx: ConnectorContext): MqttSource {
  const merged = resolveMqttProps(props, ctx, 'mqtt source');
  const p = new PropReader('mqtt source', merged);
  const topics = datasource.split(',').map((t) => t.trim()).filter(Boolean);
  if (topics.length === 0) throw p.fail('DATASOURCE', datasource, 'one or more MQTT topic filters, comma-separated');
  return new MqttSource(topics, mqttConnection(p, ctx, 'source'), readFormat(p), shareGroupOf(p), readMaxMessageSize(p));
}

/** SHARED="group" → the group; unset, "true" or "false" (eKuiper's boolean) → none. */
function shareGroupOf(p: PropReader): string | undefined {
  const v = p.string('SHARED');
  if (v === undefined || /^(true|false)$/i.test(v)) return undefined;
  if (!/^[^/+#$\s]+$/.test(v)) throw p.fail('SHARED', v, 'a shared-subscription group name without "/", "+", "#", "$" or spaces (or true/false)');
  return v;
}
