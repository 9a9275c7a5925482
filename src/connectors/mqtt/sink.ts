/**
 * MQTT sink: publishes each message to `topic` with `qos` and the `retained` flag. While the client
 * is disconnected a send fails at once (the runner's retryCount/retryInterval apply) instead of
 * queueing without bound inside mqtt.js.
 */
import { connect, type MqttClient } from 'mqtt';
import { StreamplugError } from '../../errors.js';
import { PropReader } from '../props.js';
import { validateTopic } from '../topic.js';
import { messageText } from '../sinks/encode.js';
import { resolveMqttProps } from './conf.js';
import { mqttConnection, type MqttConnection } from './options.js';
import type { ConnectorContext, Props, Row, SinkConnector, SinkMessage } from '../types.js';

export class MqttSink implements SinkConnector {
  private client?: MqttClient;

  constructor(
    readonly topic: string,
    readonly conn: MqttConnection,
    readonly retained: boolean,
  ) {
    validateTopic(topic);
  }

  /** Resolves on the first CONNACK; rejects (and gives up) if the first attempt fails. */
  open(): Promise<void> {
    if (this.client) return Promise.resolve();
    const client = connect(this.conn.url, this.conn.options);
    this.client = client;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        this.client = undefined;
        client.end(true);
        reject(new StreamplugError('E_SINK_FAILED', `mqtt sink: cannot connect to ${this.conn.url}: ${why}; start the broker or fix "server"/credentials`, { server: this.conn.url }));
      };
      client.once('connect', () => {
        settled = true;
        resolve();
      });
      client.on('error', (err) => fail(err.message));
      client.on('close', () => fail('connection closed'));
    });
  }

  async collect(rows: Row[]): Promise<void> {
    return this.send({ data: rows });
  }

  async send(msg: SinkMessage): Promise<void> {
    const client = this.client;
    if (!client?.connected)
      throw new StreamplugError('E_SINK_FAILED', `mqtt sink: not connected to ${this.conn.url}; the message is retried per retryCount`, { server: this.conn.url });
    await client.publishAsync(this.topic, messageText(msg), { qos: this.conn.qos, retain: this.retained });
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.endAsync();
  }
}

export function createMqttSink(props: Props, ctx: ConnectorContext): MqttSink {
  const merged = resolveMqttProps(props, ctx, 'mqtt sink');
  const p = new PropReader('mqtt sink', merged);
  return new MqttSink(p.requireString('topic'), mqttConnection(p, ctx, 'sink'), p.bool('retained', false));
}
