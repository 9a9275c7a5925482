/**
 * Window buffers in checkpoints (at-least-once across crashes, eKuiper's `qos: 1`).
 *
 * A narrow serialise/restore API that needs nothing from the window kinds themselves: in processing
 * time a window buffer always holds the most recent rows pushed into it (expiry, sliding and counting
 * all drop the oldest first), so the rows it holds are the last `buffered()` ones pushed. A journal of
 * those rows with their times is the window's state. Restoring pushes them, with their original
 * times, into a fresh buffer of the same kind and discards whatever that emits (it was emitted before
 * the checkpoint). Built-in aggregates are computed over the window's rows when it closes, so their
 * state is these rows too.
 *
 * Limits: processing-time windows only (in event time rows arrive out of order, so the premise fails;
 * the engine does not journal them). A COUNTWINDOW with a hop restores its rows, but its hop phase
 * starts again from them. Trigger flags (OVER (WHEN …)) are not kept: restored rows count as triggers.
 */
import type { Row } from './builtins.js';
import type { Emission, WindowBuffer } from './windows.js';

export interface WindowSnapshot {
  /** The rows the window holds, oldest first, with the processing time they arrived at. */
  entries: { ts: number; row: Row }[];
  /** The latest time the window was pushed or advanced to: windows ending by then were emitted. */
  now?: number;
}

export class JournaledWindow implements WindowBuffer {
  private journal: { ts: number; row: Row }[] = [];
  private now?: number;
  /** Bumped by every change, so an unchanged window is not saved again. */
  version = 0;

  constructor(private readonly inner: WindowBuffer) {}

  push(rows: Row[], ts: number, triggers?: boolean[]): Emission[] {
    for (const row of rows) this.journal.push({ ts, row });
    this.now = Math.max(this.now ?? ts, ts);
    const out = this.inner.push(rows, ts, triggers);
    this.trim();
    return out;
  }

  /** Event time (rows out of order): the engine does not journal such windows; kept for the interface. */
  insert(rows: Row[], ts: number, triggers?: boolean[]): Emission[] {
    for (const row of rows) this.journal.push({ ts, row });
    const out = this.inner.insert(rows, ts, triggers);
    this.trim();
    return out;
  }

  advance(now: number): Emission[] {
    const held = this.journal.length;
    const out = this.inner.advance(now);
    this.now = Math.max(this.now ?? now, now);
    // A tick that emits nothing and lets no row go changes nothing worth a new checkpoint.
    if (out.length || this.inner.buffered() !== held) this.trim();
    return out;
  }

  nextDeadline(): number | undefined {
    return this.inner.nextDeadline();
  }

  buffered(): number {
    return this.inner.buffered();
  }

  clear(): void {
    this.inner.clear();
    this.trim();
  }

  snapshot(): WindowSnapshot {
    return { entries: this.journal.slice(), ...(this.now !== undefined ? { now: this.now } : {}) };
  }

  /** Puts a snapshot's rows back; returns how many. Only into an empty window (a rule that just started). */
  restore(s: WindowSnapshot): number {
    if (!s || !Array.isArray(s.entries) || this.journal.length > 0) return 0;
    for (const e of s.entries) {
      if (typeof e?.ts !== 'number' || typeof e.row !== 'object' || e.row === null) continue;
      this.journal.push({ ts: e.ts, row: e.row });
      this.inner.push([e.row], e.ts); // emissions were delivered before the checkpoint
    }
    // Windows that ended by the checkpoint's time were emitted then: move past them silently.
    if (typeof s.now === 'number') {
      this.inner.advance(s.now);
      this.now = s.now;
    }
    this.trim();
    return this.journal.length;
  }

  private trim(): void {
    const keep = this.inner.buffered();
    if (this.journal.length > keep) this.journal = keep === 0 ? [] : this.journal.slice(this.journal.length - keep);
    this.version++;
  }
}
