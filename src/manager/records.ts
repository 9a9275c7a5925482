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

export function readRecord(layout: DataLayout, type: PluginType, name: string): PluginRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(layout.recordFile(type, name), 'utf8')) as PluginRecord;
  } catch {
    return undefined;
  }
}

export interface RecordScan {
  records: PluginRecord[];
  /** Record files that could not be read or do not match their file name (removed by the caller). */
  broken: string[];
}

export function readAllRecords(layout: DataLayout): RecordScan {
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
      const rec = JSON.parse(fs.readFileSync(full, 'utf8')) as PluginRecord;
      if (!isPluginType(m[1]) || rec.type !== m[1] || rec.name !== m[2] || typeof rec.file !== 'string') throw new Error('mismatch');
      out.records.push(rec);
    } catch {
      out.broken.push(full);
    }
  }
  return out;
}
