/**
 * One host per data directory, through `<data>/host.lock`: a JSON file naming the process that holds it.
 *
 * A lock left behind by a crash (kill -9, OOM, power loss) must not block the next start, so the lock
 * records, besides the PID, the process's start time (/proc/<pid>/stat field 22) and the kernel's boot
 * id. A lock counts only while that very process is alive: a PID that is gone, a zombie not reaped yet
 * (right after kill -9 the parent may not have called wait()), a PID reused by another process (start
 * time differs) or a lock from before a reboot (boot id differs) are all stale, and a start takes over.
 * Where /proc is missing (not Linux) only `kill(pid, 0)` is available.
 */
import fs from 'node:fs';
import { StreamplugError } from '../errors.js';

export interface HostLock {
  pid: number;
  url?: string;
  startedAt: string;
  /** /proc/<pid>/stat starttime (clock ticks since boot), when known. */
  procStart?: string;
  /** /proc/sys/kernel/random/boot_id, when known. */
  bootId?: string;
}

interface ProcInfo {
  state: string;
  start: string;
}

function procInfo(pid: number): ProcInfo | undefined | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (e) {
    // No such process, or no /proc at all (null: cannot tell from here).
    return fs.existsSync('/proc/self/stat') ? undefined : null;
  }
  // "pid (comm) state ppid ... starttime(22) ...": comm may hold spaces and parentheses.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], start: rest[19] };
}

function bootId(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The identity this process writes into its lock. */
function selfLock(url?: string): HostLock {
  const me = procInfo(process.pid);
  return {
    pid: process.pid,
    ...(url ? { url } : {}),
    startedAt: new Date().toISOString(),
    ...(me ? { procStart: me.start } : {}),
    ...(bootId() ? { bootId: bootId() } : {}),
  };
}

/** Whether the process that wrote this lock still runs. */
export function lockHolderAlive(lock: HostLock): boolean {
  if (!Number.isInteger(lock.pid) || lock.pid <= 0) return false;
  const boot = bootId();
  if (lock.bootId && boot && lock.bootId !== boot) return false;
  const info = procInfo(lock.pid);
  if (info === undefined) return false;
  if (info !== null) {
    if (info.state === 'Z' || info.state === 'X') return false;
    if (lock.procStart && lock.procStart !== info.start) return false;
    return true;
  }
  try {
    process.kill(lock.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(lockFile: string): HostLock | undefined {
  try {
    return JSON.parse(fs.readFileSync(lockFile, 'utf8')) as HostLock;
  } catch {
    return undefined;
  }
}

/** The live host running on a data directory, if any (a lock left by a dead process does not count). */
export function runningHost(lockFile: string): HostLock | undefined {
  const lock = readLock(lockFile);
  return lock && lock.pid !== process.pid && lockHolderAlive(lock) ? lock : undefined;
}

function refuse(other: HostLock): StreamplugError {
  return new StreamplugError(
    'E_HOST_RUNNING',
    `a host (pid ${other.pid}${other.url ? `, ${other.url}` : ''}) already runs on this data directory; stop it or use another --data`,
    { pid: other.pid, url: other.url },
  );
}

/**
 * One host per data directory: two would both sweep and rename the same files. The lock file is
 * created exclusively (O_EXCL), so of two starts racing for a free or stale lock only one wins.
 */
export function acquireLock(lockFile: string): void {
  for (let attempt = 0; attempt < 5; attempt++) {
    const other = runningHost(lockFile);
    if (other) throw refuse(other);
    const stale = readLock(lockFile);
    if (stale || fs.existsSync(lockFile)) {
      // Dead holder (or unreadable file): move it aside atomically; a racing start that got there first wins.
      try {
        fs.renameSync(lockFile, `${lockFile}.stale`);
      } catch {
        continue;
      }
      // A racing start may have written its live lock between our read and the rename: put it back.
      const moved = readLock(`${lockFile}.stale`);
      if (moved && moved.pid !== process.pid && lockHolderAlive(moved)) {
        fs.renameSync(`${lockFile}.stale`, lockFile);
        throw refuse(moved);
      }
    }
    try {
      fs.writeFileSync(lockFile, JSON.stringify(selfLock()) + '\n', { flag: 'wx' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const other = runningHost(lockFile);
  if (other) throw refuse(other);
  throw new StreamplugError('E_HOST_RUNNING', `could not take ${lockFile}: another process keeps replacing it; stop the other start and retry`, { lockFile });
}

/** Rewrites this process's lock (the URL becomes known once the server listens). */
export function writeLock(lockFile: string, lock: Pick<HostLock, 'url'> & Partial<HostLock>): void {
  const tmp = `${lockFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ ...selfLock(lock.url), ...lock }) + '\n');
  fs.renameSync(tmp, lockFile);
}

export function releaseLock(lockFile: string): void {
  const lock = readLock(lockFile);
  if (lock?.pid === process.pid) fs.rmSync(lockFile, { force: true });
}
