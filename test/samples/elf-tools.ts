/** readelf wrappers for the sample-plugin tests: notes, exported and undefined dynamic symbols. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const readelf = (...args: string[]): string => execFileSync('readelf', ['-W', ...args], { encoding: 'utf8' });

/** e_type of an ELF file (3 = ET_DYN, a shared object), or undefined when it is not ELF. */
export function elfType(file: string): number | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(18);
    fs.readSync(fd, head, 0, 18, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46) return undefined;
    return head[5] === 1 ? head.readUInt16LE(16) : head.readUInt16BE(16);
  } finally {
    fs.closeSync(fd);
  }
}

/** The streamplug manifest notes of a file, each decoded to its key=value text. */
export function streamplugNotes(file: string): string[] {
  const out = readelf('-n', file);
  const notes: string[] = [];
  let inSection = false;
  let owner = '';
  for (const line of out.split('\n')) {
    if (line.startsWith('Displaying notes found in:')) {
      inSection = line.includes('.note.streamplug');
      continue;
    }
    if (!inSection) continue;
    const fields = line.trim().split(/\s+/);
    if (/^0x[0-9a-f]+$/.test(fields[1] ?? '')) owner = fields[0] ?? '';
    const data = /description data:\s*([0-9a-f ]+)/.exec(line);
    if (data && owner === 'streamplug') {
      const bytes = Buffer.from(data[1].trim().split(/\s+/).map((h) => parseInt(h, 16)));
      notes.push(bytes.toString('utf8').replace(/\0+$/, ''));
    }
  }
  return notes;
}

export function parseManifest(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** True when some PT_NOTE segment maps .note.streamplug (what a loader-free reader scans). */
export function noteInNoteSegment(file: string): boolean {
  const out = readelf('-l', file);
  const headers = out.split('\n').filter((l) => /^\s+[A-Z_]+\s+0x/.test(l)).map((l) => l.trim().split(/\s+/)[0]);
  const mapping = out.split('Section to Segment mapping:')[1] ?? '';
  return mapping
    .split('\n')
    .map((l) => /^\s+(\d+)\s+(.*)$/.exec(l))
    .some((m) => m !== null && headers[Number(m[1])] === 'NOTE' && m[2].split(/\s+/).includes('.note.streamplug'));
}

export interface DynSym {
  name: string;
  type: string;
  bind: string;
  defined: boolean;
}

export function dynamicSymbols(file: string): DynSym[] {
  const syms: DynSym[] = [];
  for (const line of readelf('--dyn-syms', file).split('\n')) {
    const f = line.trim().split(/\s+/);
    // Num: Value Size Type Bind Vis Ndx Name
    if (f.length < 8 || !/^\d+:$/.test(f[0])) continue;
    syms.push({ name: f[7].replace(/@.*$/, ''), type: f[3], bind: f[4], defined: f[6] !== 'UND' });
  }
  return syms;
}
