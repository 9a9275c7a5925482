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
