/**
 * Wraps any sink with eKuiper's common sink properties, implemented once:
 *   sendSingle     one message per row (the row object) instead of one per batch (the array)
 *   dataTemplate   render each message with template.ts; the sink sends that text verbatim
 *   omitIfEmpty    skip empty batches (and, with sendSingle, empty rows)
 *   bufferLength   messages waiting for delivery; collect() waits while the buffer is full
 *   retryCount / retryInterval   re-send a failed message up to retryCount more times, retryInterval ms apart
 *
 * Delivery is in order, one message at a time. A message is the unit of retry: every attempt sends
 * the whole message again, so a receiver sees the rows of a failed attempt and then the same rows
 * again; rows of earlier, delivered messages are never re-sent. A message that still fails after its
 * retries (or cannot be rendered) is dropped and counted; failures never throw out of collect().
 *
 * settled() is the delivery hook for acknowledging sources (EmitMeta.onDelivered): it resolves once
 * every message accepted before the call was delivered and the sink flushed (sink.flush()), with
 * false when any message was dropped meanwhile or the runner is closing.
 *
 * collectEncoded() takes a batch still encoded as JSON lines; when acceptsEncoded() (the sink has
 * collectEncoded, no sendSingle, no dataTemplate) it is one message forwarded as it is, never decoded.
 */
import type { Logger } from 'pino';
import { StreamplugError } from '../errors.js';
import { PropReader } from './props.js';
import { decodeJson } from './decode.js';
import { compileTemplate, type Template } from './template.js';
import type { EncodedBatch, Props, Row, SinkConnector, SinkMessage } from './types.js';

export interface SinkCommonOptions {
  sendSingle: boolean;
  dataTemplate?: string;
  omitIfEmpty: boolean;
  bufferLength: number;
  retryCount: number;
  retryInterval: number;
}

export function readSinkCommon(props: Props, where = 'sink'): SinkCommonOptions {
  const p = new PropReader(where, props);
  const bufferLength = p.count('bufferLength', 1024);
  if (bufferLength < 1) throw p.fail('bufferLength', bufferLength, 'at least 1');
  return {
    sendSingle: p.bool('sendSingle', false),
    dataTemplate: p.string('dataTemplate'),
    omitIfEmpty: p.bool('omitIfEmpty', false),
    bufferLength,
    retryCount: p.count('retryCount', 0),
    retryInterval: p.count('retryInterval', 1000),
  };
}

export interface SinkMetrics {
  recordsIn: number;
  recordsOut: number;
  messagesOut: number;
  /** Failed attempts, retries included. */
  exceptions: number;
  /** Messages given up on after their retries, and the rows in them. */
  droppedMessages: number;
  droppedRecords: number;
  /** Messages waiting, not counting the one being sent. */
  buffered: number;
  lastError?: string;
  lastErrorAt?: number;
  lastInvocation?: number;
}

interface Pending {
  data: Row | Row[];
  rows: number;
  /** Set instead of data for a batch forwarded still encoded. */
  encoded?: EncodedBatch;
}

export class SinkRunner {
  readonly options: SinkCommonOptions;
  private readonly template?: Template;
  private readonly queue: Pending[] = [];
  private readonly m: SinkMetrics = {
    recordsIn: 0, recordsOut: 0, messagesOut: 0, exceptions: 0, droppedMessages: 0, droppedRecords: 0, buffered: 0,
  };
  private working: Promise<void> = Promise.resolve();
  private running = false;
  private spaceWaiters: (() => void)[] = [];
  private closing = false;
  private wakeRetry?: () => void;
  private opened = false;
  /** Messages accepted by collect()/collectEncoded() and messages finished (delivered or dropped), in order. */
  private accepted = 0;
  private finished = 0;
  private settleWaiters: { upTo: number; wake: () => void }[] = [];

  constructor(
    readonly sink: SinkConnector,
    props: Props,
    private readonly opts: { name?: string; logger?: Logger } = {},
  ) {
    this.options = readSinkCommon(props, opts.name ?? 'sink');
    if (this.options.dataTemplate !== undefined) this.template = compileTemplate(this.options.dataTemplate);
  }

  async open(): Promise<void> {
    try {
      await this.sink.open();
      this.opened = true;
    } catch (e) {
      this.noteError(e);
      throw e;
    }
  }

  /** Queues the rows as messages; resolves once they are buffered (not delivered: see drain()). */
  async collect(rows: Row[]): Promise<void> {
    if (this.closing) throw new StreamplugError('E_SINK_FAILED', `${this.opts.name ?? 'sink'} is closed; rows cannot be collected after close()`);
    this.m.recordsIn += rows.length;
    const { sendSingle, omitIfEmpty } = this.options;
    const msgs: Pending[] = sendSingle
      ? rows.filter((r) => !omitIfEmpty || Object.keys(r).length > 0).map((r) => ({ data: r, rows: 1 }))
      : omitIfEmpty && rows.length === 0 ? [] : [{ data: rows, rows: rows.length }];
    this.accepted += msgs.length; // counted now, so settled() called right after covers them
    for (const msg of msgs) await this.enqueue(msg);
  }

  /** The sink writes JSON lines as they are and no option reshapes the messages. */
  acceptsEncoded(): boolean {
    return typeof this.sink.collectEncoded === 'function' && !this.options.sendSingle && this.options.dataTemplate === undefined;
  }

  /** Like collect() for a batch still encoded: one message, never decoded when acceptsEncoded(). */
  async collectEncoded(batch: EncodedBatch): Promise<void> {
    if (!this.acceptsEncoded()) return this.collect(batch.rows());
    if (this.closing) throw new StreamplugError('E_SINK_FAILED', `${this.opts.name ?? 'sink'} is closed; rows cannot be collected after close()`);
    this.m.recordsIn += batch.count;
    if (batch.count > 0) this.accepted++;
    if (batch.count > 0) await this.enqueue({ data: [], rows: batch.count, encoded: batch });
  }

  private async enqueue(msg: Pending): Promise<void> {
    while (this.queue.length >= this.options.bufferLength) await new Promise<void>((r) => this.spaceWaiters.push(r));
    this.queue.push(msg);
    this.m.buffered = this.queue.length;
    this.kick();
  }

  /**
   * Resolves once every message accepted so far was delivered and the sink flushed: true, or false
   * when a message was dropped meanwhile (it may be one of them), the flush failed, or the runner is
   * closing (rows collected from now on are refused). Cheap when nothing waits: one counter compare.
   */
  async settled(): Promise<boolean> {
    if (this.closing) return false;
    const dropsBefore = this.m.droppedMessages;
    const upTo = this.accepted;
    if (this.finished < upTo) await new Promise<void>((wake) => this.settleWaiters.push({ upTo, wake }));
    if (this.sink.flush) {
      try {
        await this.sink.flush();
      } catch (e) {
        this.noteError(e);
        return false;
      }
    }
    return this.m.droppedMessages === dropsBefore;
  }

  private noteFinished(): void {
    this.finished++;
    if (this.settleWaiters.length === 0) return;
    const still: typeof this.settleWaiters = [];
    for (const w of this.settleWaiters) (this.finished >= w.upTo ? w.wake() : still.push(w));
    this.settleWaiters = still;
  }

  /** Resolves when every buffered message was delivered or dropped. */
  async drain(): Promise<void> {
    while (this.running) await this.working;
  }

  /** Drains (abandoning pending retry waits), then closes the sink. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return this.drain();
    this.closing = true;
    this.wakeRetry?.();
    await this.drain();
    if (this.opened) {
      this.opened = false;
      await this.sink.close();
    }
  }

  metrics(): SinkMetrics {
    return { ...this.m, buffered: this.queue.length };
  }

  // `running` flips back synchronously when the queue is seen empty, so a message pushed a moment
  // later always starts a new worker.
  private kick(): void {
    if (this.running) return;
    this.running = true;
    this.working = (async () => {
      try {
        for (let msg = this.queue.shift(); msg; msg = this.queue.shift()) {
          this.m.buffered = this.queue.length;
          this.spaceWaiters.shift()?.();
          await this.deliver(msg);
          this.noteFinished();
        }
      } finally {
        this.running = false;
      }
    })();
  }

  private async deliver(msg: Pending): Promise<void> {
    let out: SinkMessage;
    try {
      out = { data: msg.data, text: msg.encoded ? undefined : this.template?.render(msg.data) };
    } catch (e) {
      this.noteError(e);
      this.drop(msg);
      return;
    }
    for (let attempt = 0; ; attempt++) {
      this.m.lastInvocation = Date.now();
      try {
        await (msg.encoded ? this.sink.collectEncoded!(msg.encoded) : this.sendOnce(out));
        this.m.messagesOut++;
        this.m.recordsOut += msg.rows;
        return;
      } catch (e) {
        this.noteError(e);
        if (attempt >= this.options.retryCount || this.closing) break;
        await this.sleep(this.options.retryInterval);
        if (this.closing) break;
      }
    }
    this.drop(msg);
  }

  private async sendOnce(msg: SinkMessage): Promise<void> {
    if (this.sink.send) return this.sink.send(msg);
    if (msg.text === undefined) return this.sink.collect(Array.isArray(msg.data) ? msg.data : [msg.data]);
    const res = decodeJson(msg.text);
    if (!res.ok) throw new StreamplugError('E_SINK_FAILED', `dataTemplate output is ${res.error}; this sink takes rows, so make the template produce JSON`);
    return this.sink.collect(res.rows);
  }

  private drop(msg: Pending): void {
    this.m.droppedMessages++;
    this.m.droppedRecords += msg.rows;
  }

  private noteError(e: unknown): void {
    this.m.exceptions++;
    this.m.lastError = e instanceof Error ? e.message : String(e);
    this.m.lastErrorAt = Date.now();
    this.opts.logger?.warn({ sink: this.opts.name, err: this.m.lastError }, 'sink error');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeRetry = done;
    }).finally(() => (this.wakeRetry = undefined));
  }
}
