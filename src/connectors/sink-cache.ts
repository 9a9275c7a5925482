/**
 * The sink cache of eKuiper's sink properties (`enableCache` and friends): messages a sink could not
 * deliver wait here, in order, until the target is back.
 *
 * The cache is a FIFO of pages of at most `bufferPageSize` messages. At most `memoryCacheThreshold`
 * messages are held in memory (plus the page being resent, loaded back from disk); the others are
 * written, a page at a time, into the store (SQLite, one kv entry per page), up to `maxDiskCache`
 * messages. A full cache refuses a message (the runner drops and counts it): memory never grows
 * with the length of an outage.
 *
 * Memory keeps the head page (being resent) and the newest pages (being filled); the pages between
 * them go to disk oldest first. A page read back from disk stays on disk until all its messages were
 * sent, so a crash while resending it sends some of them again (at-least-once), never loses them.
 */
import { StreamplugError } from '../errors.js';
import { PropReader } from './props.js';
import type { Props } from './types.js';

export interface SinkCacheOptions {
  enableCache: boolean;
  /** Messages held in memory before pages go to disk. */
  memoryCacheThreshold: number;
  /** Messages held on disk; a message beyond memory + disk is dropped and counted. */
  maxDiskCache: number;
  /** Messages per page: the unit written to and read from disk. */
  bufferPageSize: number;
  /** Milliseconds between two resent messages (0: as fast as the target takes them). */
  resendInterval: number;
  /** true: a stopped rule forgets its cache; false: the cache is kept on disk and resent at the next start. */
  cleanCacheAtStop: boolean;
}

export function readCacheOptions(props: Props, where = 'sink'): SinkCacheOptions {
  const p = new PropReader(where, props);
  const o: SinkCacheOptions = {
    enableCache: p.bool('enableCache', false),
    memoryCacheThreshold: p.count('memoryCacheThreshold', 1024),
    maxDiskCache: p.count('maxDiskCache', 1024000),
    bufferPageSize: p.count('bufferPageSize', 256),
    resendInterval: p.count('resendInterval', 0),
    cleanCacheAtStop: p.bool('cleanCacheAtStop', false),
  };
  if (o.bufferPageSize < 1) throw p.fail('bufferPageSize', o.bufferPageSize, 'at least 1');
  if (o.enableCache && o.memoryCacheThreshold < o.bufferPageSize)
    throw p.fail('memoryCacheThreshold', o.memoryCacheThreshold, `at least bufferPageSize (${o.bufferPageSize}): memory holds at least the page being resent`);
  return o;
}

/** Where a cache keeps its pages on disk: one scope of the store's key/value table. */
export interface CachePageStore {
  /** Page keys, in order. */
  keys(): string[];
  get(key: string): unknown;
  put(key: string, value: unknown): void;
  delete(key: string): void;
  clear(): void;
}

/** The store's kv table as a page store: `scope` is one sink of one rule. */
export function kvPageStore(
  store: {
    kvKeys(scope: string): string[];
    kvGet(scope: string, key: string): unknown;
    kvPut(scope: string, key: string, value: unknown): void;
    kvDelete(scope: string, key: string): boolean;
    kvClear(scope: string): number;
  },
  scope: string,
): CachePageStore {
  return {
    keys: () => store.kvKeys(scope),
    get: (k) => store.kvGet(scope, k),
    put: (k, v) => store.kvPut(scope, k, v),
    delete: (k) => void store.kvDelete(scope, k),
    clear: () => void store.kvClear(scope),
  };
}

/** Store scope of the cache of a rule's action. */
export function sinkCacheScope(ruleId: string, action: number): string {
  return `sinkcache/${ruleId}/${action}`;
}

interface Page<T> {
  /** Sequence number: keys sort in page order. */
  seq: number;
  /** Messages left on the page. */
  count: number;
  /** In memory (undefined: only on disk). */
  msgs?: T[];
  /** The key of its copy on disk, if it has one (a copy holds the page as it was when written). */
  storedKey?: string;
}

const pageKey = (p: { seq: number; count: number }) => `${String(p.seq).padStart(12, '0')}-${p.count}`;

/** New pages count up from here; pages put back in front of the cache count down from it. */
const SEQ_BASE = 500_000_000_000;

export class SinkCache<T> {
  private pages: Page<T>[] = [];
  private nextSeq = SEQ_BASE;
  /** Messages in memory / only on disk. */
  private mem = 0;
  private disk = 0;

  constructor(
    readonly opts: SinkCacheOptions,
    private readonly store?: CachePageStore,
  ) {}

  /** Messages cached now, in memory and on disk. */
  get size(): number {
    return this.mem + this.disk;
  }

  get inMemory(): number {
    return this.mem;
  }

  get onDisk(): number {
    return this.disk;
  }

  private get capacity(): number {
    return this.opts.memoryCacheThreshold + (this.store ? this.opts.maxDiskCache : 0);
  }

  /** Takes up the pages a previous run left on disk (cleanCacheAtStop false); returns their message count. */
  load(): number {
    if (!this.store || this.pages.length) return 0;
    for (const key of this.store.keys()) {
      const m = /^(\d{12})-(\d+)$/.exec(key);
      if (!m) continue;
      const page: Page<T> = { seq: Number(m[1]), count: Number(m[2]), storedKey: key };
      if (page.count === 0) {
        this.store.delete(key);
        continue;
      }
      this.pages.push(page);
      this.disk += page.count;
      this.nextSeq = Math.max(this.nextSeq, page.seq + 1);
    }
    return this.disk;
  }

  /** Appends a message; false when the cache is full (the caller drops it). */
  add(msg: T): boolean {
    if (this.size >= this.capacity) return false;
    let tail = this.pages[this.pages.length - 1];
    if (!tail || !tail.msgs || tail.storedKey || tail.msgs.length >= this.opts.bufferPageSize) {
      tail = { seq: this.nextSeq++, count: 0, msgs: [] };
      this.pages.push(tail);
    }
    tail.msgs!.push(msg);
    tail.count++;
    this.mem++;
    this.trim();
    return true;
  }

  /**
   * Puts messages back in front of everything cached (a failed message and the queue behind it are
   * older than the cache). Never refused: they are at most the sink's bufferLength + 1.
   */
  prepend(msgs: T[]): void {
    if (msgs.length === 0) return;
    const first = this.pages[0];
    const seq = Math.min(first ? first.seq : this.nextSeq, SEQ_BASE) - 1;
    this.pages.unshift({ seq, count: msgs.length, msgs: [...msgs] });
    this.mem += msgs.length;
    this.trim();
  }

  /** The oldest message, loading its page from disk if needed. */
  peek(): T | undefined {
    const head = this.pages[0];
    if (!head) return undefined;
    if (!head.msgs) {
      const v = this.store?.get(head.storedKey!);
      if (!Array.isArray(v) || v.length !== head.count) {
        // A page that cannot be read back is lost: say so rather than resend something else.
        this.pages.shift();
        this.disk -= head.count;
        if (this.store && head.storedKey) this.store.delete(head.storedKey);
        throw new StreamplugError('E_SINK_FAILED', `sink cache page ${head.storedKey} is missing or damaged in the store; its ${head.count} message(s) are lost`, { lost: head.count });
      }
      head.msgs = v as T[];
      this.disk -= head.count;
      this.mem += head.count;
    }
    return head.msgs[0];
  }

  /** Removes the oldest message (after peek() and a successful send). */
  shift(): void {
    const head = this.pages[0];
    if (!head?.msgs?.length) return;
    head.msgs.shift();
    head.count--;
    this.mem--;
    if (head.count === 0) {
      this.pages.shift();
      if (head.storedKey && this.store) this.store.delete(head.storedKey);
    }
  }

  /** Writes every page still only in memory to disk (a stopping rule keeps its cache); returns messages that could not be kept. */
  persist(): number {
    let lost = 0;
    for (const p of this.pages) {
      if (!p.msgs) continue;
      if (!this.store) lost += p.count;
      else this.write(p);
    }
    this.pages = [];
    this.mem = 0;
    this.disk = 0;
    return lost;
  }

  /** Forgets everything, on disk too; returns the number of messages forgotten. */
  clear(): number {
    const n = this.size;
    this.pages = [];
    this.mem = 0;
    this.disk = 0;
    this.store?.clear();
    return n;
  }

  /** Keeps memory within memoryCacheThreshold while the disk has room. */
  private trim(): void {
    while (this.mem > this.opts.memoryCacheThreshold && this.spillOne());
  }

  /** Writes a page's messages as they are now, replacing an older copy. */
  private write(p: Page<T>): void {
    const key = pageKey(p);
    if (p.storedKey === key) return;
    if (p.storedKey) this.store!.delete(p.storedKey);
    if (p.count > 0) this.store!.put(key, p.msgs);
    p.storedKey = key;
  }

  /** Moves the oldest in-memory page after the head (full pages first) to disk. */
  private spillOne(): boolean {
    if (!this.store) return false;
    let pick = -1;
    for (let i = 1; i < this.pages.length; i++) {
      const p = this.pages[i];
      if (!p.msgs) continue;
      if (pick < 0) pick = i;
      if (p.msgs.length >= this.opts.bufferPageSize) {
        pick = i;
        break;
      }
    }
    if (pick < 0) return false;
    const p = this.pages[pick];
    if (this.disk + p.count > this.opts.maxDiskCache) return false;
    this.write(p);
    p.msgs = undefined;
    this.mem -= p.count;
    this.disk += p.count;
    return true;
  }
}
