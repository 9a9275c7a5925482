/**
 * File sink: appends JSON lines (one row per line) or CSV to a file. Creates parent folders.
 * A templated message is written as one line, verbatim.
 *
 * `flush` says when the bytes reach the file, and so what a crash (kill -9) can lose:
 *   "interval" (default)  buffered in memory, written every `interval` ms, whenever `bufferSize` bytes
 *                         wait, and on close: a crash loses up to `interval` ms of rows.
 *   "batch"               every message is written before it counts as delivered: a process crash
 *                         loses nothing delivered (the OS still holds the bytes).
 *   "fsync"               as "batch", and fsync'ed before it counts as delivered: a power loss loses
 *                         nothing delivered either, at the price of one fsync per message.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { StreamplugError } from '../../errors.js';
import { PropReader } from '../props.js';
import { toJson } from '../template.js';
import type { ConnectorContext, Props, Row, SinkConnector, SinkMessage } from '../types.js';

export interface FileSinkOptions {
  path: string;
  fileType: 'lines' | 'csv';
  hasHeader: boolean;
  delimiter: string;
  fields?: string[];
  interval: number;
  bufferSize: number;
  flush: 'interval' | 'batch' | 'fsync';
}

export class FileSink implements SinkConnector {
  private fh?: FileHandle;
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private timerError?: unknown;
  private fields?: string[];
  private needHeader = false;

  constructor(readonly opts: FileSinkOptions) {
    this.fields = opts.fields;
  }

  async open(): Promise<void> {
    await mkdir(path.dirname(this.opts.path), { recursive: true });
    this.fh = await open(this.opts.path, 'a');
    this.needHeader = this.opts.fileType === 'csv' && this.opts.hasHeader && (await this.fh.stat()).size === 0;
    if (this.opts.interval > 0 && this.opts.flush === 'interval') {
      this.timer = setInterval(() => this.flush().catch((e) => (this.timerError = e)), this.opts.interval);
      this.timer.unref();
    }
  }

  async collect(rows: Row[]): Promise<void> {
    return this.send({ data: rows });
  }

  async send(msg: SinkMessage): Promise<void> {
    if (!this.fh) throw new StreamplugError('E_SINK_FAILED', `file sink ${this.opts.path}: not open; call open() first`);
    if (this.timerError) {
      const e = this.timerError;
      this.timerError = undefined;
      throw e;
    }
    if (msg.text !== undefined) this.push(msg.text.replace(/\n$/, '') + '\n');
    else {
      const rows = Array.isArray(msg.data) ? msg.data : [msg.data];
      for (const r of rows) this.push(this.opts.fileType === 'csv' ? this.csvLine(r) : toJson(r) + '\n');
    }
    if (this.opts.flush !== 'interval' || this.pendingBytes >= this.opts.bufferSize) await this.flush();
    if (this.opts.flush === 'fsync') await this.fh.datasync();
  }

  /** Writes everything buffered so far (also the delivery hook: SinkConnector.flush). */
  flush(): Promise<void> {
    const chunk = this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    const fh = this.fh;
    if (chunk && fh) this.writing = this.writing.then(() => fh.appendFile(chunk, 'utf8'));
    return this.writing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    await this.fh?.close();
    this.fh = undefined;
  }

  private push(s: string): void {
    this.pending.push(s);
    this.pendingBytes += Buffer.byteLength(s);
  }

  private csvLine(r: Row): string {
    if (!this.fields) this.fields = Object.keys(r);
    const d = this.opts.delimiter;
    if (this.needHeader) {
      this.needHeader = false;
      this.push(this.fields.map((f) => csvCell(f, d)).join(d) + '\n');
    }
    return this.fields.map((f) => csvCell(r[f], d)).join(d) + '\n';
  }
}

function csvCell(v: unknown, d: string): string {
  let s: string;
  if (v === undefined || v === null) s = '';
  else if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') s = String(v);
  else if (v instanceof Uint8Array) s = Buffer.from(v).toString('base64');
  else s = toJson(v);
  return s.includes(d) || /["\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function createFileSink(props: Props, ctx: ConnectorContext): FileSink {
  const p = new PropReader('file sink', props);
  const file = p.requireString('path');
  const fieldsRaw = p.raw('fields');
  let fields: string[] | undefined;
  if (Array.isArray(fieldsRaw) && fieldsRaw.every((f) => typeof f === 'string')) fields = fieldsRaw;
  else if (typeof fieldsRaw === 'string' && fieldsRaw.trim()) fields = fieldsRaw.split(',').map((f) => f.trim());
  else if (fieldsRaw !== undefined && fieldsRaw !== null && fieldsRaw !== '') throw p.fail('fields', fieldsRaw, 'an array of field names or a comma-separated string');
  const delimiter = p.string('delimiter', ',');
  if (delimiter.length !== 1) throw p.fail('delimiter', delimiter, 'a single character');
  return new FileSink({
    path: path.resolve(ctx.dataDir ?? process.cwd(), file),
    fileType: p.oneOf('fileType', ['lines', 'csv'] as const, 'lines'),
    hasHeader: p.bool('hasHeader', true),
    delimiter,
    fields,
    interval: p.count('interval', 1000),
    bufferSize: p.count('bufferSize', 65536),
    flush: p.oneOf('flush', ['interval', 'batch', 'fsync'] as const, 'interval'),
  });
}
