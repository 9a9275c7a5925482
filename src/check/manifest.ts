/** The `.note.streamplug` manifest: `key=value` lines, see plugin.h. */
import type { Manifest } from './types.js';

export const NOTE_OWNER = 'streamplug';
export const NOTE_TYPE_MANIFEST = 1;

/** Parses the note's description; returns a reason string when it is not a usable manifest. */
export function parseManifest(desc: Buffer): Manifest | string {
  const nul = desc.indexOf(0);
  const text = desc.toString('utf8', 0, nul < 0 ? desc.length : nul);
  if (text.includes('\ufffd')) return 'its text is not UTF-8';
  const raw: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return `line ${JSON.stringify(line.slice(0, 40))} is not key=value`;
    raw[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  const contract = raw.contract;
  if (contract === undefined) return 'it has no contract= line';
  const m = /^(\d{1,5})\.(\d{1,5})$/.exec(contract);
  if (!m) return `contract=${JSON.stringify(contract)} is not MAJOR.MINOR`;
  if (!raw.name) return 'it has no name= line';
  return {
    contract,
    contractMajor: Number(m[1]),
    contractMinor: Number(m[2]),
    name: raw.name,
    version: raw.version ?? '',
    extensions: (raw.extensions ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    arch: raw.arch,
    libc: raw.libc,
    raw,
  };
}
