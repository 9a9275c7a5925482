/**
 * Native (`.so`, contract 1.1) sources and sinks as connectors (src/connectors/types.ts).
 *
 * Source: the plugin's threads push into a bounded native queue; the addon wakes the JS thread
 * (coalesced), which pulls one batch per crossing (`drain`) and emits it. A full queue blocks the
 * producer or drops the oldest/newest item, counted.
 * Sink: each batch is encoded (JSON lines, or typed columns) and queued for the sink's native
 * worker thread, which calls the plugin, retries SP_RETRY with backoff and never runs on the JS
 * thread. collect() waits only while the native queue is full.
 * Pass-through: a JSON message that is one object exactly as JSON.stringify writes it (checked on the
 * producer's thread) is queued as a JSON line. Runs of them cross to JS as one Buffer, without a
 * copy, and go to `emitEncoded` when the consumer gave one (JsonLines: decoded only if rows() is
 * called); an encoded sink takes that Buffer as it is (collectEncoded). Everything else takes the
 * row path, and the output is the same bytes either way.
 * Closing: source stop -> plugin close -> the queue drained into emit; sink: queued batches
 * delivered -> close (flush). A plugin that does not finish within closeTimeoutMs is abandoned:
 * E_CLOSE_TIMEOUT, and its library stays mapped while the hook still runs.
 */
import { decode, type Format } from '../connectors/decode.js';
import { toJson } from '../connectors/template.js';
import type { ConnectorStatus, EmitFn, EncodedBatch, EncodedEmitFn, FlowControl, Row, SinkConnector, SourceConnector, SourceMetrics, StatusFn } from '../connectors/types.js';
import { StreamplugError } from '../errors.js';
import { hostAddon } from './native-addon.js';

export type Overflow = 'block' | 'drop-oldest' | 'drop-newest';

/** Counters of one source or sink instance, as the addon keeps them. */
export interface IoStats {
  /** Source: messages/rows the plugin pushed (accepted); sink: rows queued. */
  in: number;
  /** Source: items delivered to JS; sink: rows the plugin acknowledged (SP_OK). */
  out: number;
  dropped: number;
  errors: number;
  retries: number;
  /** Items (source) or batches (sink, the one in delivery included) waiting. */
  depth: number;
  lastLatencyMs: number;
  maxLatencyMs: number;
  state: 'connecting' | 'connected' | 'reconnecting' | 'error';
  message: string;
  lastError: string;
  /** Why open failed or the instance stopped for good; '' otherwise. */
  failure: string;
  opened: boolean;
  finished: boolean;
}

type RawSegment = { kind: 0; bytes: Buffer; length: number; starts: Uint32Array; ends: Uint32Array };
type RowSegment = { kind: 1; rows: Row[] };
type LinesSegment = { kind: 2; bytes: Buffer; count: number };
type Segment = RawSegment | RowSegment | LinesSegment;

/** An EncodedBatch over a Buffer of canonical JSON lines; rows() parses once, on demand. */
export class JsonLines implements EncodedBatch {
  private decoded?: Row[];
  constructor(
    readonly lines: Buffer,
    readonly count: number,
  ) {}

  rows(): Row[] {
    if (!this.decoded) {
      // Canonical lines hold no raw newline inside a value: newlines become commas of one array.
      const text = this.lines.toString('utf8', 0, this.lines.length - 1);
      const rows = JSON.parse('[' + text.replaceAll('\n', ',') + ']') as Row[];
      if (rows.length !== this.count) throw new StreamplugError('E_INTERNAL', `an encoded batch holds ${rows.length} rows, expected ${this.count}`);
      this.decoded = rows;
    }
    return this.decoded;
  }
}

/** A source instance as the connector drives it: in this process (the addon) or in a worker (isolated/io.ts). */
export interface AddonSource {
  drain(max: number): { segments: Segment[]; left: number } | null;
  stats(): IoStats;
  stop(): void;
  dispose(): void;
}

/** A sink instance as the connector drives it: in this process (the addon) or in a worker (isolated/io.ts). */
export interface AddonSink {
  readonly encoded: boolean;
  pushEncoded(text: string | Uint8Array, nrows: number): 0 | 1 | 2;
  pushColumns(nrows: number, names: string[], types: number[], values: unknown[], nulls: (Uint8Array | undefined)[]): 0 | 1 | 2;
  stats(): IoStats;
  stop(): void;
  abandon(): void;
  dispose(): void;
}

export interface IoDescription {
  sources: { name: string; flags: number; hasValidate: boolean; hasRun: boolean }[];
  sinks: { name: string; flags: number; hasValidate: boolean }[];
}

interface IoAddon {
  NativeSource: new (file: string, index: number, ruleId: string, config: string, opts: object, onWake: () => void) => AddonSource;
  NativeSink: new (file: string, index: number, ruleId: string, config: string, opts: object, onWake: () => void) => AddonSink;
  describeIo(file: string): IoDescription;
  validateIo(file: string, kind: 'source' | 'sink', index: number, config: string): void;
  /** Whether a message would be queued as a JSON line (pass-through): the producer-side check. */
  canonicalJson(text: string | Uint8Array): boolean;
  ioLive(): IoLive;
}

export function ioAddon(): IoAddon {
  return hostAddon() as unknown as IoAddon;
}

/**
 * What the native sources and sinks of this process hold right now. Every count is back to 0 once
 * each instance was stopped/closed and its JS object collected: an exact leak check.
 */
export interface IoLive {
  /** Native Source / Sink objects alive (the JS object, its wake function or its thread holds one). */
  sources: number;
  sinks: number;
  /** Control (source) and worker (sink) threads that have not returned. */
  threads: number;
  /** Messages/rows waiting in source queues. */
  queuedItems: number;
  /** Sink batches queued or being delivered. */
  sinkBatches: number;
  /** Blocks of drained JSON lines still lent to a Buffer or a sink batch. */
  lentLines: number;
}

export function ioLive(): IoLive {
  return ioAddon().ioLive();
}

/** Which native source or sink: the library file and the index in its table. */
export interface IoTarget {
  file: string;
  index: number;
  /** The TYPE / action name, for messages. */
  name: string;
  plugin: string;
  /** Where the instance runs; default: this process (the addon's NativeSource / NativeSink). */
  backend?: IoBackend;
}

/** Makes source and sink instances of one plugin; the isolated one lives in src/plugins/isolated/io.ts. */
export interface IoBackend {
  source(index: number, ruleId: string, config: string, opts: { capacity: number; overflow: Overflow; lines: boolean; batch: number }, onWake: () => void): AddonSource;
  sink(index: number, ruleId: string, config: string, opts: { capacity: number; maxRetries: number; backoffMs: number; maxBackoffMs: number }, onWake: () => void): AddonSink;
}

export interface NativeSourceOptions {
  /** Queue bound, in messages/rows. Default 1024. */
  capacity?: number;
  overflow?: Overflow;
  /** Most items per JS crossing. Default 1024. */
  batchSize?: number;
  /** How long stop() waits for the plugin's close. Default 5000 ms. */
  closeTimeoutMs?: number;
  format?: Format;
  ruleId?: string;
}

const isObject = (v: unknown): v is Row => typeof v === 'object' && v !== null && !Array.isArray(v);

function stateOf(s: IoStats): ConnectorStatus {
  if (s.state === 'error') return { state: 'error', error: s.failure || s.message || s.lastError };
  return s.message ? { state: s.state, error: s.message } : { state: s.state };
}

/** A list of callbacks run at the next wake. */
class Waiters {
  private list: (() => void)[] = [];
  wait(): Promise<void> {
    return new Promise((resolve) => this.list.push(resolve));
  }
  wakeAll(): void {
    const l = this.list;
    this.list = [];
    for (const f of l) f();
  }
}

function timeout(ms: number): { promise: Promise<'timeout'>; cancel: () => void } {
  let t: NodeJS.Timeout | undefined;
  const promise = new Promise<'timeout'>((resolve) => (t = setTimeout(() => resolve('timeout'), ms)));
  return { promise, cancel: () => clearTimeout(t) };
}

export class NativeSourceConnector implements SourceConnector {
  private handle?: AddonSource;
  private emitFn?: EmitFn;
  private emitEncodedFn?: EncodedEmitFn;
  private statusFn?: StatusFn;
  private lastStatus = '';
  private pumping = false;
  private scheduled = false;
  private flow?: FlowControl;
  /** Held back by the sinks (flow.saturated()) and waiting for room. */
  private heldBack = false;
  private stopping = false;
  private readonly waiters = new Waiters();
  private readonly m: SourceMetrics = { messagesIn: 0, rowsOut: 0, decodeErrors: 0 };
  private stopped?: Promise<void>;
  private closeTimedOut = false;
  readonly options: Required<Omit<NativeSourceOptions, 'ruleId'>> & { ruleId: string };

  constructor(
    readonly target: IoTarget,
    readonly config: string,
    opts: NativeSourceOptions = {},
  ) {
    this.options = {
      capacity: opts.capacity ?? 1024,
      overflow: opts.overflow ?? 'block',
      batchSize: opts.batchSize ?? 1024,
      closeTimeoutMs: opts.closeTimeoutMs ?? 5000,
      format: opts.format ?? 'json',
      ruleId: opts.ruleId ?? '',
    };
  }

  /** Resolves once the plugin's open succeeded; rejects (E_SOURCE_FAILED) when it failed. */
  async start(emit: EmitFn, onStatus: StatusFn, emitEncoded?: EncodedEmitFn, flow?: FlowControl): Promise<void> {
    if (this.handle) return;
    this.flow = flow;
    this.emitFn = emit;
    this.emitEncodedFn = emitEncoded;
    this.statusFn = onStatus;
    const { file, index } = this.target;
    const { capacity, overflow, batchSize } = this.options;
    const lines = this.options.format === 'json';
    const opts = { capacity, overflow, lines, batch: batchSize };
    this.handle = this.target.backend
      ? this.target.backend.source(index, this.options.ruleId, this.config, opts, () => this.wake())
      : new (ioAddon().NativeSource)(file, index, this.options.ruleId, this.config, opts, () => this.wake());
    for (;;) {
      const s = this.handle.stats();
      if (s.opened) return;
      if (s.finished || s.failure) {
        this.handle.dispose();
        throw new StreamplugError('E_SOURCE_FAILED', s.failure || `source ${this.target.name} ended before it opened`, { source: this.target.name });
      }
      await this.waiters.wait();
    }
  }

  /** Stops the plugin, delivers what it had queued, then resolves; E_CLOSE_TIMEOUT after closeTimeoutMs. */
  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    const h = this.handle;
    if (!h) return;
    this.stopping = true; // what the plugin queued is delivered now, held back or not
    h.stop();
    const t = timeout(this.options.closeTimeoutMs);
    const finished = (async () => {
      for (;;) {
        this.pump();
        const s = h.stats();
        if (s.finished && s.depth === 0) return 'done' as const;
        await this.waiters.wait();
      }
    })();
    const how = await Promise.race([finished, t.promise]);
    t.cancel();
    if (how === 'timeout') {
      this.closeTimedOut = true;
      this.pump(); // what was queued still counts
      h.dispose();
      const message = `source ${this.target.name} (plugin ${this.target.plugin}) did not finish closing within ${this.options.closeTimeoutMs} ms; it was abandoned and its library stays loaded until the hook returns`;
      this.statusFn?.({ state: 'error', error: message });
      throw new StreamplugError('E_CLOSE_TIMEOUT', message, { source: this.target.name });
    }
    h.dispose();
    this.statusFn?.({ state: 'stopped' });
  }

  metrics(): SourceMetrics & { native?: IoStats; closeTimedOut: boolean } {
    return { ...this.m, native: this.handle?.stats(), closeTimedOut: this.closeTimedOut };
  }

  stats(): IoStats | undefined {
    return this.handle?.stats();
  }

  private wake(): void {
    this.pump();
    this.waiters.wakeAll();
  }

  /** Pulls one batch; more batches follow on later turns of the event loop, so I/O keeps running. */
  private pump(): void {
    const h = this.handle;
    if (!h || this.pumping) return;
    // Backpressure: while a rule's sinks are full, rows stay in the plugin's bounded queue, whose
    // overflow policy (block the plugin's push, or drop and count) then applies.
    if (!this.stopping && this.flow?.saturated()) {
      if (!this.heldBack) {
        this.heldBack = true;
        void this.flow.whenRoom().then(() => {
          this.heldBack = false;
          this.pump();
          this.waiters.wakeAll();
        });
      }
      return;
    }
    this.pumping = true;
    let left = 0;
    try {
      const res = h.drain(this.options.batchSize);
      if (res) {
        left = res.left;
        for (const seg of res.segments) this.emitSegment(seg);
      }
      const s = h.stats();
      const status = stateOf(s);
      const key = `${status.state}\u0000${status.error ?? ''}`;
      if (key !== this.lastStatus) {
        this.lastStatus = key;
        this.statusFn?.(status);
      }
    } finally {
      this.pumping = false;
    }
    if (left > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
        this.waiters.wakeAll();
      });
    }
  }

  private emitSegment(seg: Segment): void {
    const emit = this.emitFn!;
    if (seg.kind === 2) {
      this.m.messagesIn += seg.count;
      this.m.rowsOut += seg.count;
      const batch = new JsonLines(seg.bytes, seg.count);
      if (this.emitEncodedFn) this.emitEncodedFn(batch, { ts: Date.now() });
      else emit(batch.rows(), { ts: Date.now() });
      return;
    }
    if (seg.kind === 1) {
      this.m.messagesIn += seg.rows.length;
      this.m.rowsOut += seg.rows.length;
      emit(seg.rows, { ts: Date.now() });
      return;
    }
    const n = seg.starts.length;
    this.m.messagesIn += n;
    if (this.options.format === 'json') {
      // One parse for the whole batch ("[m0,m1,...]"); any message that is not exactly one object
      // makes the count or shape differ, and the batch is decoded message by message instead.
      try {
        const all: unknown = JSON.parse(seg.bytes.toString('utf8', 0, seg.length));
        if (Array.isArray(all) && all.length === n && all.every(isObject)) {
          this.m.rowsOut += n;
          emit(all as Row[], { ts: Date.now() });
          return;
        }
      } catch {
        // fall through
      }
    }
    const rows: Row[] = [];
    for (let i = 0; i < n; i++) {
      const res = decode(this.options.format, seg.bytes.subarray(seg.starts[i], seg.ends[i]));
      if (res.ok) {
        for (const r of res.rows) rows.push(r);
      } else {
        this.m.decodeErrors++;
        this.m.lastDecodeError = res.error;
      }
    }
    this.m.rowsOut += rows.length;
    if (rows.length > 0) emit(rows, { ts: Date.now() });
  }
}

export interface NativeSinkOptions {
  /** Batches queued for the worker thread. Default 16. */
  capacity?: number;
  /** SP_RETRY attempts per batch before it is dropped; -1 retries forever. Default 5. */
  maxRetries?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  closeTimeoutMs?: number;
  ruleId?: string;
  /** The sink takes JSON lines (SP_SINK_ENCODED): it then gets collectEncoded. */
  encoded?: boolean;
  /**
   * collect() resolves only once the plugin took the batch (SP_OK) and rejects when it was not
   * taken (its retries spent): the SinkRunner then owns retries and the sink cache (enableCache).
   * Default false: collect() resolves once the batch is queued for the worker thread.
   */
  confirm?: boolean;
}

const SP_TYPE = { bool: 1, int64: 2, float64: 3, string: 4 } as const;

/** Rows -> typed columns (plugin.h, sp_batch): one column per field seen in the batch. */
export function toColumns(rows: readonly Row[]): { names: string[]; types: number[]; values: unknown[]; nulls: (Uint8Array | undefined)[] } {
  const n = rows.length;
  const fields = new Map<string, unknown[]>();
  rows.forEach((row, i) => {
    for (const k in row) {
      let col = fields.get(k);
      if (!col) fields.set(k, (col = new Array(n).fill(undefined)));
      col[i] = row[k];
    }
  });
  const names: string[] = [], types: number[] = [], values: unknown[] = [], nulls: (Uint8Array | undefined)[] = [];
  for (const [name, cells] of fields) {
    let kind: 'number' | 'bigint' | 'boolean' | 'string' | 'json' | undefined;
    let mask: Uint8Array | undefined;
    cells.forEach((v, i) => {
      if (v === undefined || v === null) {
        (mask ??= new Uint8Array(n))[i] = 1;
        return;
      }
      const t = typeof v;
      const k = t === 'number' || t === 'bigint' || t === 'boolean' || t === 'string' ? t : 'json';
      kind = kind === undefined ? k : kind === k ? kind : (kind === 'number' && k === 'bigint') || (kind === 'bigint' && k === 'number') ? 'number' : 'json';
    });
    names.push(name);
    nulls.push(mask);
    if (kind === 'number') {
      types.push(SP_TYPE.float64);
      values.push(Float64Array.from(cells, (v) => (v === undefined || v === null ? 0 : Number(v))));
    } else if (kind === 'bigint') {
      types.push(SP_TYPE.int64);
      values.push(BigInt64Array.from(cells, (v) => (typeof v === 'bigint' ? v : 0n)));
    } else if (kind === 'boolean') {
      types.push(SP_TYPE.bool);
      values.push(Uint8Array.from(cells, (v) => (v === true ? 1 : 0)));
    } else {
      types.push(SP_TYPE.string);
      values.push(cells.map((v) => (v === undefined || v === null ? '' : kind === 'string' ? String(v) : toJson(v))));
    }
  }
  return { names, types, values, nulls };
}

/** JSON lines, each row followed by "\n" (JSON.stringify never emits a raw newline). */
export function toJsonLines(rows: readonly Row[]): string {
  let out = '';
  for (const r of rows) {
    let s: string;
    try {
      s = JSON.stringify(r);
    } catch {
      s = toJson(r); // bigint
    }
    out += s + '\n';
  }
  return out;
}

export class NativeSinkConnector implements SinkConnector {
  private handle?: AddonSink;
  private readonly waiters = new Waiters();
  private closed?: Promise<void>;
  private fatalFn?: (reason: string) => void;
  closeTimedOut = false;
  readonly options: Required<Omit<NativeSinkOptions, 'ruleId' | 'encoded' | 'confirm'>> & { ruleId: string; confirm: boolean };
  /** Present when the plugin takes JSON lines: the batch's bytes go to its worker as they are. */
  readonly collectEncoded?: (batch: EncodedBatch) => Promise<void>;

  constructor(
    readonly target: IoTarget,
    readonly config: string,
    opts: NativeSinkOptions = {},
  ) {
    if (opts.encoded) this.collectEncoded = (batch) => this.push(batch.lines, batch.count);
    this.options = {
      capacity: opts.capacity ?? 16,
      maxRetries: opts.maxRetries ?? 5,
      backoffMs: opts.backoffMs ?? 100,
      maxBackoffMs: opts.maxBackoffMs ?? 5000,
      closeTimeoutMs: opts.closeTimeoutMs ?? 5000,
      ruleId: opts.ruleId ?? '',
      confirm: opts.confirm ?? false,
    };
  }

  /** Starts the worker; resolves once the plugin's open succeeded (after its retries), rejects E_SINK_FAILED. */
  async open(): Promise<void> {
    if (this.handle) return;
    const { capacity, maxRetries, backoffMs, maxBackoffMs } = this.options;
    const opts = { capacity, maxRetries, backoffMs, maxBackoffMs };
    const onWake = (): void => this.wake();
    this.handle = this.target.backend
      ? this.target.backend.sink(this.target.index, this.options.ruleId, this.config, opts, onWake)
      : new (ioAddon().NativeSink)(this.target.file, this.target.index, this.options.ruleId, this.config, opts, onWake);
    for (;;) {
      const s = this.handle.stats();
      if (s.opened) return;
      if (s.finished) {
        this.handle.dispose();
        throw new StreamplugError('E_SINK_FAILED', s.failure || `sink ${this.target.name} ended before it opened`, { sink: this.target.name });
      }
      await this.waiters.wait();
    }
  }

  watchFatal(fn: (reason: string) => void): void {
    this.fatalFn = fn;
  }

  /**
   * The worker moved (a batch delivered, a status change, the thread finished). A worker that
   * finished while nobody closed it died of a fatal collect (SP_ERROR): said once, as it happens,
   * not only at the next collect.
   */
  private wake(): void {
    this.waiters.wakeAll();
    const h = this.handle;
    if (!this.fatalFn || !h || this.closed) return;
    const s = h.stats();
    if (s.opened && s.finished && s.failure) {
      const fn = this.fatalFn;
      this.fatalFn = undefined;
      fn(s.failure);
    }
  }

  /** Queues the rows for the worker thread; waits only while the native queue is full. */
  async collect(rows: Row[]): Promise<void> {
    const h = this.handle;
    if (!h) throw new StreamplugError('E_SINK_FAILED', `sink ${this.target.name} is not open; call open() first`);
    if (rows.length === 0) return;
    if (h.encoded) return this.push(toJsonLines(rows), rows.length);
    const cols = toColumns(rows);
    return this.push(cols, rows.length);
  }

  /** Queues JSON lines (text or bytes) or typed columns; waits only while the native queue is full. */
  private async push(data: string | Uint8Array | ReturnType<typeof toColumns>, nrows: number): Promise<void> {
    const h = this.handle;
    if (!h) throw new StreamplugError('E_SINK_FAILED', `sink ${this.target.name} is not open; call open() first`);
    if (nrows === 0) return;
    // confirm: the runner sends one message at a time, so the rows acknowledged or dropped after this
    // push are this batch's.
    const before = this.options.confirm ? h.stats() : undefined;
    for (;;) {
      const code =
        typeof data === 'string' || data instanceof Uint8Array
          ? h.pushEncoded(data, nrows)
          : h.pushColumns(nrows, data.names, data.types, data.values, data.nulls);
      if (code === 0) return before ? this.confirmed(h, before, nrows) : undefined;
      if (code === 2) {
        const s = h.stats();
        throw new StreamplugError('E_SINK_FAILED', s.failure || `sink ${this.target.name} is closing; rows cannot be collected`, { sink: this.target.name });
      }
      await this.waiters.wait();
    }
  }

  /** Waits until the worker acknowledged (SP_OK) or dropped the batch just pushed; rejects on a drop. */
  private async confirmed(h: AddonSink, before: IoStats, nrows: number): Promise<void> {
    for (;;) {
      const s = h.stats();
      if (s.dropped > before.dropped)
        throw new StreamplugError('E_SINK_FAILED', s.lastError || `sink ${this.target.name} did not take the batch`, { sink: this.target.name });
      if (s.out - before.out >= nrows) return;
      if (s.finished)
        throw new StreamplugError('E_SINK_FAILED', s.failure || `sink ${this.target.name} stopped before taking the batch`, { sink: this.target.name });
      await this.waiters.wait();
    }
  }

  /** Delivers what is queued, closes (flush); E_CLOSE_TIMEOUT when that takes longer than closeTimeoutMs. */
  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    const h = this.handle;
    if (!h) return;
    h.stop();
    const t = timeout(this.options.closeTimeoutMs);
    const finished = (async () => {
      while (!h.stats().finished) await this.waiters.wait();
      return 'done' as const;
    })();
    const how = await Promise.race([finished, t.promise]);
    t.cancel();
    if (how === 'timeout') {
      this.closeTimedOut = true;
      h.abandon();
      h.dispose();
      const s = h.stats();
      throw new StreamplugError(
        'E_CLOSE_TIMEOUT',
        `sink ${this.target.name} (plugin ${this.target.plugin}) did not finish delivering and closing within ${this.options.closeTimeoutMs} ms (${s.depth} batch(es) pending); it was abandoned and its library stays loaded until the hook returns`,
        { sink: this.target.name },
      );
    }
    h.dispose();
  }

  stats(): IoStats | undefined {
    return this.handle?.stats();
  }

  status(): ConnectorStatus {
    const s = this.handle?.stats();
    return s ? stateOf(s) : { state: 'stopped' };
  }
}
