import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { StreamplugError } from '../errors.js';

/**
 * Listens on a unix socket that only the host's user can connect to, as Docker's daemon does: the
 * file system decides who may talk to the API. The socket is created under a umask of 077 so that
 * there is no moment at which others could connect, then chmod'ed 0600 to be explicit.
 */
export async function listenOnSocket(server: FastifyInstance, socketPath: string): Promise<string> {
  const file = path.resolve(socketPath);
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (st) {
    if (!st.isSocket()) {
      throw new StreamplugError('E_CONFLICT', `${file} exists and is not a socket; expected a free path for the API socket`, { file });
    }
    fs.rmSync(file); // left by a host that died; the data directory lock says none runs now
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const old = process.umask(0o077);
  try {
    await server.listen({ path: file });
  } finally {
    process.umask(old);
  }
  fs.chmodSync(file, 0o600);
  return file;
}
