import fs from 'node:fs';
import { StreamplugError } from '../errors.js';

export interface HostLock {
  pid: number;
  url?: string;
  startedAt: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live host running on a data directory, if any (a lock left by a dead process does not count). */
export function runningHost(lockFile: string): HostLock | undefined {
  try {
    const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as HostLock;
    return lock.pid !== process.pid && alive(lock.pid) ? lock : undefined;
  } catch {
    return undefined;
  }
}

/** One host per data directory: two would both sweep and rename the same files. */
export function acquireLock(lockFile: string): void {
  const other = runningHost(lockFile);
  if (other) {
    throw new StreamplugError(
      'E_HOST_RUNNING',
      `a host (pid ${other.pid}${other.url ? `, ${other.url}` : ''}) already runs on this data directory; stop it or use another --data`,
      { pid: other.pid, url: other.url },
    );
  }
  writeLock(lockFile, { pid: process.pid, startedAt: new Date().toISOString() });
}

export function writeLock(lockFile: string, lock: HostLock): void {
  const tmp = `${lockFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(lock) + '\n');
  fs.renameSync(tmp, lockFile);
}

export function releaseLock(lockFile: string): void {
  try {
    const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as HostLock;
    if (lock.pid === process.pid) fs.rmSync(lockFile, { force: true });
  } catch {
    // already gone
  }
}
