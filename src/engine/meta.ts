/**
 * What a source knows about a row besides its fields (eKuiper's meta(): the MQTT topic, …) and the
 * time the row is stamped with (event_time()). Kept beside the row, never in it, so that SELECT *
 * does not write it. Rows are shared by the rules reading a stream; this is read-only for them.
 */
import type { Row } from './builtins.js';

const metas = new WeakMap<object, Record<string, unknown>>();
const times = new WeakMap<object, number>();

/** Attaches source metadata (e.g. `{ topic }`) to a row. */
export function setRowMeta(row: Row, meta: Record<string, unknown>): void {
  metas.set(row, meta);
}

export function rowMeta(row: Row): Record<string, unknown> | undefined {
  return metas.get(row);
}

/** Copies meta and time onto a row derived from another (the schema makes new rows). */
export function carryMeta(from: Row, to: Row): void {
  const m = metas.get(from);
  if (m) metas.set(to, m);
  const t = times.get(from);
  if (t !== undefined) times.set(to, t);
}

/** Stamps a row's time; a row already stamped (shared by several rules) keeps it unless `replace`. */
export function setRowTime(row: Row, ts: number, replace = false): void {
  if (replace || !times.has(row)) times.set(row, ts);
}

export function rowTime(row: Row): number | undefined {
  return times.get(row);
}
