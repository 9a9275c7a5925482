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
  return {
    push(rows: Row[], ts: number): Emission[] {
      const room = Math.max(0, maxRows - inner.buffered());
      if (rows.length <= room) return inner.push(rows, ts);
      const refused = rows.length - room;
      onRefused(
        new StreamplugError(
          'E_WINDOW_FULL',
          `window holds ${inner.buffered()} rows and maxWindowRows is ${maxRows}: ${refused} row(s) were refused; raise the rule option maxWindowRows or use a smaller window`,
          { buffered: inner.buffered(), maxWindowRows: maxRows, refused },
        ),
        refused,
      );
      return room > 0 ? inner.push(rows.slice(0, room), ts) : [];
    },
    advance: (now) => inner.advance(now),
    nextDeadline: () => inner.nextDeadline(),
    buffered: () => inner.buffered(),
    clear: () => inner.clear(),
  };
}
