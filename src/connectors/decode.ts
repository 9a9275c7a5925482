/**
 * Payload decoding for sources. FORMAT json: a JSON object, or an array of objects, per message.
 * FORMAT binary: the whole payload as one row `{ self: Uint8Array }` (eKuiper's name).
 * Bad input is counted and reported through the metrics, never thrown out of a source.
 */
import type { Row, SourceMetrics } from './types.js';
import { PropReader } from './props.js';

export type Format = 'json' | 'binary';

export function readFormat(p: PropReader): Format {
  return p.oneOf('FORMAT', ['json', 'binary'] as const, 'json');
}

/** eKuiper has no such limit; 1 MiB keeps one message from taking the host's memory. 0: no limit. */
export const DEFAULT_MAX_MESSAGE_SIZE = 1 << 20;

/** `maxMessageSize` (bytes) of a source: a larger message is refused and counted, never decoded. */
export function readMaxMessageSize(p: PropReader): number {
  return p.count('maxMessageSize', DEFAULT_MAX_MESSAGE_SIZE);
}

/** The refusal of a message over the limit, as a decode error the counters take. */
export function tooLarge(bytes: number, max: number): DecodeResult | undefined {
  if (max <= 0 || bytes <= max) return undefined;
  return { ok: false, tooLarge: true, error: `message of ${bytes} bytes is larger than maxMessageSize ${max}; it was dropped (raise maxMessageSize to accept it)` };
}

export type DecodeResult = { ok: true; rows: Row[] } | { ok: false; error: string; tooLarge?: boolean };

function isObject(v: unknown): v is Row {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function decodeJson(payload: Uint8Array | string): DecodeResult {
  const text = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `not JSON (${(e as Error).message}): ${preview(text)}` };
  }
  if (isObject(v)) return { ok: true, rows: [v] };
  if (Array.isArray(v)) {
    const bad = v.findIndex((x) => !isObject(x));
    if (bad >= 0) return { ok: false, error: `array element ${bad} is not an object: ${preview(text)}` };
    return { ok: true, rows: v as Row[] };
  }
  return { ok: false, error: `JSON ${v === null ? 'null' : typeof v} where an object or array of objects was expected: ${preview(text)}` };
}

export function decode(format: Format, payload: Uint8Array | string): DecodeResult {
  if (format === 'binary') {
    const bytes = typeof payload === 'string' ? new Uint8Array(Buffer.from(payload, 'utf8')) : new Uint8Array(payload);
    return { ok: true, rows: [{ self: bytes }] };
  }
  return decodeJson(payload);
}

function preview(text: string): string {
  return JSON.stringify(text.length > 80 ? text.slice(0, 80) + '…' : text);
}

/** The counters every source keeps; `record` feeds them and tells the caller what to emit. */
export class SourceCounters {
  readonly m: SourceMetrics = { messagesIn: 0, rowsOut: 0, decodeErrors: 0 };

  record(res: DecodeResult): Row[] | undefined {
    this.m.messagesIn++;
    if (!res.ok) {
      this.m.decodeErrors++;
      if (res.tooLarge) this.m.tooLarge = (this.m.tooLarge ?? 0) + 1;
      this.m.lastDecodeError = res.error;
      return undefined;
    }
    this.m.rowsOut += res.rows.length;
    return res.rows;
  }

  snapshot(): SourceMetrics {
    return { ...this.m };
  }
}
