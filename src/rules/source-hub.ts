/**
 * One source connector per stream, shared by every running rule that reads the stream: each batch is
 * pushed into every subscribed rule (fan-out). The connector starts with the first subscriber and
 * stops when the last one leaves.
 *
 * Messages that arrive in the same turn of the event loop (one socket read often holds hundreds) are
 * pushed as one batch, at the end of that turn (setImmediate): the engine and native functions then
 * work on columns of many rows instead of one row per call. No timer is involved, so no latency is
 * added beyond the turn; a batch is also cut at MAX_BATCH rows.
 *
 * A source may also hand over batches still encoded (EncodedBatch, the pass-through fast path): each
 * goes at once, after any rows pending before it, to the subscribers that accept it as it is; the
 * others get its rows, decoded once for all of them.
 *
 * Delivery hook: a source that acknowledges upstream passes EmitMeta.onDelivered with its rows. The
 * hub calls it once the batch holding those rows was settled by every subscriber (Subscriber.settled:
 * the rule's sinks confirmed them), with false when one could not or nobody was subscribed.
 */
import { setRowMeta, type StreamDef } from '../engine/index.js';
import type { ConnectorStatus, EmitMeta, EncodedBatch, FlowControl, Row, SourceConnector, SourceMetrics } from '../connectors/index.js';

export interface Subscriber {
  push(rows: Row[], ts: number): void;
  /** Optional: takes a batch still encoded when acceptsEncoded() says so at that moment. */
  acceptsEncoded?(): boolean;
  pushEncoded?(batch: EncodedBatch, ts: number): void;
  /** Optional: told every change of the shared connector's state (rule health). */
  sourceStatus?(s: ConnectorStatus): void;
  /** Optional: resolves once everything pushed so far was delivered (true) or could not be (false). */
  settled?(): Promise<boolean>;
  /** Optional backpressure (FlowControl): true while this subscriber cannot take more. */
  saturated?(): boolean;
  whenRoom?(): Promise<void>;
}

type DeliveredFn = (delivered: boolean) => void;

export interface SourceReport extends Partial<SourceMetrics> {
  stream: string;
  type: string;
  datasource: string;
  state: ConnectorStatus['state'];
  error?: string;
  /** Running rules sharing this connector. */
  rules: number;
  /** Batches pushed into the rules (messages of one event-loop turn go together). */
  batches: number;
  /** Of those, batches the source handed over still encoded (JSON lines). */
  encodedBatches: number;
}

/** Rows per pushed batch at most. */
export const MAX_BATCH = 4096;

export class SourceHub {
  readonly subscribers = new Set<Subscriber>();
  private status: ConnectorStatus = { state: 'stopped' };
  private readonly connector: SourceConnector;
  private started?: Promise<void>;
  private stopped?: Promise<void>;

  /** `create` builds the connector and throws (E_CONNECTOR_CONFIG, unknown type) before anything runs. */
  constructor(
    readonly def: StreamDef,
    create: () => SourceConnector,
  ) {
    this.connector = create();
  }

  get stopping(): boolean {
    return this.stopped !== undefined;
  }

  private pending: Row[] = [];
  private pendingTs = 0;
  private flushArmed = false;
  /** Batches pushed, for the status (rows per batch = rowsOut / batches). */
  private batches = 0;
  private encodedBatches = 0;

  /** onDelivered callbacks of the rows in `pending`. */
  private pendingDelivered: DeliveredFn[] = [];

  private readonly emitEncoded = (batch: EncodedBatch, meta?: EmitMeta): void => {
    this.flush(); // rows that came first go first
    const ts = meta?.ts ?? Date.now();
    this.batches++;
    this.encodedBatches++;
    for (const s of this.subscribers) {
      if (s.pushEncoded && s.acceptsEncoded?.()) s.pushEncoded(batch, ts);
      else s.push(batch.rows(), ts);
    }
    if (meta?.onDelivered) this.settle([meta.onDelivered]);
  };

  /** Backpressure handed to the connector: held back while any rule reading this source is saturated. */
  private readonly flow: FlowControl = {
    saturated: () => {
      for (const s of this.subscribers) if (s.whenRoom && s.saturated?.()) return true;
      return false;
    },
    whenRoom: async () => {
      while (this.flow.saturated()) await Promise.all([...this.subscribers].map((s) => s.whenRoom?.()));
    },
  };

  private readonly emit = (rows: Row[], meta?: EmitMeta): void => {
    // meta(topic) in the SQL reads what the source said about the rows
    if (meta?.topic !== undefined) for (const r of rows) setRowMeta(r, { topic: meta.topic });
    if (this.pending.length === 0) this.pendingTs = meta?.ts ?? Date.now();
    if (meta?.onDelivered) this.pendingDelivered.push(meta.onDelivered);
    for (const r of rows) this.pending.push(r);
    if (this.pending.length >= MAX_BATCH) this.flush();
    else if (!this.flushArmed) {
      this.flushArmed = true;
      setImmediate(this.flush);
    }
  };

  private readonly flush = (): void => {
    this.flushArmed = false;
    const rows = this.pending;
    const delivered = this.pendingDelivered;
    this.pendingDelivered = [];
    if (rows.length > 0) {
      this.pending = [];
      this.batches++;
      for (const s of this.subscribers) s.push(rows, this.pendingTs);
    }
    if (delivered.length > 0) this.settle(delivered);
  };

  /** Asks every subscriber to settle what it was given so far, then tells the source. */
  private settle(callbacks: DeliveredFn[]): void {
    const subs = [...this.subscribers];
    const waits = subs.map((s) => (s.settled ? s.settled().catch(() => false) : Promise.resolve(true)));
    const done = Promise.all(waits).then((oks) => {
      const ok = subs.length > 0 && oks.every(Boolean);
      for (const cb of callbacks) cb(ok);
    });
    this.settling.add(done);
    void done.finally(() => this.settling.delete(done));
  }

  private readonly settling = new Set<Promise<void>>();

  /**
   * Before the last reader stops the connector: pushes what is pending and waits (at most `ms`) until
   * the source was told about every batch, so an acknowledging source acks what the rule settled
   * instead of receiving it again after the restart.
   */
  async quiesce(ms: number): Promise<void> {
    this.flush();
    if (this.settling.size === 0) return;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...this.settling]), new Promise((r) => (t = setTimeout(r, ms)))]);
    clearTimeout(t);
  }

  /** Adds the subscriber and resolves once the connector is receiving (or its first attempt failed; it keeps retrying). */
  attach(sub: Subscriber): Promise<void> {
    this.subscribers.add(sub);
    sub.sourceStatus?.(this.status);
    this.started ??= this.connector.start(this.emit, this.setStatus, this.emitEncoded, this.flow).catch((e: unknown) => {
      this.setStatus({ state: 'error', error: (e as Error)?.message ?? String(e) });
      throw e;
    });
    return this.started;
  }

  private readonly setStatus = (s: ConnectorStatus): void => {
    this.status = s;
    for (const sub of this.subscribers) sub.sourceStatus?.(s);
  };

  /** Removes the subscriber; true when nobody is left (the caller then stops the hub). */
  detach(sub: Subscriber): boolean {
    this.subscribers.delete(sub);
    return this.subscribers.size === 0;
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.subscribers.clear();
      this.pending = [];
      const undelivered = this.pendingDelivered;
      this.pendingDelivered = [];
      for (const cb of undelivered) cb(false);
      await this.started?.catch(() => undefined);
      await this.connector.stop();
      this.status = { state: 'stopped' };
    })();
    return this.stopped;
  }

  report(): SourceReport {
    return {
      stream: this.def.name,
      type: this.def.options.TYPE ?? 'mqtt',
      datasource: this.def.options.DATASOURCE ?? '',
      state: this.status.state,
      ...(this.status.error ? { error: this.status.error } : {}),
      rules: this.subscribers.size,
      batches: this.batches,
      encodedBatches: this.encodedBatches,
      ...(this.connector.metrics?.() ?? {}),
    };
  }
}
