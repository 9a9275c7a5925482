/**
 * NATS sink: publishes each message to `subject`. With `stream` set it publishes through JetStream
 * and waits for the publish ack (the message is stored, in the named stream), so a send only
 * succeeds once the server has it; the runner's retryCount/retryInterval apply to failures.
 * `format`: json (the row or batch as JSON, or the dataTemplate text) or raw (the bytes of the row's
 * `self` field, as a FORMAT="raw"/"binary" source produced them; for native sinks' payloads).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { StreamplugError } from '../../errors.js';
import { PropReader } from '../props.js';
import { messageText } from '../sinks/encode.js';
import { resolveNatsProps } from './conf.js';
import { natsConnectionOptions } from './options.js';
import type { ConnectorContext, Props, Row, SinkConnector, SinkMessage } from '../types.js';
import type { NodeConnectionOptions } from '@nats-io/transport-node';

export interface NatsSinkOptions {
  subject: string;
  stream?: string;
  format: 'json' | 'raw';
  connection: NodeConnectionOptions;
  /** ms to wait for a JetStream publish ack */
  ackTimeout: number;
}

export class NatsSink implements SinkConnector {
  private nc?: NatsConnection;
  private js?: JetStreamClient;

  constructor(readonly o: NatsSinkOptions) {}

  async open(): Promise<void> {
    if (this.nc) return;
    try {
      this.nc = await connect({ ...this.o.connection, waitOnFirstConnect: false });
    } catch (e) {
      throw new StreamplugError('E_SINK_FAILED', `nats sink: cannot connect to ${String(this.o.connection.servers)}: ${(e as Error).message}; start the server or fix "server"/credentials`);
    }
    if (this.o.stream) this.js = jetstream(this.nc, { timeout: this.o.ackTimeout });
  }

  async collect(rows: Row[]): Promise<void> {
    return this.send({ data: rows });
  }

  async send(msg: SinkMessage): Promise<void> {
    const nc = this.nc;
    if (!nc || nc.isClosed())
      throw new StreamplugError('E_SINK_FAILED', `nats sink: not connected; the message is retried per retryCount`);
    const payload = this.payload(msg);
    if (!this.js) {
      nc.publish(this.o.subject, payload);
      return;
    }

    try {
      await this.js.publish(this.o.subject, payload, { expect: { streamName: this.o.stream } });
    } catch (e) {
      throw new StreamplugError('E_SINK_FAILED', `nats sink: JetStream did not confirm the message on subject "${this.o.subject}" (stream "${this.o.stream}"): ${(e as Error).message}; check that the stream exists and captures the subject`);
    }
  }

  private payload(msg: SinkMessage): Uint8Array | string {
    if (this.o.format === 'json') return messageText(msg);
    const rows: Row[] = Array.isArray(msg.data) ? msg.data : [msg.data];
    if (msg.text !== undefined) return msg.text;
    const parts = rows.map((r) => r.self);
    if (!parts.every((b) => b instanceof Uint8Array))
      throw new StreamplugError('E_SINK_FAILED', 'nats sink: format "raw" sends the bytes of the row field "self", which this row lacks; select the raw payload AS self or use format "json"');
    return parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts as Uint8Array[]);
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    this.js = undefined;
    if (nc) await nc.drain().catch(() => nc.close());
  }
}

export function createNatsSink(props: Props, ctx: ConnectorContext): NatsSink {
  const p = new PropReader('nats sink', resolveNatsProps(props, ctx, 'nats sink'));
  const subject = p.requireString('subject');
  if (/[\s*>]/.test(subject)) throw p.fail('subject', subject, 'a NATS subject without spaces or wildcards');
  return new NatsSink({
    subject,
    stream: p.string('stream'),
    format: p.oneOf('format', ['json', 'raw'] as const, 'json'),
    connection: natsConnectionOptions(p, ctx, 'sink'),
    ackTimeout: p.count('ackTimeout', 5000),
  });
}
