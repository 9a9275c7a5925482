/**
 * The `.note.streamplug` manifest text: the grammar of plugin.h ("GRAMMAR"), byte for byte. Its
 * twin is native/host/manifest.cc; both run test/fixtures/manifest-vectors.json, so change both.
 */
import { LIMITS } from './contract.js';
import type { Manifest } from './types.js';

export const NOTE_OWNER = 'streamplug';
export const NOTE_TYPE_MANIFEST = 1;

const KEY_RE = /^[a-z][a-z0-9_]*$/;
const PAIR_RE = /^(\d{1,5})\.(\d{1,5})$/;
const EXTENSION_RE = /^(function|source|sink):[^ ]+$/;

const quote = (s: string) => JSON.stringify(s.slice(0, 40));

/** The grammar alone: key/value fields, or the reason the text breaks it. */
export function parseManifestFields(desc: Buffer): { fields: Record<string, string> } | { error: string } {
  const nul = desc.indexOf(0);
  const bytes = desc.subarray(0, nul < 0 ? desc.length : nul);
  if (bytes.length > LIMITS.manifestBytes) {
    return { error: `its text is ${bytes.length} bytes, more than SP_MAX_MANIFEST_BYTES (${LIMITS.manifestBytes})` };
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { error: 'its text is not UTF-8' };
  }
  if (text.includes('\r')) return { error: "it contains a carriage return ('\\r'); lines end with '\\n' alone" };
  if (text.length === 0) return { error: 'it is empty' };
  if (!text.endsWith('\n')) return { error: "its last line does not end with '\\n'" };
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') return { error: 'it has an empty line' };
    const eq = line.indexOf('=');
    const key = eq < 0 ? '' : line.slice(0, eq);
    if (!KEY_RE.test(key)) return { error: `line ${quote(line)} is not key=value with a key of [a-z][a-z0-9_]*` };
    if (key in fields) return { error: `key ${key} appears twice` };
    fields[key] = line.slice(eq + 1);
  }
  if (fields.contract === undefined) return { error: 'it has no contract= line' };
  if (!PAIR_RE.test(fields.contract)) return { error: `contract=${quote(fields.contract)} is not MAJOR.MINOR` };
  if (fields.header !== undefined && !PAIR_RE.test(fields.header)) return { error: `header=${quote(fields.header)} is not MAJOR.MINOR` };
  if (!fields.name) return { error: 'it has no name= line' };
  if (fields.extensions) {
    for (const item of fields.extensions.split(',')) {
      if (!EXTENSION_RE.test(item)) return { error: `extensions item ${quote(item)} is not function:NAME, source:NAME or sink:NAME` };
    }
  }
  return { fields };
}

/** Parses the note's description; returns a reason string when it is not a usable manifest. */
export function parseManifest(desc: Buffer): Manifest | string {
  const parsed = parseManifestFields(desc);
  if ('error' in parsed) return parsed.error;
  const raw = parsed.fields;
  const m = PAIR_RE.exec(raw.contract)!;
  const h = raw.header !== undefined ? PAIR_RE.exec(raw.header)! : undefined;
  return {
    contract: raw.contract,
    contractMajor: Number(m[1]),
    contractMinor: Number(m[2]),
    header: raw.header,
    headerMinor: h ? Number(h[2]) : undefined,
    name: raw.name,
    version: raw.version ?? '',
    extensions: raw.extensions ? raw.extensions.split(',') : [],
    arch: raw.arch,
    libc: raw.libc,
    raw: { ...raw },
  };
}
