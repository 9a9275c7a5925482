import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** `<data>/etc/api-token`: the bearer token the host accepts, written at first start (mode 0600). */
export function apiTokenFile(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'etc', 'api-token');
}

/** A short, non-secret name for a token (audit entries say who without storing the secret). */
export function tokenId(token: string): string {
  return `token:${crypto.createHash('sha256').update(token).digest('hex').slice(0, 12)}`;
}

export function readApiToken(dataDir: string): string | undefined {
  try {
    const t = fs.readFileSync(apiTokenFile(dataDir), 'utf8').trim();
    return t || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns the data directory's token, creating it when absent. Created with O_EXCL and mode 0600 so
 * that no other local user can read it and two starts cannot write different tokens. An existing file
 * readable by others is tightened to 0600: a token others can read is no secret.
 */
export function ensureApiToken(dataDir: string): string {
  const file = apiTokenFile(dataDir);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const existing = readApiToken(dataDir);
  if (existing) {
    const st = fs.statSync(file);
    if ((st.mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
    return existing;
  }
  const token = crypto.randomBytes(32).toString('base64url');
  const tmp = `${file}.${process.pid}.tmp`;
  // no trailing newline: a client that reads the file verbatim gets a valid header value
  fs.writeFileSync(tmp, token, { mode: 0o600, flag: 'w' });
  fs.chmodSync(tmp, 0o600); // the umask may have narrowed mode, never widened it; make it exact
  fs.renameSync(tmp, file);
  return token;
}

/** Constant-time comparison of a presented token with the expected one. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(presented).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}
