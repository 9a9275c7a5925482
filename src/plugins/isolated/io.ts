/**
 * Sources and sinks of an isolated plugin. io.cc's Source and Sink run in the worker as they do in
 * the host (the same queues, threads, retries and counters); this side is the AddonSource /
 * AddonSink the connectors in native-io.ts drive, over the shared-memory channel:
 *   source: the worker writes a wake line when its queue gets items (coalesced until the next
 *     drain); a drain moves up to batchSize items as one block through the arena (DrainBlock in
 *     native/isolated/channel.h), so the cost per row is a copy, not a crossing;
 *   sink: a batch (JSON lines or typed columns) is written into the arena and copied into the
 *     worker's queue in one request; SP_RETRY / SP_ERROR are the worker's Sink's business.
 * Every io response carries the instance's counters (IoStats, JSON). When the worker dies the
 * instance is gone: stats say state "error", finished, and name the crash (E_PLUGIN_CRASHED); the
 * supervisor restarts the worker (backoff, quarantine), and a rule restarted afterwards opens a
 * new instance there.
 */
import { StreamplugError } from '../../errors.js';
import type { AddonSink, AddonSource, IoBackend, IoDescription, IoStats, Overflow } from '../native-io.js';
import type { IoHost } from '../io-connectors.js';
import type { Row } from '../../connectors/types.js';
import { OP, SLOT, STATUS } from './protocol.js';
import type { IsolatedWorker } from './worker.js';

const OVERFLOW: Record<Overflow, number> = { block: 0, 'drop-oldest': 1, 'drop-newest': 2 };
const pad4 = (n: number): number => (n + 3) & ~3;
/** A worker's wake line can be lost when its stdout pipe is full: look again at least this often. */
const POLL_MS = 50;
/** The out area each source keeps for its drains; a larger block asks for a one-off area. */
const DRAIN_AREA = 256 * 1024;

const EMPTY: IoStats = {
  in: 0, out: 0, dropped: 0, errors: 0, retries: 0, depth: 0, lastLatencyMs: 0, maxLatencyMs: 0,
  state: 'connecting', message: '', lastError: '', failure: '', opened: false, finished: false,
};

type Segment = ReturnType<AddonSource['drain']> extends infer R ? (R extends { segments: (infer S)[] } ? S : never) : never;

/** One source or sink instance in the worker: its id, the worker process it lives in, its last counters. */
class IoInstance {
  readonly id: number;
  private readonly generation: number;
  protected last: IoStats = EMPTY;
  /** `last` came with the latest response (a drain, a push) and nothing was asked since: stats() need not ask. */
  private fresh = false;
  /** Why the instance ended with its worker ('' while it lives); the supervisor's line once it has one. */
  private dead = '';
  private readonly hook: string;
  private disposed = false;
  protected get isDisposed(): boolean {
    return this.disposed;
  }
  private readonly poll: NodeJS.Timeout;

  constructor(
    protected readonly w: IsolatedWorker,
    private readonly kind: 1 | 2,
    index: number,
    private readonly rule: string,
    config: string,
    options: number[],
    private readonly onWake: () => void,
  ) {
    this.id = w.ioId();
    this.generation = w.generation;
    const name = kind === 1 ? w.description.io.sources[index]?.name : w.description.io.sinks[index]?.name;
    this.hook = `${kind === 1 ? 'source' : 'sink'} ${name ?? `#${index}`}`;
    const r = Buffer.from(rule, 'utf8'), c = Buffer.from(config, 'utf8');
    const size = 24 + r.length + c.length;
    const at = w.temp(size);
    try {
      const head = new Uint32Array(w.channel.buffer, at, 6);
      head.set([r.length, c.length, ...options.map((o) => o >>> 0)]);
      w.bytes.set(r, at + 24);
      w.bytes.set(c, at + 24 + r.length);
      w.ioWakes.set(this.id, { wake: () => this.wake(), hook: this.hook, rule });
      const status = w.request(OP.ioOpen, this.id, [kind | (index << 8), at, size], this.ctx());
      if (status !== STATUS.ok) throw new StreamplugError('E_ISOLATION', `plugin ${w.description.name}: ${w.message()}`);
      this.take();
    } catch (err) {
      w.ioWakes.delete(this.id);
      throw err;
    } finally {
      w.arena.release(at);
    }
    this.poll = setInterval(() => this.wake(), POLL_MS);
    this.poll.unref();
  }

  /** What a crash during a request is blamed on: the source or sink (its threads run plugin code all along). */
  protected ctx(): { hook: string; rule?: string } {
    return { hook: this.hook, rule: this.rule || undefined };
  }

  private wake(): void {
    if (!this.disposed) this.onWake();
  }

  /** The worker that holds this instance is gone (crashed, restarted, unloaded). */
  protected gone(): boolean {
    const s = this.w.status().state;
    if (!this.dead && (s !== 'ready' || this.w.generation !== this.generation)) {
      this.dead = `plugin ${this.w.description.name}: its isolated worker is ${s}; this instance ended with it`;
    }
    // The exit (with its signal) is seen after the failed request: then the supervisor's line says it all.
    if (this.dead && this.w.crashedGeneration === this.generation && this.w.lastCrash) this.dead = this.w.lastCrash;
    return this.dead !== '';
  }

  /** One request; false when the worker is (or just went) away. */
  protected ask(op: number, args: number[], arg3 = 0): boolean {
    // Disposed: the worker forgot the instance; a late pump or stop is a no-op, as in-process.
    if (this.disposed || this.gone()) return false;
    try {
      this.w.slots[SLOT.arg3] = arg3;
      const status = this.w.request(op, this.id, args, this.ctx());
      if (status === STATUS.badRequest) throw new StreamplugError('E_ISOLATION', `plugin ${this.w.description.name}: ${this.w.message()}`);
      this.take();
      return true;
    } catch (err) {
      const e = err as StreamplugError;
      if (e.code === 'E_ISOLATION') throw err;
      this.dead = e.code ? `${e.code}: ${e.message}` : e.message;
      this.gone();
      return false;
    }
  }

  /** The counters in the response. */
  protected take(): void {
    const text = this.w.message();
    if (text.startsWith('{')) {
      this.last = JSON.parse(text) as IoStats;
      // Fresh for the rest of this synchronous run only (pump: drain, then stats), never stale later.
      if (!this.fresh) queueMicrotask(() => (this.fresh = false));
      this.fresh = true;
    }
  }

  stats(): IoStats {
    // A connector reads stats right after each drain: the drain's reply carried them.
    if (this.fresh) this.fresh = false;
    else if (!this.gone() && !this.disposed) this.ask(OP.ioStats, []);
    if (this.gone()) {
      // What the worker held when it died is lost: a sink's rows not yet acknowledged, a source's queued items.
      const lost = this.kind === 2 ? Math.max(0, this.last.in - this.last.out - this.last.dropped) : this.last.depth;
      return { ...this.last, dropped: this.last.dropped + lost, depth: 0, state: 'error', failure: this.dead, message: this.dead, finished: true };
    }
    return { ...this.last };
  }

  stop(): void {
    this.ask(OP.ioStop, []);
  }

  dispose(): void {
    if (this.disposed) return;
    this.ask(OP.ioDispose, []);
    this.disposed = true;
    clearInterval(this.poll);
    this.w.ioWakes.delete(this.id);
  }
}

class IsolatedSource extends IoInstance implements AddonSource {
  private area = -1;

  drain(max: number): { segments: Segment[]; left: number } | null {
    if (this.isDisposed || this.gone()) return null;
    const w = this.w;
    if (this.area < 0) this.area = w.temp(DRAIN_AREA);
    let at = this.area, extra = -1;
    try {
      if (!this.ask(OP.sourceDrain, [at, DRAIN_AREA, Math.max(1, max)])) return null;
      let status = w.slots[SLOT.status];
      if (status === STATUS.needSpace) {
        const need = w.slots[SLOT.r0];
        at = extra = w.temp(need);
        if (!this.ask(OP.sourceDrain, [at, need, Math.max(1, max)])) return null;
        status = w.slots[SLOT.status];
      }
      if (status !== STATUS.ok) throw new StreamplugError('E_ISOLATION', `plugin ${w.description.name}: drain answered status ${status}`);
      return { segments: decodeDrain(w, at, w.slots[SLOT.r0]), left: w.slots[SLOT.r1] };
    } finally {
      if (extra >= 0) w.arena.release(extra);
    }
  }

  override dispose(): void {
    super.dispose();
    if (this.area >= 0) this.w.arena.release(this.area);
    this.area = -1;
  }
}

/** DrainBlock (channel.h) -> the segments NativeSourceConnector emits. Copies out of the arena. */
function decodeDrain(w: IsolatedWorker, at: number, bytes: number): Segment[] {
  const buf = w.channel.buffer;
  const view = new DataView(buf, at, bytes);
  const n = view.getUint32(0, true);
  const out: Segment[] = [];
  let p = 4;
  for (let s = 0; s < n; s++) {
    const kind = view.getUint32(p, true), count = view.getUint32(p + 4, true), length = view.getUint32(p + 8, true);
    p += 12;
    const ends = new Uint32Array(buf.slice(at + p, at + p + 4 * count));
    p += 4 * count;
    const data = Buffer.from(buf.slice(at + p, at + p + length));
    if (kind === 2) {
      out.push({ kind: 2, bytes: data, count });
    } else if (kind === 0) {
      // "[m0,m1,...]": message i starts one byte after the previous end (the "[" or a comma)
      const starts = new Uint32Array(count);
      for (let i = 0; i < count; i++) starts[i] = (i === 0 ? 0 : ends[i - 1]) + 1;
      out.push({ kind: 0, bytes: data, length, starts, ends });
    } else {
      const rows: Row[] = [];
      for (let i = 0; i < count; i++) rows.push(decodeRow(data, i === 0 ? 0 : ends[i - 1], ends[i]));
      out.push({ kind: 1, rows });
    }
    p += pad4(length);
  }
  return out;
}

/** One RowBuilder row (io.h): [u8 type][u16 name length][name][value]...; as io_wrap.cc's DecodeRow. */
function decodeRow(b: Buffer, from: number, to: number): Row {
  const row: Row = {};
  let p = from;
  while (p + 3 <= to) {
    const type = b[p];
    const nlen = b.readUInt16LE(p + 1);
    p += 3;
    if (p + nlen > to) break;
    const name = b.toString('utf8', p, p + nlen);
    p += nlen;
    if (type === 0) row[name] = null;
    else if (type === 1) {
      row[name] = p < to && b[p] !== 0;
      p += 1;
    } else if (type === 2) {
      const v = p + 8 <= to ? b.readBigInt64LE(p) : 0n;
      p += 8;
      row[name] = v >= -(1n << 53n) && v <= 1n << 53n ? Number(v) : v;
    } else if (type === 3) {
      row[name] = p + 8 <= to ? b.readDoubleLE(p) : 0;
      p += 8;
    } else if (type === 4) {
      let len = p + 4 <= to ? b.readUInt32LE(p) : 0;
      p += 4;
      if (p + len > to) len = to - p;
      row[name] = b.toString('utf8', p, p + len);
      p += len;
    } else break;
  }
  return row;
}

class IsolatedSink extends IoInstance implements AddonSink {
  constructor(w: IsolatedWorker, readonly encoded: boolean, ...rest: [number, string, string, number[], () => void]) {
    super(w, 2, ...rest);
  }

  private push(bytes: number, nrows: number, write: (at: number) => void, lines: boolean): 0 | 1 | 2 {
    if (this.gone()) return 2;
    const at = this.w.temp(bytes);
    try {
      write(at);
      if (!this.ask(OP.sinkPush, [at, bytes, nrows], lines ? 1 : 0)) return 2;
      return this.w.slots[SLOT.r0] as 0 | 1 | 2;
    } finally {
      this.w.arena.release(at);
    }
  }

  pushEncoded(text: string | Uint8Array, nrows: number): 0 | 1 | 2 {
    const b = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    return this.push(b.byteLength, nrows, (at) => this.w.bytes.set(b, at), true);
  }

  pushColumns(nrows: number, names: string[], types: number[], values: unknown[], nulls: (Uint8Array | undefined)[]): 0 | 1 | 2 {
    // SinkColumns (channel.h), assembled in parts and copied once.
    const parts: Uint8Array[] = [];
    const u32 = (...v: number[]): void => void parts.push(new Uint8Array(Uint32Array.from(v).buffer));
    const padded = (b: Uint8Array): void => {
      parts.push(b);
      if (pad4(b.byteLength) > b.byteLength) parts.push(new Uint8Array(pad4(b.byteLength) - b.byteLength));
    };
    u32(names.length);
    names.forEach((name, c) => {
      u32(types[c], nulls[c] ? 1 : 0);
      const nb = Buffer.from(name, 'utf8');
      u32(nb.length);
      padded(nb);
      const v = values[c];
      if (Array.isArray(v)) {
        const strings = v.map((s) => Buffer.from(typeof s === 'string' ? s : '', 'utf8'));
        const offsets = new Uint32Array(nrows + 1);
        for (let r = 0; r < nrows; r++) offsets[r + 1] = offsets[r] + (strings[r]?.length ?? 0);
        parts.push(new Uint8Array(offsets.buffer));
        padded(Buffer.concat(strings.slice(0, nrows)));
      } else {
        const t = v as Uint8Array | Float64Array | BigInt64Array;
        padded(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
      }
      if (nulls[c]) padded(nulls[c]!.subarray(0, nrows));
    });
    const total = parts.reduce((n, b) => n + b.byteLength, 0);
    return this.push(total, nrows, (at) => {
      let p = at;
      for (const b of parts) {
        this.w.bytes.set(b, p);
        p += b.byteLength;
      }
    }, false);
  }

  abandon(): void {
    this.ask(OP.ioAbandon, []);
  }
}

/** The IoHost of an isolated plugin: its sources and sinks run in `w`. */
export function isolatedIo(w: IsolatedWorker): IoHost {
  const backend: IoBackend = {
    source: (index, ruleId, config, o, onWake) =>
      new IsolatedSource(w, 1, index, ruleId, config, [o.capacity, OVERFLOW[o.overflow] ?? 0, o.lines ? 1 : 0, o.batch], onWake),
    sink: (index, ruleId, config, o, onWake) => {
      const encoded = ((w.description.io.sinks[index]?.flags ?? 0) & 0x1) !== 0; // SP_SINK_ENCODED
      return new IsolatedSink(w, encoded, index, ruleId, config, [o.capacity, o.maxRetries, o.backoffMs, o.maxBackoffMs], onWake);
    },
  };
  return {
    describe: (): IoDescription => w.description.io,
    validate: (kind, index, config) => {
      const c = Buffer.from(config, 'utf8');
      const at = w.temp(c.length);
      try {
        w.bytes.set(c, at);
        const status = w.request(OP.ioValidate, 0, [(kind === 'source' ? 1 : 2) | (index << 8), at, c.length], { hook: `validate (${kind})` });
        if (status === STATUS.pluginError) throw new StreamplugError('E_CONNECTOR_CONFIG', w.message());
        if (status !== STATUS.ok) throw new StreamplugError('E_ISOLATION', `plugin ${w.description.name}: ${w.message()}`);
      } finally {
        w.arena.release(at);
      }
    },
    backend,
  };
}
