import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yazl from 'yazl';
import { samplesDir, corpusDir } from '../helpers/paths.js';

export const sample = (f: string) => path.join(samplesDir, f);
export const corpus = (f: string) => path.join(corpusDir, f);

export interface Entry {
  name: string;
  data?: Buffer | string;
  file?: string;
  mode?: number;
  store?: boolean;
}

/** Writes a real zip with yazl; returns its bytes too. */
export function makeZip(out: string, entries: Entry[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    const opts = { mode: e.mode ?? 0o100644, compress: !e.store };
    if (e.file) zip.addFile(e.file, e.name, opts);
    else zip.addBuffer(Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data ?? ''), e.name, opts);
  }
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => {
      const buf = Buffer.concat(chunks);
      fs.writeFileSync(out, buf);
      resolve(buf);
    });
  });
}

/** Rewrites an entry name in place (local and central headers); yazl itself refuses unsafe names. */
export function renameEntry(zipFile: string, from: string, to: string): void {
  if (from.length !== to.length) throw new Error('same length only');
  const buf = fs.readFileSync(zipFile);
  const a = Buffer.from(from);
  let i = buf.indexOf(a);
  let n = 0;
  while (i !== -1) {
    Buffer.from(to).copy(buf, i);
    n++;
    i = buf.indexOf(a, i + a.length);
  }
  if (n === 0) throw new Error(`${from} not in ${zipFile}`);
  fs.writeFileSync(zipFile, buf);
}

/** Makes the central directory claim `size` uncompressed bytes for `entry` (a lying header). */
export function lieAboutSize(zipFile: string, entry: string, size: number): void {
  const buf = fs.readFileSync(zipFile);
  const sig = Buffer.from([0x50, 0x4b, 0x01, 0x02]);
  for (let i = buf.indexOf(sig); i !== -1; i = buf.indexOf(sig, i + 4)) {
    const nameLength = buf.readUInt16LE(i + 28);
    if (buf.toString('utf8', i + 46, i + 46 + nameLength) === entry) buf.writeUInt32LE(size, i + 24);
  }
  fs.writeFileSync(zipFile, buf);
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `streamplug-${prefix}-`));
}

/** Every file under dir, relative, sorted (folders left out). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** The files a data directory holds about plugins (the lock file is not one). */
export function pluginState(dataDir: string): string[] {
  // The host lock, the streams/rules store, the crash journal, the API token and the audit log (which records refusals
  // too) are not plugin state.
  const notPluginState = new Set(['host.lock', 'host.lock.stale', 'etc/api-token', 'plugins/audit.jsonl', 'run/crash-journal']);
  return filesUnder(dataDir).filter((f) => !notPluginState.has(f) && !/^streamplug\.db(-shm|-wal)?$/.test(f));
}
