/**
 * The TypeScript half of native/isolated/channel.h: slot numbers, ops and statuses, and the
 * arena allocator. Keep the numbers in step with that header (host and worker build together).
 */
export const HEADER_BYTES = 4096;
export const SLOT = {
  reqSeq: 16,
  op: 48,
  id: 49,
  arg0: 50,
  arg1: 51,
  arg2: 52,
  arg3: 53,
  status: 64,
  r0: 65,
  r1: 66,
  r2: 67,
  messageLength: 68,
} as const;
export const MESSAGE_OFFSET = 1024;

export const OP = {
  instantiate: 1,
  close: 2,
  validate: 3,
  call: 4,
  exportState: 5,
  importState: 6,
  fetchResult: 7,
  shutdown: 8,
  ping: 9,
  ioOpen: 10,
  ioStats: 11,
  sourceDrain: 12,
  sinkPush: 13,
  ioStop: 14,
  ioAbandon: 15,
  ioDispose: 16,
  ioValidate: 17,
} as const;

export const STATUS = { ok: 0, pluginError: 1, needSpace: 2, badRequest: 3 } as const;

/** roundTrip()'s answer (native/host/channel_wrap.cc). */
export const TRIP = { answered: 0, died: 1, timedOut: 2, noWorker: 3 } as const;

/** CallBlock: 8 uint32 fields, then one 6-uint32 ColumnRef per argument. */
export const CALL_BLOCK_WORDS = 8;
export const COLUMN_REF_WORDS = 6;
export const CB = { nargs: 0, resultType: 1, ngroups: 2, groupOffsets: 3, resultValues: 4, resultNulls: 5, out: 6, outCapacity: 7 } as const;
export const CR = { type: 0, isConstant: 1, values: 2, offsets: 3, data: 4, nulls: 5 } as const;

/** The addon's end of a channel (openChannel). */
export interface NativeChannel {
  readonly fd: number;
  readonly buffer: ArrayBuffer;
  attach(pid: number): boolean;
  detach(): void;
  kill(): void;
  alive(): boolean;
  roundTrip(timeoutMs: number): number;
  close(): void;
}

const ALIGN = 64;
const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/**
 * First-fit allocator over the arena [start, end), offsets only: the memory is the mapping both
 * processes see. Blocks are 64-byte aligned (typed arrays and cache lines). Free neighbours merge.
 */
export class Arena {
  private free: { at: number; size: number }[];
  private readonly used = new Map<number, number>();

  constructor(start: number, end: number) {
    this.free = [{ at: align(start), size: end - align(start) }];
  }

  /** An offset of `bytes` (rounded up), or -1 when the arena has no such room. */
  alloc(bytes: number): number {
    const size = align(Math.max(bytes, 1));
    const i = this.free.findIndex((f) => f.size >= size);
    if (i < 0) return -1;
    const block = this.free[i];
    const at = block.at;
    if (block.size === size) this.free.splice(i, 1);
    else this.free[i] = { at: at + size, size: block.size - size };
    this.used.set(at, size);
    return at;
  }

  release(at: number): void {
    const size = this.used.get(at);
    if (size === undefined) return;
    this.used.delete(at);
    let i = this.free.findIndex((f) => f.at > at);
    if (i < 0) i = this.free.length;
    this.free.splice(i, 0, { at, size });
    // merge with the next, then with the previous
    if (i + 1 < this.free.length && this.free[i].at + this.free[i].size === this.free[i + 1].at) {
      this.free[i].size += this.free[i + 1].size;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].at + this.free[i - 1].size === this.free[i].at) {
      this.free[i - 1].size += this.free[i].size;
      this.free.splice(i, 1);
    }
  }

  /** Bytes in use, for status. */
  inUse(): number {
    let n = 0;
    for (const s of this.used.values()) n += s;
    return n;
  }
}
