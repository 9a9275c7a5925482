import fs from 'node:fs';
import path from 'node:path';
import type { DataLayout, PluginType } from './layout.js';
import { isPluginType } from './layout.js';
import type { PluginRecord } from './types.js';

/** Atomic write: a crash leaves either the old record or the new one, never half a file. */
export function writeRecord(layout: DataLayout, rec: PluginRecord): void {
  const file = layout.recordFile(rec.type, rec.name);
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, JSON.stringify(rec, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function deleteRecord(layout: DataLayout, type: PluginType, name: string): void {
  fs.rmSync(layout.recordFile(type, name), { force: true });
}

/**
 * Parsed records by file, valid while the file's inode, size and mtime stay the same: a list or a
 * describe does not re-parse every record (metadata included) each time. writeRecord renames a
 * new file into place, so a changed record always has a new inode.
 */
const parsed = new Map<string, { key: string; rec: PluginRecord }>();

function parseRecordFile(file: string, readOnly = false): PluginRecord {
  const st = fs.statSync(file);
  const k = `${st.ino}:${st.size}:${st.mtimeMs}`;
  const hit = parsed.get(file);
  if (hit && hit.key === k) return readOnly ? hit.rec : structuredClone(hit.rec);
  const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as PluginRecord;
  if (parsed.size > 4096) parsed.clear(); // bounded: many data directories in one process (tests)
  parsed.set(file, { key: k, rec });
  return readOnly ? rec : structuredClone(rec);
}

export function readRecord(layout: DataLayout, type: PluginType, name: string): PluginRecord | undefined {
  try {
    return parseRecordFile(layout.recordFile(type, name));
  } catch {
    return undefined;
  }
}

export interface RecordScan {
  records: PluginRecord[];
  /** Record files that could not be read or do not match their file name (removed by the caller). */
  broken: string[];
}

/** `readOnly`: the cached objects themselves, for callers that never change them (list). */
export function readAllRecords(layout: DataLayout, opts: { readOnly?: boolean } = {}): RecordScan {
  const out: RecordScan = { records: [], broken: [] };
  if (!fs.existsSync(layout.recordsDir)) return out;
  for (const f of fs.readdirSync(layout.recordsDir).sort()) {
    const full = path.join(layout.recordsDir, f);
    const m = /^([a-z]+)\.([A-Za-z0-9_-]+)\.json$/.exec(f);
    if (!m) {
      out.broken.push(full); // temp files of an interrupted write, strays
      continue;
    }
    try {
      const rec = parseRecordFile(full, opts.readOnly);
      if (!isPluginType(m[1]) || rec.type !== m[1] || rec.name !== m[2] || typeof rec.file !== 'string') throw new Error('mismatch');
      out.records.push(rec);
    } catch {
      out.broken.push(full);
    }
  }
  return out;
}
