import fs from 'node:fs';
import path from 'node:path';

/** One change to the installed plugins: who did what, to which bytes, when. */
export interface AuditEntry {
  at: string;
  action: 'install' | 'update' | 'delete' | 'enable' | 'quarantine' | string;
  type: string;
  name: string;
  /** "token:<id>", "jwt:<subject>", "anonymous" (--no-auth), "cli" (direct on the data directory), "host" (the host itself). */
  actor: string;
  /** sha256 of the library concerned (the new one for install/update, the removed one for delete). */
  sha256?: string;
  outcome: 'ok' | 'refused';
  /** Error code of a refusal. */
  code?: string;
}

/** `<data>/plugins/audit.jsonl`: append-only, one JSON object per line, kept with the plugins it describes. */
export function auditFile(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'plugins', 'audit.jsonl');
}

/**
 * Appends an entry. The one place every change is recorded: the manager calls it for install,
 * update and delete; enable and quarantine call it too (`action` is open for them).
 */
export function appendAudit(dataDir: string, entry: Omit<AuditEntry, 'at'> & { at?: string }): AuditEntry {
  // refused requests can carry any name a client sent: keep entries small
  const clip = (v: string) => (v.length > 200 ? `${v.slice(0, 200)}…` : v);
  const full: AuditEntry = { ...entry, at: entry.at ?? new Date().toISOString(), type: clip(String(entry.type)), name: clip(String(entry.name)) } as AuditEntry;
  const file = auditFile(dataDir);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(file, JSON.stringify(full) + '\n', { mode: 0o600 });
  return full;
}

/** The newest `max` entries, oldest first. A damaged line is skipped, never fatal. */
export function readAudit(dataDir: string, max = 10_000): AuditEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(auditFile(dataDir), 'utf8');
  } catch {
    return [];
  }
  const out: AuditEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as AuditEntry);
    } catch {
      /* a torn last line after a crash */
    }
  }
  return out.slice(-max);
}
