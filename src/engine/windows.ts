/**
 * Window buffers over processing time. Time moves only through push(ts) and advance(now): the engine
 * owns no timers, so a caller (or a test) drives the clock.
 *
 * - tumbling(size): windows [k*size, (k+1)*size), aligned to the epoch; emitted once time reaches the end.
 * - hopping(size, hop): windows [e-size, e) for every e that is a multiple of hop.
 * - sliding(size): every arriving row emits the rows of (ts-size, ts].
 * - session(maxDuration, timeout): opens on a row; closes once no row came for `timeout`, or `maxDuration`
 *   after it opened; [first row ts, min(last ts + timeout, first ts + maxDuration)).
 * - count(n[, hop]): n rows per window; with hop, every hop-th row emits the latest n once n have arrived.
 * Empty windows emit nothing.
 */
import type { TimeUnit, WindowSpec } from './ast.js';
import type { Row } from './builtins.js';

export interface Emission {
  rows: Row[];
  start: number;
  end: number;
}

export interface WindowBuffer {
  /** `triggers`: per row, whether it may trigger a sliding window (OVER (WHEN …)); default all. */
  push(rows: Row[], ts: number, triggers?: boolean[]): Emission[];
  /**
   * Event time: adds rows at their own time without moving time (a row may be older than the last
   * one); only windows that rows themselves trigger (sliding, count, a session gap) emit here.
   */
  insert(rows: Row[], ts: number, triggers?: boolean[]): Emission[];
  advance(now: number): Emission[];
  /** The earliest time at which advance() would emit, if time alone can close a window. */
  nextDeadline(): number | undefined;
  buffered(): number;
  clear(): void;
}

const UNIT_MS: Record<TimeUnit, number> = { MS: 1, SS: 1000, MI: 60_000, HH: 3_600_000, DD: 86_400_000 };

export function unitMs(u: TimeUnit): number {
  return UNIT_MS[u];
}

export function createWindow(w: WindowSpec, eventTime = false): WindowBuffer {
  switch (w.type) {
    case 'tumbling':
      return new HoppingWindow(w.size * UNIT_MS[w.unit], w.size * UNIT_MS[w.unit], eventTime ? 0 : undefined);
    case 'hopping':
      return new HoppingWindow(w.size * UNIT_MS[w.unit], w.hop * UNIT_MS[w.unit], eventTime ? w.hop * UNIT_MS[w.unit] : undefined);
    case 'sliding':
      return new SlidingWindow(w.size * UNIT_MS[w.unit], (w.delay ?? 0) * UNIT_MS[w.unit]);
    case 'session':
      return new SessionWindow(w.maxDuration * UNIT_MS[w.unit], w.timeout * UNIT_MS[w.unit]);
    case 'count':
      return new CountWindow(w.size, w.hop);
  }
}

interface Entry {
  ts: number;
  row: Row;
}

class HoppingWindow implements WindowBuffer {
  private buf: Entry[] = [];
  private nextEnd: number | undefined;
  private firstTs: number | undefined;
  /**
   * Event time: eKuiper starts the first windows no earlier than the first row's time minus this
   * (0 for tumbling, the hop for hopping windows), which window_start() shows.
   */
  constructor(private readonly size: number, private readonly hop: number, private readonly startLag?: number) {}

  private firstEndAfter(ts: number): number {
    return Math.floor(ts / this.hop) * this.hop + this.hop;
  }

  advance(now: number): Emission[] {
    const out: Emission[] = [];
    while (this.nextEnd !== undefined && this.nextEnd <= now) {
      const end = this.nextEnd;
      const start = end - this.size;
      // in time order: with event time, rows may have come out of order (the sort is stable)
      const rows = this.buf.filter((x) => x.ts >= start && x.ts < end).sort((a, b) => a.ts - b.ts).map((x) => x.row);
      const shown = this.startLag !== undefined && this.firstTs !== undefined ? Math.max(start, this.firstTs - this.startLag) : start;
      if (rows.length) out.push({ rows, start: shown, end });
      const next = end + this.hop;
      this.buf = this.buf.filter((x) => x.ts >= next - this.size);
      if (this.buf.length === 0) this.nextEnd = undefined;
      else {
        // skip the empty windows of a long quiet spell in one step
        const minTs = this.buf.reduce((m, x) => Math.min(m, x.ts), Infinity);
        this.nextEnd = Math.max(next, this.firstEndAfter(minTs));
      }
    }
    return out;
  }

  push(rows: Row[], ts: number): Emission[] {
    const out = this.advance(ts);
    return out.concat(this.insert(rows, ts));
  }

  insert(rows: Row[], ts: number): Emission[] {
    if (rows.length === 0) return [];
    this.firstTs ??= ts;
    const first = this.firstEndAfter(ts);
    if (this.nextEnd === undefined || first < this.nextEnd) this.nextEnd = first;
    for (const row of rows) this.buf.push({ ts, row });
    return [];
  }

  nextDeadline(): number | undefined {
    return this.nextEnd;
  }
  buffered(): number {
    return this.buf.length;
  }
  clear(): void {
    this.buf = [];
    this.nextEnd = undefined;
  }
}

/**
 * Sliding: each (triggering) row emits the rows of (t - size, t + delay]; with a delay the emission
 * waits until time reaches t + delay, so rows of the next `delay` are in it too.
 */
class SlidingWindow implements WindowBuffer {
  private buf: Entry[] = [];
  private pending: number[] = [];
  constructor(private readonly size: number, private readonly delay = 0) {}

  private emission(t: number): Emission {
    const rows = this.buf.filter((x) => x.ts > t - this.size && x.ts <= t + this.delay).sort((a, b) => a.ts - b.ts).map((x) => x.row);
    return { rows, start: t - this.size, end: t + this.delay };
  }

  advance(now: number): Emission[] {
    const out: Emission[] = [];
    while (this.pending.length && this.pending[0] + this.delay <= now) {
      const e = this.emission(this.pending.shift()!);
      if (e.rows.length) out.push(e);
    }
    const oldest = Math.min(now, this.pending[0] ?? Infinity);
    this.buf = this.buf.filter((x) => x.ts > oldest - this.size);
    return out;
  }

  insert(rows: Row[], ts: number, triggers?: boolean[]): Emission[] {
    const out: Emission[] = [];
    rows.forEach((row, i) => {
      this.buf.push({ ts, row });
      if (triggers && !triggers[i]) return;
      if (this.delay === 0) out.push(this.emission(ts));
      else {
        this.pending.push(ts);
        this.pending.sort((a, b) => a - b);
      }
    });
    return out;
  }

  push(rows: Row[], ts: number, triggers?: boolean[]): Emission[] {
    const out = this.advance(ts);
    return out.concat(this.insert(rows, ts, triggers));
  }

  nextDeadline(): number | undefined {
    return this.pending.length ? this.pending[0] + this.delay : undefined;
  }
  buffered(): number {
    return this.buf.length;
  }
  clear(): void {
    this.buf = [];
    this.pending = [];
  }
}

/**
 * eKuiper's session window: it closes `timeout` after its last row, or at the first multiple of
 * `maxDuration` that is at least `maxDuration` after its first row (eKuiper checks the duration at
 * t = 0, max, 2·max, …). A session cut by the maximum is continued by a row within the timeout, and
 * that next window shows the cut as its start. Sessions are formed from the buffered rows in time
 * order when time (or the watermark) moves, so rows that came out of order still land in their session.
 */
class SessionWindow implements WindowBuffer {
  private pending: Entry[] = [];
  /** Where the last emitted session was cut by the maximum duration, and its last row. */
  private cut?: { at: number; last: number };
  constructor(private readonly maxDuration: number, private readonly timeout: number) {}

  private closeOf(first: number, last: number): number {
    const byMax = Math.ceil((first + this.maxDuration) / this.maxDuration) * this.maxDuration;
    return Math.min(last + this.timeout, byMax);
  }

  /** The sessions the buffered rows form, in order; each with the cut it leaves for the next. */
  private sessions(): { entries: Entry[]; start: number; end: number; last: number }[] {
    const sorted = [...this.pending].sort((a, b) => a.ts - b.ts);
    const out: { entries: Entry[]; start: number; end: number; last: number }[] = [];
    let cut = this.cut;
    let cur: { entries: Entry[]; first: number; last: number; start: number } | undefined;
    const finish = () => {
      const end = this.closeOf(cur!.first, cur!.last);
      out.push({ entries: cur!.entries, start: cur!.start, end, last: cur!.last });
      cut = end < cur!.last + this.timeout ? { at: end, last: cur!.last } : undefined;
      cur = undefined;
    };
    for (const e of sorted) {
      if (cur && e.ts >= this.closeOf(cur.first, cur.last)) finish();
      if (!cur) cur = { entries: [], first: e.ts, last: e.ts, start: cut && e.ts >= cut.at && e.ts < cut.last + this.timeout ? cut.at : e.ts };
      cur.entries.push(e);
      cur.last = Math.max(cur.last, e.ts);
    }
    if (cur) finish();
    return out;
  }

  advance(now: number): Emission[] {
    if (this.pending.length === 0) return [];
    const out: Emission[] = [];
    for (const s of this.sessions()) {
      if (s.end > now) break;
      out.push({ rows: s.entries.map((x) => x.row), start: s.start, end: s.end });
      const gone = new Set(s.entries);
      this.pending = this.pending.filter((x) => !gone.has(x));
      this.cut = s.end < s.last + this.timeout ? { at: s.end, last: s.last } : undefined;
    }
    return out;
  }

  push(rows: Row[], ts: number): Emission[] {
    const out = this.advance(ts);
    return out.concat(this.insert(rows, ts));
  }

  insert(rows: Row[], ts: number): Emission[] {
    for (const row of rows) this.pending.push({ ts, row });
    return [];
  }

  nextDeadline(): number | undefined {
    return this.pending.length ? this.sessions()[0]?.end : undefined;
  }
  buffered(): number {
    return this.pending.length;
  }
  clear(): void {
    this.pending = [];
    this.cut = undefined;
  }
}

class CountWindow implements WindowBuffer {
  private buf: Entry[] = [];
  private seen = 0;
  constructor(private readonly size: number, private readonly hop?: number) {}

  advance(): Emission[] {
    return [];
  }

  insert(rows: Row[], ts: number): Emission[] {
    return this.push(rows, ts);
  }

  push(rows: Row[], ts: number): Emission[] {
    const out: Emission[] = [];
    for (const row of rows) {
      this.buf.push({ ts, row });
      this.seen++;
      if (this.hop === undefined) {
        if (this.buf.length === this.size) {
          out.push(this.emit(this.buf));
          this.buf = [];
        }
      } else {
        if (this.buf.length > this.size) this.buf.shift();
        if (this.seen >= this.size && this.seen % this.hop === 0) out.push(this.emit(this.buf));
      }
    }
    return out;
  }

  private emit(entries: Entry[]): Emission {
    return { rows: entries.map((x) => x.row), start: entries[0].ts, end: entries[entries.length - 1].ts };
  }

  nextDeadline(): undefined {
    return undefined;
  }
  buffered(): number {
    return this.buf.length;
  }
  clear(): void {
    this.buf = [];
    this.seen = 0;
  }
}
