import fs from 'node:fs';
import path from 'node:path';
import { StreamplugError } from '../../errors.js';

/**
 * Which local paths a REST client may name as the zip to install (`"file": "/path"` or file://).
 * Without a limit the host would open any file it can read for any caller — a probe for which paths
 * exist. `roots` undefined means no limit, which the host allows only when auth is on.
 */
export interface FileRootPolicy {
  roots?: string[];
}

export function fileRootsFor(authOn: boolean, configured: string[] | undefined): FileRootPolicy {
  if (configured && configured.length) return { roots: configured.map((r) => path.resolve(r)) };
  return authOn ? {} : { roots: [] };
}

/**
 * Refuses a path outside the roots before touching it, with the same answer whether or not it
 * exists. Symbolic links are resolved first so that a link inside a root cannot point outside.
 */
export function assertInsideRoots(file: string, policy: FileRootPolicy): void {
  if (!policy.roots) return;
  let real: string;
  try {
    real = fs.realpathSync(path.resolve(file));
  } catch {
    real = path.resolve(file); // judged by name; whether it exists is not told
  }
  const inside = policy.roots.some((r) => {
    let root = r;
    try {
      root = fs.realpathSync(r);
    } catch {
      /* a missing root holds nothing */
    }
    return real === root || real.startsWith(root + path.sep);
  });
  if (!inside) {
    throw new StreamplugError(
      'E_URL_FORBIDDEN',
      policy.roots.length
        ? `local zip paths are limited to the configured roots (${policy.roots.join(', ')}); upload the zip instead, or add its folder with --file-root`
        : 'this host installs no local zip paths named by a REST client (auth is off and no --file-root is configured); upload the zip instead',
    );
  }
}

/**
 * A path a REST client named must be a readable zip before the manager opens it, and every way of
 * not being one (missing, a folder, unreadable, not a zip) gets the same answer: otherwise the
 * error codes would tell a caller which paths exist on the host. The manager's own, more precise
 * messages stay for the CLI working on a data directory, where the caller is the machine's operator.
 */
export function assertNamedZip(file: string): void {
  const resolved = path.resolve(file);
  let ok = false;
  let fd: number | undefined;
  try {
    fd = fs.openSync(resolved, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    if (fs.fstatSync(fd).isFile()) {
      const head = Buffer.alloc(4);
      ok = fs.readSync(fd, head, 0, 4, 0) === 4 && head.readUInt32LE(0) === 0x04034b50; // "PK\3\4"
    }
  } catch {
    ok = false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  if (!ok) {
    throw new StreamplugError(
      'E_FILE_REFUSED',
      `cannot install from ${resolved}: it is not a readable zip file on this host (whether it exists is not told); name a plugin zip made with \`streamplug pack\`, or upload it`,
    );
  }
}
