import crypto from 'node:crypto';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { StreamplugError } from '../errors.js';

export interface DownloadProgress {
  phase: 'download';
  bytes: number;
  total?: number;
}

export interface FetchOptions {
  maxBytes: number;
  /** Let http(s) URLs reach loopback/private/link-local addresses (tests, lab setups). Off by default. */
  allowPrivateNetworks?: boolean;
  /**
   * A download that receives nothing for this long (headers or body) fails with E_FETCH, so that a
   * stalled server cannot hold the install queue forever. Default 30 s.
   */
  idleTimeoutMs?: number;
  onProgress?: (p: DownloadProgress) => void;
}

export interface FetchedZip {
  file: string;
  bytes: number;
  sha256: string;
}

const MAX_REDIRECTS = 5;
const DEFAULT_IDLE_MS = 30_000;

// eKuiper refuses private targets for downloads (SSRF guard); so does streamplug unless told otherwise.
const privateNets = new net.BlockList();
for (const [addr, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.168.0.0', 16], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) privateNets.addSubnet(addr, prefix, 'ipv4');
for (const [addr, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  privateNets.addSubnet(addr, prefix, 'ipv6');
}

function isPrivate(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return privateNets.check(mapped[1], 'ipv4');
  return privateNets.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
}

async function assertPublicTarget(url: URL): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addrs = net.isIP(host) ? [{ address: host }] : await dns.lookup(host, { all: true }).catch(() => []);
  if (addrs.length === 0) {
    throw new StreamplugError('E_FETCH', `cannot resolve host "${host}" of ${url.href}; expected a reachable http(s) URL`, { url: url.href });
  }
  const bad = addrs.find((a) => isPrivate(a.address));
  if (bad) {
    throw new StreamplugError(
      'E_URL_FORBIDDEN',
      `${url.href} points at ${bad.address}, a loopback/private address; downloads reach public addresses only: use a file:// URL or a local path for local zips, or start the host with --allow-private-urls`,
      { url: url.href, address: bad.address },
    );
  }
}

function tooBig(what: string, bytes: number, max: number): StreamplugError {
  return new StreamplugError(
    'E_ZIP_TOO_BIG',
    `${what} is ${bytes} bytes or more; the limit is ${max} bytes: raise the limit (maxZipBytes) if this plugin really is that big`,
    { bytes, limit: max },
  );
}

/** Copies `input` to `dest` counting and hashing, failing as soon as maxBytes is passed. */
async function spool(input: Readable, dest: string, what: string, opts: FetchOptions, total?: number, isNetworkSource = false): Promise<FetchedZip> {
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  let lastReport = 0;
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    if (!isNetworkSource) return;
    clearTimeout(idle);
    const ms = opts.idleTimeoutMs ?? DEFAULT_IDLE_MS;
    idle = setTimeout(() => input.destroy(new StreamplugError('E_FETCH', `the download of ${what} stalled: nothing arrived for ${ms} ms after ${bytes} bytes; try again or use another source`, { bytes })), ms);
  };
  arm();
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      arm();
      bytes += chunk.length;
      if (bytes > opts.maxBytes) return cb(tooBig(what, bytes, opts.maxBytes));
      hash.update(chunk);
      if (opts.onProgress && bytes - lastReport >= 256 * 1024) {
        lastReport = bytes;
        opts.onProgress({ phase: 'download', bytes, total });
      }
      cb(null, chunk);
    },
  });
  const out = fs.createWriteStream(dest, { flags: 'wx', mode: 0o600 });
  try {
    await pipeline(input, meter, out);
    clearTimeout(idle);
  } catch (e) {
    clearTimeout(idle);
    // pipeline can reject before the file is even opened; wait for the stream to close, then remove
    // the partial file, so that a failed or abandoned upload leaves nothing behind.
    if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()));
    fs.rmSync(dest, { force: true });
    if (e instanceof StreamplugError || !isNetworkSource) throw e;
    const fe = e as { code?: string; message?: string };
    throw new StreamplugError('E_FETCH', `the download of ${what} broke off after ${bytes} bytes (${fe.code ?? fe.message}); expected the whole zip: try again`, {
      bytes,
    });
  }
  opts.onProgress?.({ phase: 'download', bytes, total });
  return { file: dest, bytes, sha256: hash.digest('hex') };
}

/** Writes an already-open stream (an HTTP upload body) to `dest` with the same limits as a download. */
export function spoolStream(input: Readable, dest: string, opts: FetchOptions): Promise<FetchedZip> {
  return spool(input, dest, 'the uploaded zip', opts);
}

/**
 * Brings the zip named by `spec` (a local path, a file: URL, or an http(s) URL) to `dest`,
 * streaming, never holding more than `maxBytes`.
 */
export async function fetchZip(spec: string, dest: string, opts: FetchOptions): Promise<FetchedZip> {
  if (!spec) throw new StreamplugError('E_BAD_REQUEST', 'no zip given; expected "file": a path, file:// URL or http(s):// URL');
  let url: URL | undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    try {
      url = new URL(spec);
    } catch {
      throw new StreamplugError('E_BAD_REQUEST', `"${spec}" is not a valid URL; expected file://, http:// or https://`);
    }
  }
  if (!url || url.protocol === 'file:') {
    let file: string;
    try {
      file = url ? fileURLToPath(url) : path.resolve(spec);
    } catch {
      throw new StreamplugError('E_BAD_REQUEST', `"${spec}" is not a usable file:// URL; expected file:///absolute/path.zip`);
    }
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(file);
    } catch {
      throw new StreamplugError('E_NOT_FOUND_FILE', `zip ${file} does not exist; expected a readable zip file`, { file });
    }
    if (!st.isFile()) throw new StreamplugError('E_NOT_FILE', `${file} is not a regular file; expected a zip file`, { file });
    if (st.size > opts.maxBytes) throw tooBig(file, st.size, opts.maxBytes);
    return spool(fs.createReadStream(file), dest, file, opts, st.size);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new StreamplugError('E_URL_FORBIDDEN', `URL scheme ${url.protocol} is not supported; expected file:, http: or https:`, { url: spec });
  }
  let current = url;
  for (let hop = 0; ; hop++) {
    if (!opts.allowPrivateNetworks) await assertPublicTarget(current);
    let res: Response;
    try {
      // Redirects are followed by hand so that each target passes the address check.
      // the timer covers the wait for headers only; once they are in, the body has its own idle timer
      const headers = new AbortController();
      const t = setTimeout(() => headers.abort(new Error(`no answer within ${opts.idleTimeoutMs ?? DEFAULT_IDLE_MS} ms`)), opts.idleTimeoutMs ?? DEFAULT_IDLE_MS);
      try {
        res = await fetch(current, { redirect: 'manual', signal: headers.signal });
      } finally {
        clearTimeout(t);
      }
    } catch (e) {
      const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
      throw new StreamplugError('E_FETCH', `cannot download ${current.href}: ${cause}`, { url: current.href });
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new StreamplugError('E_FETCH', `${url.href} redirects more than ${MAX_REDIRECTS} times`, { url: url.href });
      current = new URL(res.headers.get('location')!, current);
      if (current.protocol !== 'http:' && current.protocol !== 'https:') {
        throw new StreamplugError('E_URL_FORBIDDEN', `${url.href} redirects to ${current.protocol}; expected http(s)`, { url: url.href });
      }
      continue;
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new StreamplugError('E_FETCH', `downloading ${current.href} answered HTTP ${res.status}; expected 200 with the zip`, {
        url: current.href,
        status: res.status,
      });
    }
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(length) && length > opts.maxBytes) {
      await res.body.cancel();
      throw tooBig(current.href, length, opts.maxBytes);
    }
    return spool(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), dest, current.href, opts, Number.isFinite(length) ? length : undefined, true);
  }
}
