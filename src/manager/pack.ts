import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yazl from 'yazl';
import { StreamplugError } from '../errors.js';
import type { ZipLimits } from './limits.js';
import crypto from 'node:crypto';
import { signManifest } from './signature.js';
import { extractZip } from './zip.js';
import { assertPluginName } from './unpack.js';

export interface PackInput {
  name: string;
  library: string;
  metadata?: string;
  yaml?: string;
  etcDir?: string;
  /** Private libraries the plugin needs, stored under lib/ (found through RUNPATH $ORIGIN/lib). */
  libs?: string[];
  /** PEM private key: signs a manifest of every entry (lib/ and etc/ included) into NAME.sig. */
  privateKeyPem?: string;
  out: string;
}

function listFiles(dir: string, prefix = ''): { abs: string; rel: string }[] {
  const out: { abs: string; rel: string }[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const abs = path.join(dir, e.name);
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isSymbolicLink()) {
      throw new StreamplugError('E_ZIP_SYMLINK', `${abs} is a symbolic link; a plugin zip holds regular files only: copy the file in instead`, { file: abs });
    }
    if (e.isDirectory()) out.push(...listFiles(abs, rel));
    else if (e.isFile()) out.push({ abs, rel });
  }
  return out;
}

/** Writes a zip of `entries` (zip path → file on disk or bytes) to `out`, atomically. */
export function writeZip(entries: { name: string; file?: string; data?: Buffer }[], out: string): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    if (e.data) zip.addBuffer(e.data, e.name, { mode: 0o100644 });
    else zip.addFile(e.file!, e.name, { mode: 0o100644 });
  }
  zip.end();
  const tmp = `${out}.${process.pid}.tmp`;
  return new Promise<void>((resolve, reject) => {
    const ws = fs.createWriteStream(tmp);
    zip.outputStream.on('error', reject).pipe(ws);
    ws.on('error', reject);
    ws.on('close', () => {
      try {
        fs.renameSync(tmp, out);
        resolve();
      } catch (e) {
        reject(e);
      }
    });
  }).catch((e: unknown) => {
    fs.rmSync(tmp, { force: true });
    throw e;
  });
}

/** zip path → sha256 of what will be stored there. */
function manifestOf(entries: { name: string; file?: string; data?: Buffer }[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) out[e.name] = crypto.createHash('sha256').update(e.data ?? fs.readFileSync(e.file!)).digest('hex');
  return out;
}

/** Builds a plugin zip with install's layout: NAME.so|.node, NAME.json, NAME.yaml, NAME.sig, etc/. */
export async function packPlugin(p: PackInput): Promise<string[]> {
  assertPluginName(p.name);
  const ext = path.extname(p.library);
  if (ext !== '.so' && ext !== '.node') {
    throw new StreamplugError('E_ZIP_NO_LIBRARY', `${p.library} is not a .so or .node file; expected the plugin library`, { file: p.library });
  }
  for (const f of [p.library, p.metadata, p.yaml]) {
    if (f && !fs.statSync(f, { throwIfNoEntry: false })?.isFile()) {
      throw new StreamplugError('E_NOT_FOUND_FILE', `${f} does not exist or is not a file`, { file: f });
    }
  }
  const entries: { name: string; file?: string; data?: Buffer }[] = [{ name: `${p.name}${ext}`, file: p.library }];
  if (p.metadata) {
    try {
      JSON.parse(fs.readFileSync(p.metadata, 'utf8'));
    } catch (e) {
      throw new StreamplugError('E_BAD_REQUEST', `${p.metadata} is not valid JSON (${(e as Error).message})`, { file: p.metadata });
    }
    entries.push({ name: `${p.name}.json`, file: p.metadata });
  }
  if (p.yaml) entries.push({ name: `${p.name}.yaml`, file: p.yaml });
  for (const lib of p.libs ?? []) {
    if (!fs.statSync(lib, { throwIfNoEntry: false })?.isFile()) {
      throw new StreamplugError('E_NOT_FOUND_FILE', `${lib} does not exist or is not a file; expected a private library to store under lib/`, { file: lib });
    }
    entries.push({ name: `lib/${path.basename(lib)}`, file: lib });
  }
  if (p.etcDir) {
    if (!fs.statSync(p.etcDir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new StreamplugError('E_NOT_FOUND_FILE', `${p.etcDir} is not a folder; expected the etc/ folder to include`, { file: p.etcDir });
    }
    for (const f of listFiles(p.etcDir)) entries.push({ name: `etc/${f.rel}`, file: f.abs });
  }
  // The signature covers every entry (library, metadata, yaml, etc/), so it is made last.
  if (p.privateKeyPem) {
    const sig = signManifest(manifestOf(entries), p.privateKeyPem);
    entries.push({ name: `${p.name}.sig`, data: Buffer.from(JSON.stringify(sig) + '\n') });
  }
  await writeZip(entries, p.out);
  return entries.map((e) => e.name);
}

/**
 * Signs a plugin zip: unpacks it safely, adds (or replaces) NAME.sig over a manifest of every other file, and
 * rewrites the zip at `out` (default: in place). Returns the library's entry name and the key fingerprint.
 */
export async function signZip(zipFile: string, privateKeyPem: string, limits: ZipLimits, out = zipFile): Promise<{ library: string; key: string }> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-sign-'));
  try {
    const files = await extractZip(zipFile, work, limits);
    const libs = files.filter((f) => !f.includes('/') && /^[A-Za-z0-9_-]+(@[^/]+)?\.(so|node)$/.test(f));
    if (libs.length !== 1) {
      throw new StreamplugError('E_ZIP_NO_LIBRARY', `${zipFile} holds ${libs.length} libraries at its root; expected exactly one NAME.so or NAME.node`, {
        found: libs,
      });
    }
    const library = libs[0];
    const base = library.replace(/(@[^/]+)?\.(so|node)$/, '');
    const sigName = `${base}.sig`;
    const entries = files
      .filter((f) => f !== sigName && f !== `${library}.sig`)
      .map((f) => ({ name: f, file: path.join(work, f) }) as { name: string; file?: string; data?: Buffer });
    const sig = signManifest(manifestOf(entries), privateKeyPem);
    entries.push({ name: sigName, data: Buffer.from(JSON.stringify(sig) + '\n') });
    await writeZip(entries, out);
    return { library, key: sig.key };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
