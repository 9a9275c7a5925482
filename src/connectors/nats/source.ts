/**
 * NATS source, two modes chosen by the properties (stream options laid over etc/nats_source.json):
 *
 * - core NATS (no `stream`): subscribes to the DATASOURCE subject, in queue group `queue` when set,
 *   so hosts running the same rule share the messages. No acknowledgement: what a host had in hand
 *   when it died is lost (at-most-once), as with MQTT QoS 0.
 * - JetStream (`stream` set): a pull consumer on that stream, filtered on the DATASOURCE subject.
 *   With `durable`, every host running the rule binds the same durable consumer and the server
 *   shares its messages among them. Each message is acknowledged only after every rule reading the
 *   stream had its sinks confirm the rows (EmitMeta.onDelivered); a message not acknowledged within
 *   `ackWait` (a host died) is redelivered to the other members, at most `maxDeliver` times
 *   (-1: unlimited). At-least-once: duplicates are bounded by what was in flight (`maxAckPending`).
 *
 * Either way the client reconnects on its own, to any node of a cluster (server may list several;
 * the client also learns the others from the server), and the status follows it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { StreamplugError } from '../../errors.js';
import { PropReader } from '../props.js';
import { decode, readMaxMessageSize, SourceCounters, tooLarge, type Format } from '../decode.js';
import { resolveNatsProps } from './conf.js';
import { msToNanos, natsConnectionOptions } from './options.js';
import type { ConnectorContext, ConsumerReport, EmitFn, Props, SourceConnector, SourceMetrics, StatusFn } from '../types.js';
import type { NodeConnectionOptions } from '@nats-io/transport-node';

export interface JetStreamOptions {
  stream: string;
  /** Shared durable consumer; undefined: an ephemeral consumer of this host alone. */
  durable?: string;
  ackWaitMs: number;
  /** -1: unlimited */
  maxDeliver: number;
  maxAckPending: number;
  /** Messages the client pulls ahead per request. */
  batchSize: number;
  /**
   * Lifetime of a pull request (ms). Short on purpose: the server keeps a dead host's open pull
   * requests until they expire and may route messages (redeliveries too) into them, which then wait
   * another ackWait. Short pulls bound that.
   */
  pullExpiresMs: number;
  /** Delay before a message whose rows could not be delivered is offered again (ms). */
  nakDelayMs: number;
}

export interface NatsSourceOptions {
  subject: string;
  format: Format;
  connection: NodeConnectionOptions;
  /** Core NATS queue group. */
  queue?: string;
  js?: JetStreamOptions;
  /** How often the consumer's broker-side counters are read for the status (ms). */
  infoIntervalMs: number;
  /** Bytes; a larger message is dropped before decoding and counted (`tooLarge`). 0: no limit. */
  maxMessageSize: number;
}

const CONSUMER_NOT_FOUND = 10014;
const RETRY_MS = 1000;

export class NatsSource implements SourceConnector {
  private nc?: NatsConnection;
  private readonly counters = new SourceCounters();
  private stopping = false;
  private running?: Promise<void>;
  private sub?: Subscription;
  private messages?: ConsumerMessages;
  private infoTimer?: NodeJS.Timeout;
  private consumer?: ConsumerReport;
  private firstOutcome?: () => void;

  constructor(readonly o: NatsSourceOptions) {}

  start(emit: EmitFn, onStatus: StatusFn): Promise<void> {
    if (this.running) return Promise.resolve();
    this.stopping = false;
    onStatus({ state: 'connecting' });
    return new Promise<void>((firstOutcome) => {
      this.firstOutcome = firstOutcome; // stop() before the first outcome must not leave start() pending
      this.running = this.run(emit, (s) => {
        if (!this.stopping) onStatus(s);
        if (s.state === 'connected' || s.state === 'error') firstOutcome();
      });
    });
  }

  /** Connects (retrying until stopped), then receives until stopped; any failure is a status, never a throw. */
  private async run(emit: EmitFn, status: StatusFn): Promise<void> {
    while (!this.stopping) {
      try {
        this.nc = await connect({ ...this.o.connection, waitOnFirstConnect: false });
        break;
      } catch (e) {
        status({ state: 'error', error: `cannot connect to ${this.servers()}: ${(e as Error).message}; retrying` });
        await sleep(RETRY_MS);
      }
    }
    const nc = this.nc;
    if (!nc) return;
    if (this.stopping) {
      await nc.close().catch(() => undefined);
      return;
    }
    void this.watch(nc, status);
    if (!this.o.js) {
      this.subscribeCore(nc, emit);
      await nc.flush().catch(() => undefined); // the server has our SUB before we say connected
      status({ state: 'connected' });
      return;
    }
    await this.consumeJetStream(nc, this.o.js, emit, status);
  }

  private async watch(nc: NatsConnection, status: StatusFn): Promise<void> {
    for await (const s of nc.status()) {
      if (this.stopping) return;
      if (s.type === 'disconnect' || s.type === 'reconnecting') status({ state: 'reconnecting' });
      else if (s.type === 'reconnect') status({ state: 'connected' });
      else if (s.type === 'error') status({ state: 'error', error: String((s as { error?: unknown }).error ?? 'server error') });
    }
  }

  private subscribeCore(nc: NatsConnection, emit: EmitFn): void {
    const { subject, queue, format } = this.o;
    if (queue) this.consumer = { kind: 'queue', name: queue, receivedRedelivered: 0, acked: 0, nacked: 0 };
    this.sub = nc.subscribe(subject, {
      ...(queue ? { queue } : {}),
      callback: (err, msg) => {
        if (err) return;
        const rows = this.counters.record(tooLarge(msg.data.length, this.o.maxMessageSize) ?? decode(format, msg.data));
        if (rows) emit(rows, { topic: msg.subject, ts: Date.now() });
      },
    });
  }

  /** Binds (creating if needed) the consumer and consumes until stopped, re-binding after any failure. */
  private async consumeJetStream(nc: NatsConnection, js: JetStreamOptions, emit: EmitFn, status: StatusFn): Promise<void> {
    const client = jetstream(nc);
    const report: ConsumerReport = { kind: 'jetstream', name: js.durable ?? '', stream: js.stream, receivedRedelivered: 0, acked: 0, nacked: 0 };
    this.consumer = report;
    while (!this.stopping) {
      let name: string;
      try {
        const jsm = await jetstreamManager(nc);
        name = await this.bindConsumer(jsm, js);
        report.name = name;
        this.startInfo(jsm, js.stream, name);
        const consumer = await client.consumers.get(js.stream, name);
        const messages = await consumer.consume({ max_messages: js.batchSize, expires: js.pullExpiresMs });
        this.messages = messages;
        // A consumer deleted on the server (or gone with its stream) would otherwise be pulled from for
        // ever: end this round and bind again, which creates the durable anew.
        void (async () => {
          for await (const n of messages.status())
            if (n.type === 'consumer_deleted' || n.type === 'consumer_not_found') return messages.stop();
        })().catch(() => undefined);
      } catch (e) {
        status({ state: 'error', error: e instanceof StreamplugError ? e.message : `JetStream stream "${js.stream}": ${(e as Error).message}; retrying` });
        await sleep(RETRY_MS);
        continue;
      }
      status({ state: 'connected' });
      try {
        for await (const m of this.messages) this.receive(m, emit, report, js);
      } catch (e) {
        if (!this.stopping) status({ state: 'reconnecting', error: (e as Error).message });
      }
      if (!this.stopping) await sleep(RETRY_MS / 4);
    }
  }

  private receive(m: JsMsg, emit: EmitFn, report: ConsumerReport, js: JetStreamOptions): void {
    if (m.info.redelivered) report.receivedRedelivered++;
    const rows = this.counters.record(tooLarge(m.data.length, this.o.maxMessageSize) ?? decode(this.o.format, m.data));
    if (!rows) {
      m.term(); // a message that never decodes (or is too large) would come back for ever
      return;
    }
    emit(rows, {
      topic: m.subject,
      ts: Date.now(),
      onDelivered: (ok) => {
        try {
          if (ok) {
            m.ack();
            report.acked++;
          } else {
            m.nak(js.nakDelayMs); // redeliver soon rather than after ackWait, without spinning on a sink that is down
            report.nacked++;
          }
        } catch {
          // connection closed: the server redelivers after ackWait
        }
      },
    });
  }

  /** The durable consumer (created by whichever host comes first), or a new ephemeral one. */
  private async bindConsumer(jsm: JetStreamManager, js: JetStreamOptions): Promise<string> {
    const want: Partial<ConsumerConfig> = {
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: msToNanos(js.ackWaitMs),
      max_deliver: js.maxDeliver,
      max_ack_pending: js.maxAckPending,
      ...(this.o.subject ? { filter_subject: this.o.subject } : {}),
    };
    if (!js.durable) return (await jsm.consumers.add(js.stream, { ...want, inactive_threshold: msToNanos(60_000) })).name;
    let info: ConsumerInfo;
    try {
      info = await jsm.consumers.info(js.stream, js.durable);
    } catch (e) {
      if (!(e instanceof JetStreamApiError && e.code === CONSUMER_NOT_FOUND)) throw e;
      try {
        info = await jsm.consumers.add(js.stream, { ...want, durable_name: js.durable });
      } catch (addError) {
        // Another host may have created it first; if not, the server's refusal is the reason (a
        // DATASOURCE outside the stream's subjects, say), not the "consumer not found" of the retry.
        info = await jsm.consumers.info(js.stream, js.durable).catch(async () => {
          throw await this.cannotCreate(jsm, js, addError as Error);
        });
      }
    }
    const filter = info.config.filter_subject ?? '';
    if (filter !== (this.o.subject ?? ''))
      throw new StreamplugError(
        'E_CONNECTOR_CONFIG',
        `nats source: durable consumer "${js.durable}" on stream "${js.stream}" filters subject "${filter}" but DATASOURCE is "${this.o.subject}"; use another durable name or delete that consumer`,
        { durable: js.durable, stream: js.stream, filter, subject: this.o.subject },
      );
    if (info.config.ack_policy !== AckPolicy.Explicit)
      throw new StreamplugError('E_CONNECTOR_CONFIG', `nats source: durable consumer "${js.durable}" has ack policy "${info.config.ack_policy}", expected "explicit"; use another durable name or delete that consumer`);
    const c = info.config;
    if (c.ack_wait !== want.ack_wait || c.max_deliver !== want.max_deliver || c.max_ack_pending !== want.max_ack_pending) {
      // The last host to start sets ackWait/maxDeliver/maxAckPending for all: they share one consumer.
      await jsm.consumers
        .update(js.stream, js.durable, { ack_wait: want.ack_wait, max_deliver: want.max_deliver, max_ack_pending: want.max_ack_pending })
        .catch(() => undefined);
    }
    return js.durable;
  }

  /** Why the durable could not be created, with the stream's subjects when DATASOURCE is not one of them. */
  private async cannotCreate(jsm: JetStreamManager, js: JetStreamOptions, e: Error): Promise<StreamplugError> {
    const subjects = await jsm.streams
      .info(js.stream)
      .then((i) => i.config.subjects ?? [])
      .catch(() => undefined);
    const where = subjects ? ` (its subjects: ${subjects.map((x) => `"${x}"`).join(', ') || 'none'})` : '';
    return new StreamplugError(
      'E_CONNECTOR_CONFIG',
      `nats source: cannot create durable consumer "${js.durable}" on stream "${js.stream}" for DATASOURCE "${this.o.subject}": ${e.message}; DATASOURCE must be a subject of stream "${js.stream}"${where}, or fix the stream's subjects; retrying`,
      { durable: js.durable, stream: js.stream, subject: this.o.subject, subjects },
    );
  }

  private startInfo(jsm: JetStreamManager, stream: string, name: string): void {
    if (this.infoTimer) clearInterval(this.infoTimer);
    const read = async () => {
      const r = this.consumer;
      if (!r || this.stopping) return;
      try {
        const i = await jsm.consumers.info(stream, name);
        r.pending = i.num_pending;
        r.ackPending = i.num_ack_pending;
        r.redelivered = i.num_redelivered;
        r.infoAt = Date.now();
        delete r.infoError;
      } catch (e) {
        r.infoError = (e as Error).message;
      }
    };
    void read();
    this.infoTimer = setInterval(() => void read(), this.o.infoIntervalMs);
    this.infoTimer.unref();
  }

  private servers(): string {
    const s = this.o.connection.servers;
    return Array.isArray(s) ? s.join(',') : String(s);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.firstOutcome?.();
    if (this.infoTimer) clearInterval(this.infoTimer);
    this.infoTimer = undefined;
    this.sub?.unsubscribe();
    this.messages?.stop();
    const nc = this.nc;
    this.nc = undefined;
    // Unacknowledged messages go back to the other members after ackWait.
    await nc?.close().catch(() => undefined);
    await this.running;
    this.running = undefined;
  }

  metrics(): SourceMetrics {
    return { ...this.counters.snapshot(), ...(this.consumer ? { consumer: { ...this.consumer } } : {}) };
  }
}

export function readNatsSourceOptions(datasource: string, props: Props, ctx: ConnectorContext): NatsSourceOptions {
  const p = new PropReader('nats source', resolveNatsProps(props, ctx, 'nats source'));
  const subject = datasource.trim();
  const stream = p.string('stream');
  if (!subject && !stream) throw p.fail('DATASOURCE', datasource, 'a NATS subject such as "sensors.>" (or a JetStream `stream`)');
  if (/\s/.test(subject)) throw p.fail('DATASOURCE', datasource, 'a NATS subject without spaces');
  const format = p.oneOf('FORMAT', ['json', 'binary', 'raw'] as const, 'json');
  const durable = p.string('durable');
  const queue = p.string('queue');
  if (durable !== undefined && !/^[A-Za-z0-9_-]+$/.test(durable)) throw p.fail('durable', durable, 'letters, digits, "_" or "-"');
  if (durable !== undefined && !stream) throw p.fail('stream', stream, 'a JetStream stream name when `durable` is set');
  if (queue !== undefined && stream) throw p.fail('queue', queue, 'no queue with a JetStream `stream` (members share a `durable` instead)');
  const maxDeliver = p.number('maxDeliver', -1);
  if (!Number.isInteger(maxDeliver) || (maxDeliver < 1 && maxDeliver !== -1)) throw p.fail('maxDeliver', maxDeliver, 'a positive integer, or -1 for unlimited');
  const ackWaitMs = p.count('ackWait', 5000);
  if (ackWaitMs < 100) throw p.fail('ackWait', ackWaitMs, 'at least 100 (milliseconds)');
  const maxAckPending = p.count('maxAckPending', 4096);
  const batchSize = p.count('batchSize', 512);
  if (maxAckPending < 1) throw p.fail('maxAckPending', maxAckPending, 'at least 1');
  if (batchSize < 1) throw p.fail('batchSize', batchSize, 'at least 1');
  const pullExpiresMs = p.count('pullExpires', 2000);
  const nakDelayMs = p.count('nakDelay', 1000);
  if (pullExpiresMs < 1000) throw p.fail('pullExpires', pullExpiresMs, 'at least 1000 (milliseconds)');
  return {
    subject,
    format: format === 'raw' ? 'binary' : format,
    connection: natsConnectionOptions(p, ctx, 'source'),
    ...(queue !== undefined ? { queue } : {}),
    ...(stream !== undefined ? { js: { stream, durable, ackWaitMs, maxDeliver, maxAckPending, batchSize, pullExpiresMs, nakDelayMs } } : {}),
    infoIntervalMs: p.count('statusInterval', 2000),
    maxMessageSize: readMaxMessageSize(p),
  };
}

export function createNatsSource(datasource: string, props: Props, ctx: ConnectorContext): NatsSource {
  return new NatsSource(readNatsSourceOptions(datasource, props, ctx));
}
