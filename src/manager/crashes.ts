/**
 * From what the crash journal recorded to the plugin records it quarantines. The journal names a
 * file (its path) and the plugin as it was known then (descriptor name, or the file name when it
 * crashed inside dlopen); records are matched by file first.
 */
import path from 'node:path';
import type { JournalEntry, JournalReport } from '../plugins/native-addon.js';
import type { CrashInfo, PluginRecord } from './types.js';

/** Hooks of loading: a host that ended (no crash, no clean exit) while in one of them ended there. */
const LOAD_HOOKS = new Set(['dlopen', 'describe', 'init']);

/**
 * The crashes to act on. A fatal signal or exit() inside plugin code is certain. Without one, a
 * process that did not end cleanly while a thread was loading a plugin (_exit() in a constructor,
 * a kill during a hung init) is blamed on that load; a thread inside a long-running hook (a
 * source's run loop) when the host was killed is not a crash.
 */
export function crashesIn(journal: JournalReport | undefined): JournalEntry[] {
  if (!journal?.existed) return [];
  const certain = journal.entries.filter((e) => e.kind !== 'inside');
  if (certain.length > 0 || journal.clean) return certain;
  return journal.entries.filter((e) => LOAD_HOOKS.has(e.hook));
}

export function matchRecord(entry: { path?: string; plugin: string }, records: readonly PluginRecord[]): PluginRecord | undefined {
  const base = entry.path ? path.basename(entry.path) : '';
  return records.find((r) => base !== '' && r.file === base) ?? records.find((r) => r.name === entry.plugin);
}

export function crashMessage(c: Omit<CrashInfo, 'message'>): string {
  const how =
    c.kind === 'signal' ? `with ${c.signal ?? 'a fatal signal'}${c.address ? ` at address ${c.address}` : ''}` :
    c.kind === 'exit' ? 'by calling exit()' :
    c.kind === 'worker' ? `(its worker died${c.signal ? ` of ${c.signal}` : ''})` :
    'while it was being loaded (the host ended inside its load)';
  // an isolated plugin takes down only its worker; saying "the host" there would send operators the wrong way
  const what = c.kind === 'worker' ? 'crashed its isolated worker' : 'crashed the host';
  return `plugin ${c.plugin} ${what} at ${c.at} in hook ${c.hook ?? 'unknown'}${c.rule ? ` (rule ${c.rule})` : ''} ${how}`;
}

export function crashInfo(e: JournalEntry, found: string): CrashInfo {
  const base: Omit<CrashInfo, 'message'> = {
    code: 'E_PLUGIN_CRASHED',
    plugin: e.plugin,
    at: e.time || found,
    hook: e.hook,
    kind: e.kind,
    ...(e.rule ? { rule: e.rule } : {}),
    ...(e.signal ? { signal: e.signal } : {}),
    ...(e.address ? { address: e.address } : {}),
    ...(e.backtrace.length ? { backtrace: e.backtrace } : {}),
  };
  return { ...base, message: crashMessage(base) };
}
