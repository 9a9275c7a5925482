/**
 * Wraps any sink with eKuiper's common sink properties, implemented once:
 *   sendSingle     one message per row (the row object) instead of one per batch (the array)
 *   dataTemplate   render each message with template.ts; the sink sends that text verbatim
 *   omitIfEmpty    skip empty batches (and, with sendSingle, empty rows)
 *   bufferLength   messages waiting for delivery (the queue is bounded, see bufferFullPolicy)
 *   bufferFullPolicy   "block" (default): collect() waits for room, but at most bufferLength callers
 *                  wait; beyond that, and always with "drop", a message meeting a full queue is dropped
 *                  and counted. The rules engine does not wait on collect(), so a rule's backlog per
 *                  sink is bounded by 2 x bufferLength (block) or bufferLength (drop) messages.
 *   retryCount / retryInterval   re-send a failed message up to retryCount more times, retryInterval ms apart
 *   enableCache and the other cache properties (sink-cache.ts): a message still failing after its
 *                  retries goes to the cache instead of being dropped, and so do all messages after it
 *                  until the cache has been resent, in order: delivery order is never changed.
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
import { readCacheOptions, SinkCache, type CachePageStore, type SinkCacheOptions } from './sink-cache.js';
import type { EncodedBatch, Props, Row, SinkConnector, SinkMessage } from './types.js';

export interface SinkCommonOptions {
  sendSingle: boolean;
  dataTemplate?: string;
  omitIfEmpty: boolean;
  bufferLength: number;
  retryCount: number;
  retryInterval: number;
  bufferFullPolicy: 'block' | 'drop';
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
    bufferFullPolicy: p.oneOf('bufferFullPolicy', ['block', 'drop'] as const, 'block'),
  };
}

export interface SinkMetrics {
  /** Messages made from the rows collected (one per row with sendSingle, one per batch otherwise). */
  messagesIn: number;
  recordsIn: number;
  recordsOut: number;
  messagesOut: number;
  /** Failed attempts, retries included. */
  exceptions: number;
  /** Messages given up on after their retries, and the rows in them. */
  droppedMessages: number;
  droppedRecords: number;
  /** Messages waiting in the queue, not counting the one being sent. */
  buffered: number;
  /** Messages in the sink cache now (memory and disk), and of those on disk. */
  cached: number;
  cachedOnDisk: number;
  /** Messages that ever went into the cache, and the rows in them. */
  cachedTotal: number;
  cachedRecords: number;
  /** Messages (and rows) delivered from the cache: part of messagesOut/recordsOut. */
  resent: number;
  resentRecords: number;
  /** false from a message's final failure until the next delivery succeeds. */
  connected: boolean;
  lastError?: string;
  lastErrorAt?: number;
  lastInvocation?: number;
  /** The connector's own error state, when it reports one (a native sink stopped for good, e.g. its isolated worker crashed). */
  sinkError?: string;
}

/** A message as the cache keeps it (JSON in the store): the data and its row count. */
interface CachedMessage {
  d: Row | Row[];
  n: number;
}

/** Told when the sink's target goes away (a message failed for good) and comes back (a delivery succeeded). */
export type SinkHealthFn = (connected: boolean, reason?: string) => void;
/** The sink died while running (SinkConnector.watchFatal): it delivers nothing more until reopened. */
export type SinkFatalFn = (reason: string) => void;

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
  readonly cacheOptions: SinkCacheOptions;
  private readonly cache?: SinkCache<CachedMessage>;
  /** Messages a previous run left in the cache and not yet resent. */
  private fromEarlierRun = 0;
  /** Messages and rows cached in this run and not yet resent. */
  private readonly cacheRows = { length: 0, total: 0 };
  private readonly m: SinkMetrics = {
    messagesIn: 0, recordsIn: 0, recordsOut: 0, messagesOut: 0, exceptions: 0, droppedMessages: 0, droppedRecords: 0, buffered: 0,
    cached: 0, cachedOnDisk: 0, cachedTotal: 0, cachedRecords: 0, resent: 0, resentRecords: 0, connected: true,
  };
  private working: Promise<void> = Promise.resolve();
  private running = false;
  private spaceWaiters: (() => void)[] = [];
  private roomWaiters: (() => void)[] = [];
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
    private readonly opts: { name?: string; logger?: Logger; cacheStore?: CachePageStore; onHealth?: SinkHealthFn } = {},
  ) {
    this.options = readSinkCommon(props, opts.name ?? 'sink');
    this.cacheOptions = readCacheOptions(props, opts.name ?? 'sink');
    if (this.options.dataTemplate !== undefined) this.template = compileTemplate(this.options.dataTemplate);
    if (this.cacheOptions.enableCache) this.cache = new SinkCache<CachedMessage>(this.cacheOptions, opts.cacheStore);
  }

  /** Where health changes go (the rule's status); set before open(). */
  set onHealth(fn: SinkHealthFn | undefined) {
    this.opts.onHealth = fn;
  }

  /** Why the sink died while running, once it did (watchFatal). */
  private fatal?: string;
  private fatalFn?: SinkFatalFn;

  /** Told once when the sink dies while running (the rule then fails); set before open(). */
  set onFatal(fn: SinkFatalFn | undefined) {
    this.fatalFn = fn;
  }

  private died(reason: string): void {
    if (this.fatal !== undefined || this.closing) return;
    this.fatal = reason;
    this.noteError(new Error(reason));
    this.setConnected(false);
    this.fatalFn?.(reason);
  }

  async open(): Promise<void> {
    this.sink.watchFatal?.((reason) => this.died(reason));
    try {
      await this.sink.open();
      this.opened = true;
    } catch (e) {
      this.noteError(e);
      throw e;
    }
    // What a previous run left in the cache is resent first.
    const earlier = this.cache?.load() ?? 0;
    if (earlier > 0) {
      this.fromEarlierRun = earlier;
      this.kick();
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
    this.m.messagesIn++;
    if (this.cache && this.cache.size > 0) return this.toCache(msg);
    while (this.queue.length >= this.options.bufferLength) {
      if (this.cache) return this.toCache(msg);
      if (this.options.bufferFullPolicy === 'drop' || this.spaceWaiters.length >= this.options.bufferLength) {
        this.drop(msg);
        return;
      }
      await new Promise<void>((r) => this.spaceWaiters.push(r));
    }
    this.queue.push(msg);
    this.m.buffered = this.queue.length;
    this.kick();
  }

  private cached(msg: Pending): CachedMessage {
    return { d: msg.encoded ? msg.encoded.rows() : msg.data, n: msg.rows };
  }

  /** Into the cache, in order; a full cache drops the message and counts it. */
  private toCache(msg: Pending): void {
    const c = this.cache!;
    if (!c.add(this.cached(msg))) {
      this.drop(msg);
      return;
    }
    this.m.cachedTotal++;
    this.m.cachedRecords += msg.rows;
    this.cacheRows.length++;
    this.cacheRows.total += msg.rows;
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
    // Woken by close() with messages still unfinished (cached for the next run, or abandoned).
    if (this.finished < upTo) return false;
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

  /**
   * Drains (abandoning pending retry waits and the resending of the cache), then closes the sink.
   * The cache is kept on disk for the next start, or forgotten (and counted as dropped) with
   * cleanCacheAtStop. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closing) return this.drain();
    this.closing = true;
    this.wakeRoom();
    this.wakeRetry?.();
    await this.drain();
    for (const w of this.settleWaiters.splice(0)) w.wake();
    if (this.cache && this.cache.size > 0) {
      const clean = this.cacheOptions.cleanCacheAtStop;
      const lost = clean ? this.cache.clear() : this.cache.persist();
      this.m.droppedMessages += lost;
      // Rows are known for messages cached in this run (pages from an earlier run carry message counts only).
      if (lost > 0 && (clean || lost === this.cacheRows.length)) this.m.droppedRecords += this.cacheRows.total;
    } else if (this.cache && this.cacheOptions.cleanCacheAtStop) this.cache.clear();
    if (this.opened) {
      this.opened = false;
      await this.sink.close();
    }
  }

  /**
   * Backpressure (FlowControl): the queue is full under the "block" policy, so a source that can hold
   * back should stop pulling. Never with a cache (rows go to the cache) or with "drop" (dropping is the policy).
   */
  saturated(): boolean {
    return !this.cache && !this.closing && this.options.bufferFullPolicy === 'block' && this.queue.length >= this.options.bufferLength;
  }

  /** Resolves once saturated() is false again (room in the queue, or the runner closing). */
  whenRoom(): Promise<void> {
    if (!this.saturated()) return Promise.resolve();
    return new Promise<void>((r) => this.roomWaiters.push(r));
  }

  private wakeRoom(): void {
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const r of w) r();
  }

  metrics(): SinkMetrics {
    // A sink that failed between collects (its thread, or its worker process) says so only here.
    const st = (this.sink as { status?: () => { state: string; error?: string } }).status?.();
    return {
      ...this.m,
      buffered: this.queue.length,
      cached: this.cache?.size ?? 0,
      cachedOnDisk: this.cache?.onDisk ?? 0,
      ...(st?.state === 'error' && st.error ? { sinkError: st.error } : {}),
    };
  }

  // `running` flips back synchronously when the queue and the cache are seen empty, so a message
  // pushed a moment later always starts a new worker.
  private kick(): void {
    if (this.running) return;
    this.running = true;
    this.working = (async () => {
      try {
        for (;;) {
          const msg = this.queue.shift();
          if (msg) {
            this.m.buffered = this.queue.length;
            this.spaceWaiters.shift()?.();
            if (this.roomWaiters.length > 0 && !this.saturated()) this.wakeRoom();
            await this.deliver(msg);
          } else if (this.cache && this.cache.size > 0 && !this.closing) {
            await this.resendOne();
          } else break;
        }
      } finally {
        this.running = false;
      }
    })();
  }

  /** Sends the oldest cached message once; on failure waits (resendInterval, at least retryInterval) before the next try. */
  private async resendOne(): Promise<void> {
    const c = this.cache!;
    let head: CachedMessage | undefined;
    try {
      head = c.peek();
    } catch (e) {
      // A damaged page: its messages are lost, counted as dropped.
      this.noteError(e);
      const lost = (e as { details?: { lost?: number } }).details?.lost ?? 0;
      this.m.droppedMessages += lost;
      for (let i = 0; i < lost; i++) {
        if (this.fromEarlierRun > 0) this.fromEarlierRun--;
        else this.noteFinished();
      }
      return;
    }
    if (!head) return;
    const wait = this.cacheOptions.resendInterval;
    try {
      this.m.lastInvocation = Date.now();
      const out: SinkMessage = { data: head.d, text: this.template?.render(head.d) };
      await this.sendOnce(out);
    } catch (e) {
      this.noteError(e);
      this.setConnected(false);
      await this.sleep(Math.max(wait, this.options.retryInterval, 10));
      return;
    }
    c.shift();
    this.cacheRows.length = Math.max(0, this.cacheRows.length - 1);
    this.cacheRows.total = Math.max(0, this.cacheRows.total - head.n);
    this.m.messagesOut++;
    this.m.recordsOut += head.n;
    this.m.resent++;
    this.m.resentRecords += head.n;
    // Messages cached by an earlier run were never accepted by this one: settled() does not wait on them.
    if (this.fromEarlierRun > 0) this.fromEarlierRun--;
    else this.noteFinished();
    this.setConnected(true);
    if (wait > 0 && c.size > 0) await this.sleep(wait);
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
        this.setConnected(true);
        this.noteFinished();
        return;
      } catch (e) {
        this.noteError(e);
        // A dead sink fails every retry the same way: the message goes to the cache (or is dropped) at once.
        if (attempt >= this.options.retryCount || this.closing || this.fatal !== undefined) break;
        await this.sleep(this.options.retryInterval);
        if (this.closing) break;
      }
    }
    this.setConnected(false);
    if (!this.cache) return this.drop(msg);
    // The failed message and everything queued behind it are older than what the cache holds: they go in front.
    const back = [msg, ...this.queue.splice(0)].map((q) => this.cached(q));
    this.cache.prepend(back);
    this.m.cachedTotal += back.length;
    for (const b of back) {
      this.m.cachedRecords += b.n;
      this.cacheRows.total += b.n;
    }
    this.cacheRows.length += back.length;
    this.m.buffered = 0;
  }

  private setConnected(ok: boolean): void {
    if (this.m.connected === ok) return;
    this.m.connected = ok;
    this.opts.onHealth?.(ok, ok ? undefined : this.m.lastError);
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
    this.noteFinished();
  }

  private noteError(e: unknown): void {
    this.m.exceptions++;
    this.m.lastError = e instanceof Error ? e.message : String(e);
    this.m.lastErrorAt = Date.now();
    this.opts.logger?.warn({ sink: this.opts.name, err: this.m.lastError }, 'sink error');
  }

  /** Waits, unless the runner is closing (close() also cuts a wait short). */
  private sleep(ms: number): Promise<void> {
    if (this.closing) return Promise.resolve();
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
