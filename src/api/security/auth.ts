import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { jwtVerify, decodeJwt, errors as joseErrors } from 'jose';
import { StreamplugError } from '../../errors.js';
import { ensureApiToken, tokenId, tokenMatches } from './token.js';

/** Who made a request, as the audit log names them. */
export interface Principal {
  /** "token:<12 hex>" for the data directory's token, the JWT's subject, or "anonymous" with --no-auth. */
  id: string;
}

export interface Authenticator {
  mode: 'token' | 'jwt' | 'none';
  /** The principal, or a 401 StreamplugError saying what was wrong. */
  authenticate(authorization: string | undefined): Promise<Principal>;
}

export type AuthMode = Authenticator['mode'];

function unauthorized(message: string): StreamplugError {
  return new StreamplugError('E_UNAUTHORIZED', message);
}

function bearer(authorization: string | undefined, hint: string): string {
  if (!authorization) throw unauthorized(`this endpoint needs "Authorization: Bearer <token>"; ${hint}`);
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  if (!m) throw unauthorized(`the Authorization header is not "Bearer <token>"; ${hint}`);
  return m[1];
}

/** The default: one random token in `<data>/etc/api-token`, created at first start. */
export function tokenAuthenticator(dataDir: string): Authenticator {
  const token = ensureApiToken(dataDir);
  const id = tokenId(token);
  const hint = 'the token is in <data>/etc/api-token (the CLI reads it by itself)';
  return {
    mode: 'token',
    async authenticate(authorization) {
      const presented = bearer(authorization, hint);
      if (!tokenMatches(presented, token)) throw unauthorized(`the bearer token is wrong; ${hint}`);
      return { id };
    },
  };
}

/** `<data>/etc/mgmt/`: public keys for JWT mode, one PEM file per issuer (eKuiper's layout). */
export function mgmtKeysDir(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'etc', 'mgmt');
}

/**
 * eKuiper's `authentication: true`: an RS256 JWT whose `iss` names a public key file in etc/mgmt/
 * (`<iss>`, `<iss>.pub` or `<iss>.pem`) and whose `aud` is "eKuiper" (or "streamplug"). Keys are
 * read at each request so that adding or removing a key file takes effect without restart; the
 * verification itself is jose's.
 */
export function jwtAuthenticator(dataDir: string): Authenticator {
  const dir = mgmtKeysDir(dataDir);
  const hint = `expected an RS256 JWT whose "iss" names a public key in ${dir}`;
  return {
    mode: 'jwt',
    async authenticate(authorization) {
      const jwt = bearer(authorization, hint);
      let iss: unknown;
      try {
        iss = decodeJwt(jwt).iss;
      } catch {
        throw unauthorized(`the bearer token is not a JWT; ${hint}`);
      }
      if (typeof iss !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(iss) || iss.startsWith('.')) {
        throw unauthorized(`the JWT has no usable "iss" claim; ${hint}`);
      }
      const file = [iss, `${iss}.pub`, `${iss}.pem`].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
      if (!file) throw unauthorized(`no public key for issuer "${iss}"; ${hint}`);
      let key: crypto.KeyObject;
      try {
        key = crypto.createPublicKey(fs.readFileSync(file));
      } catch {
        throw unauthorized(`the public key of issuer "${iss}" is unreadable; expected an RSA public key in PEM`);
      }
      try {
        const { payload } = await jwtVerify(jwt, key, { algorithms: ['RS256'], audience: ['eKuiper', 'streamplug'] });
        return { id: typeof payload.sub === 'string' && payload.sub ? `jwt:${payload.sub}` : `jwt-issuer:${iss}` };
      } catch (e) {
        const why = e instanceof joseErrors.JOSEError ? e.code : 'invalid';
        throw unauthorized(`the JWT does not verify (${why}); ${hint}, an "aud" of eKuiper and an unexpired "exp"`);
      }
    },
  };
}

/** `--no-auth`: eKuiper's unauthenticated behaviour. */
export const noAuthenticator: Authenticator = {
  mode: 'none',
  async authenticate() {
    return { id: 'anonymous' };
  },
};

export function makeAuthenticator(mode: AuthMode, dataDir: string): Authenticator {
  if (mode === 'jwt') return jwtAuthenticator(dataDir);
  if (mode === 'none') return noAuthenticator;
  return tokenAuthenticator(dataDir);
}
