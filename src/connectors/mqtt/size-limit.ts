/**
 * A maximum MQTT message size that holds nothing in memory. mqtt.js buffers a whole packet before
 * it emits it, so a broker (or a publisher through it) could make the host hold any amount. This
 * stream sits between the socket and mqtt.js and frames the incoming bytes itself: a PUBLISH larger
 * than the limit is skipped as it streams past (only its topic and packet id are read, to
 * acknowledge it) and reported to `onOversize`; everything else passes through unchanged.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import type { IClientOptions } from 'mqtt';

const PUBLISH = 3;

type State =
  | { kind: 'header'; bytes: number[] }
  | { kind: 'pass'; left: number }
  | { kind: 'skip'; left: number; qos: number; head: number[]; need: number };

export class MqttSizeFilter {
  private state: State = { kind: 'header', bytes: [] };

  constructor(
    private readonly maxBytes: number,
    private readonly out: (b: Buffer) => void,
    private readonly onOversize: (bytes: number) => void,
    /** Writes an acknowledgement for a skipped QoS 1/2 message back to the broker. */
    private readonly ack: (b: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      const s = this.state;
      if (s.kind === 'pass') {
        const n = Math.min(s.left, chunk.length - i);
        this.out(chunk.subarray(i, i + n));
        i += n;
        s.left -= n;
        if (s.left === 0) this.state = { kind: 'header', bytes: [] };
      } else if (s.kind === 'skip') {
        const n = Math.min(s.left, chunk.length - i);
        for (let k = 0; k < n && s.head.length < s.need; k++) {
          s.head.push(chunk[i + k]);
          if (s.head.length === 2 && s.qos > 0) s.need = 2 + ((s.head[0] << 8) | s.head[1]) + 2;
        }
        i += n;
        s.left -= n;
        if (s.left === 0) {
          if (s.qos > 0 && s.head.length >= s.need) {
            const id = s.head.slice(s.need - 2, s.need);
            this.ack(Buffer.from([s.qos === 1 ? 0x40 : 0x50, 0x02, id[0], id[1]]));
          }
          this.state = { kind: 'header', bytes: [] };
        }
      } else {
        s.bytes.push(chunk[i++]);
        // fixed header: one type byte, then a 1..4 byte variable-length "remaining length"
        if (s.bytes.length < 2 || (s.bytes[s.bytes.length - 1] & 0x80 && s.bytes.length < 5)) continue;
        let remaining = 0;
        for (let k = 1, mult = 1; k < s.bytes.length; k++, mult *= 128) remaining += (s.bytes[k] & 0x7f) * mult;
        const type = s.bytes[0] >> 4;
        if (type === PUBLISH && remaining > this.maxBytes) {
          this.onOversize(remaining);
          this.state = { kind: 'skip', left: remaining, qos: (s.bytes[0] >> 1) & 3, head: [], need: 2 };
          if (remaining === 0) this.state = { kind: 'header', bytes: [] };
        } else {
          this.out(Buffer.from(s.bytes));
          this.state = remaining > 0 ? { kind: 'pass', left: remaining } : { kind: 'header', bytes: [] };
        }
      }
    }
  }
}

/** A duplex over a TCP or TLS socket whose readable side is filtered by MqttSizeFilter. */
class LimitedStream extends Duplex {
  private readonly sizeFilter: MqttSizeFilter;
  constructor(
    private readonly socket: net.Socket,
    maxBytes: number,
    onOversize: (bytes: number) => void,
  ) {
    super();
    this.sizeFilter = new MqttSizeFilter(maxBytes, (b) => this.push(b), onOversize, (b) => socket.write(b));
    socket.on('data', (c: Buffer) => this.sizeFilter.push(c));
    socket.on('end', () => this.push(null));
    socket.on('error', (e) => this.destroy(e));
    socket.on('close', () => this.destroy());
  }
  override _read(): void {
    // data is pushed as the socket delivers it
  }
  override _write(chunk: Buffer, enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.socket.write(chunk, enc, cb);
  }
  override _final(cb: () => void): void {
    this.socket.end(cb);
  }
  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }
}

/**
 * An mqtt.js stream builder for tcp/mqtt and ssl/mqtts/tls URLs with the size filter in place, or
 * undefined for other schemes (websockets), which keep mqtt.js's own transport.
 */
export function limitedStreamBuilder(url: string, options: IClientOptions, maxBytes: number, onOversize: (bytes: number) => void): (() => Duplex) | undefined {
  const u = new URL(url);
  const secure = ['ssl:', 'mqtts:', 'tls:'].includes(u.protocol);
  if (!secure && !['tcp:', 'mqtt:'].includes(u.protocol)) return undefined;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port) || (secure ? 8883 : 1883);
  return () => {
    const socket = secure
      ? tls.connect({
          host,
          port,
          servername: net.isIP(host) ? undefined : host,
          ca: options.ca as tls.ConnectionOptions['ca'],
          cert: options.cert as tls.ConnectionOptions['cert'],
          key: options.key as tls.ConnectionOptions['key'],
          rejectUnauthorized: options.rejectUnauthorized !== false,
        })
      : net.connect(port, host);
    socket.setNoDelay(true);
    return new LimitedStream(socket, maxBytes, onOversize);
  };
}
