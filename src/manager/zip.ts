import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { StreamplugError } from '../errors.js';
import type { ZipLimits } from './limits.js';

/** yauzl exports this since 2.x; its @types package does not declare it. */
const getFileNameLowLevel = (yauzl as unknown as {
  getFileNameLowLevel(flags: number, raw: Buffer, extra: unknown[], strict: boolean): string;
}).getFileNameLowLevel;

export interface UnpackProgress {
  phase: 'unpack';
  entries: number;
  totalEntries: number;
  bytes: number;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(
      file,
      // Names are decoded and checked here (not by yauzl) so each refusal gets its own code;
      // sizes are counted here as bytes are inflated, not taken from the headers.
      { lazyEntries: true, decodeStrings: false, validateEntrySizes: false, autoClose: true } as yauzl.Options,
      (err, zf) => (err || !zf ? reject(corrupt(file, err)) : resolve(zf)),
    );
  });
}

function corrupt(file: string, err: unknown): StreamplugError {
  const why = err instanceof Error ? err.message : String(err);
  return new StreamplugError(
    'E_ZIP_CORRUPT',
    `${path.basename(file)} is not a readable zip (${why}); expected a complete zip file: rebuild it with \`streamplug pack\` and upload it again`,
    { file, reason: why },
  );
}

/** Checks an entry's name; returns the path relative to the target with '/' separators. */
export function safeEntryName(name: string): string {
  if (name.includes('\0')) {
    throw new StreamplugError('E_ZIP_BAD_NAME', `zip entry name contains a NUL byte; expected a plain relative path`, { entry: name });
  }
  const norm = name.replace(/\\/g, '/');
  if (norm.startsWith('/') || /^[A-Za-z]:/.test(norm)) {
    throw new StreamplugError(
      'E_ZIP_ABSOLUTE',
      `zip entry "${name}" has an absolute path; expected paths relative to the zip root: rebuild the zip from inside the plugin folder`,
      { entry: name },
    );
  }
  if (norm.split('/').includes('..')) {
    throw new StreamplugError(
      'E_ZIP_SLIP',
      `zip entry "${name}" climbs out of the target folder with ".."; expected entries under the zip root only: this zip is refused whole`,
      { entry: name },
    );
  }
  return norm;
}

/** Counts (and CRCs) the bytes an entry really inflates to, failing as soon as a limit is passed. */
class Meter extends Transform {
  bytes = 0;
  crc = 0;
  constructor(
    private readonly check: (added: number, entryBytes: number) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.crc = zlib.crc32(chunk, this.crc);
    try {
      this.check(chunk.length, this.bytes);
    } catch (e) {
      cb(e as Error);
      return;
    }
    cb(null, chunk);
  }
}

/**
 * Unpacks `zipFile` into `destDir` (which must exist and be empty), streaming, refusing the whole zip
 * on the first unsafe or over-limit entry. Returns the relative paths of the files written. On failure
 * the caller removes destDir: partial output is never used.
 */
export async function extractZip(
  zipFile: string,
  destDir: string,
  limits: ZipLimits,
  onProgress?: (p: UnpackProgress) => void,
): Promise<string[]> {
  const zf = await openZip(zipFile);
  const total = zf.entryCount;
  if (total > limits.maxEntries) {
    try {
      zf.close();
    } catch {
      // nothing to release
    }
    throw new StreamplugError(
      'E_ZIP_TOO_MANY',
      `zip has ${total} entries; the limit is ${limits.maxEntries}: a plugin zip holds a library, its metadata and a few config files`,
      { entries: total, limit: limits.maxEntries },
    );
  }
  const root = path.resolve(destDir);
  const files: string[] = [];
  let seen = 0;
  let inflated = 0;

  return new Promise<string[]>((resolve, reject) => {
    let done = false;
    const fail = (err: unknown) => {
      if (done) return;
      done = true;
      try {
        zf.close();
      } catch {
        // already closed by autoClose
      }
      reject(err instanceof StreamplugError ? err : corrupt(zipFile, err));
    };
    zf.on('error', fail);
    zf.on('end', () => {
      if (done) return;
      done = true;
      resolve(files);
    });
    zf.on('entry', (entry: yauzl.Entry) => {
      handle(entry).then(
        () => {
          if (done) return;
          onProgress?.({ phase: 'unpack', entries: seen, totalEntries: total, bytes: inflated });
          zf.readEntry();
        },
        fail,
      );
    });

    const handle = async (entry: yauzl.Entry): Promise<void> => {
      seen++;
      if (seen > limits.maxEntries) {
        throw new StreamplugError('E_ZIP_TOO_MANY', `zip has more than ${limits.maxEntries} entries (the limit)`, {
          limit: limits.maxEntries,
        });
      }
      const raw = entry.fileName as unknown as Buffer;
      const name = safeEntryName(
        getFileNameLowLevel(entry.generalPurposeBitFlag, raw, (entry as unknown as { extraFields: unknown[] }).extraFields, false),
      );
      const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
      const kind = mode & S_IFMT;
      if (kind === S_IFLNK) {
        throw new StreamplugError(
          'E_ZIP_SYMLINK',
          `zip entry "${name}" is a symbolic link; expected regular files only: put the file itself in the zip`,
          { entry: name },
        );
      }
      if (kind !== 0 && kind !== S_IFREG && kind !== S_IFDIR) {
        throw new StreamplugError('E_ZIP_UNSUPPORTED', `zip entry "${name}" is a special file (mode ${mode.toString(8)}); expected regular files`, {
          entry: name,
        });
      }
      const target = path.resolve(root, name);
      if (target !== root && !target.startsWith(root + path.sep)) {
        throw new StreamplugError('E_ZIP_SLIP', `zip entry "${name}" resolves outside the target folder`, { entry: name });
      }
      const isDir = name.endsWith('/') || kind === S_IFDIR;
      if (isDir) {
        await fs.promises.mkdir(target, { recursive: true });
        return;
      }
      if (entry.isEncrypted()) {
        throw new StreamplugError('E_ZIP_UNSUPPORTED', `zip entry "${name}" is encrypted; expected an unencrypted zip`, { entry: name });
      }
      if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
        throw new StreamplugError(
          'E_ZIP_UNSUPPORTED',
          `zip entry "${name}" uses compression method ${entry.compressionMethod}; expected stored (0) or deflate (8)`,
          { entry: name },
        );
      }
      // Headers can lie, so this only refuses early what would be refused anyway; the Meter decides.
      if (inflated + entry.uncompressedSize > limits.maxUncompressedBytes) throw bomb(name, 'size', limits);
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      const compressed = Math.max(entry.compressedSize, 1);
      const meter = new Meter((added, entryBytes) => {
        inflated += added;
        if (inflated > limits.maxUncompressedBytes) throw bomb(name, 'size', limits);
        if (entryBytes > limits.ratioFloorBytes && entryBytes / compressed > limits.maxRatio) throw bomb(name, 'ratio', limits);
      });
      const input = await new Promise<Readable>((res, rej) =>
        zf.openReadStream(entry, (err, s) => (err || !s ? rej(corrupt(zipFile, err)) : res(s))),
      );
      // 'wx': a name seen twice, or a path made earlier by another entry, is refused rather than overwritten.
      const out = fs.createWriteStream(target, { flags: 'wx', mode: 0o644 });
      try {
        await pipeline(input, meter, out);
      } catch (e) {
        if (e instanceof StreamplugError) throw e;
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new StreamplugError('E_ZIP_CORRUPT', `zip entry "${name}" appears twice; expected each path once`, { entry: name });
        }
        throw corrupt(zipFile, e);
      }
      if (meter.bytes !== entry.uncompressedSize || (meter.crc >>> 0) !== (entry.crc32 >>> 0)) {
        throw new StreamplugError(
          'E_ZIP_CORRUPT',
          `zip entry "${name}" inflated to ${meter.bytes} bytes with CRC ${(meter.crc >>> 0).toString(16)}; its header says ${entry.uncompressedSize} bytes, CRC ${(entry.crc32 >>> 0).toString(16)}: the zip is damaged`,
          { entry: name },
        );
      }
      files.push(name);
    };

    zf.readEntry();
  });
}

function bomb(name: string, what: 'size' | 'ratio', limits: ZipLimits): StreamplugError {
  const msg =
    what === 'size'
      ? `zip inflates past ${limits.maxUncompressedBytes} bytes (at entry "${name}"), the configured limit: refused as a zip bomb`
      : `zip entry "${name}" inflates more than ${limits.maxRatio} times its compressed size, the configured limit: refused as a zip bomb`;
  return new StreamplugError('E_ZIP_BOMB', msg, { entry: name, limit: what === 'size' ? limits.maxUncompressedBytes : limits.maxRatio });
}
