/**
 * A bound on the rows a time window holds (rule option `maxWindowRows`): a window that would grow
 * past it takes the rows that fit and refuses the rest, which are counted as errors of the window
 * operator (E_WINDOW_FULL), never held. Count windows are bounded by their own size, so the rule
 * refuses a COUNTWINDOW larger than the bound when it compiles instead.
 */
import { StreamplugError } from '../errors.js';
import type { Row } from './builtins.js';
import type { Emission, WindowBuffer } from './windows.js';

export const DEFAULT_MAX_WINDOW_ROWS = 100_000;

export function limitWindow(inner: WindowBuffer, maxRows: number, onRefused: (err: StreamplugError, rows: number) => void): WindowBuffer {
  /** The rows that fit (and their trigger flags); reports the rest. */
  const fit = (rows: Row[], triggers?: boolean[]): [Row[], boolean[] | undefined] => {
    const room = Math.max(0, maxRows - inner.buffered());
    if (rows.length <= room) return [rows, triggers];
    const refused = rows.length - room;
    onRefused(
      new StreamplugError(
        'E_WINDOW_FULL',
        `window holds ${inner.buffered()} rows and maxWindowRows is ${maxRows}: ${refused} row(s) were refused; raise the rule option maxWindowRows or use a smaller window`,
        { buffered: inner.buffered(), maxWindowRows: maxRows, refused },
      ),
      refused,
    );
    return [rows.slice(0, room), triggers?.slice(0, room)];
  };
  return {
    push(rows: Row[], ts: number, triggers?: boolean[]): Emission[] {
      const [r, t] = fit(rows, triggers);
      return r.length || rows.length === 0 ? inner.push(r, ts, t) : [];
    },
    insert(rows: Row[], ts: number, triggers?: boolean[]): Emission[] {
      const [r, t] = fit(rows, triggers);
      return r.length || rows.length === 0 ? inner.insert(r, ts, t) : [];
    },
    advance: (now) => inner.advance(now),
    nextDeadline: () => inner.nextDeadline(),
    buffered: () => inner.buffered(),
    clear: () => inner.clear(),
  };
}
