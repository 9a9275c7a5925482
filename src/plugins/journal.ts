/**
 * The crash journal of this process (native/host/journal.cc): opened once per host, after the data
 * directory's lock and before any plugin code runs. It also installs the fatal-signal handler.
 */
import { hostAddon, type JournalReport } from './native-addon.js';

/**
 * Starts the journal at `file` and returns what the previous run left there. Without the addon (a
 * build without native code) there is no native plugin code to guard: undefined. A journal that
 * cannot be opened is reported through `warn` and the host runs without one.
 */
export function openCrashJournal(file: string, warn: (message: string) => void): JournalReport | undefined {
  let addon;
  try {
    addon = hostAddon();
  } catch {
    return undefined;
  }
  try {
    return addon.journalOpen(file);
  } catch (e) {
    warn(`E_JOURNAL: ${(e as Error).message}; crashes inside plugins will not be attributed at the next start`);
    return undefined;
  }
}
