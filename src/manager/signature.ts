import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StreamplugError } from '../errors.js';

/**
 * Ed25519 signatures. The signature file (`NAME.sig` in a zip) is JSON so that a refusal can say
 * which key signed it. It signs a manifest of every file in the zip (library, metadata, yaml, etc/,
 * private libraries) — not the library alone, so that a forged `version` or an added `etc/hook.sh`
 * breaks it. A `.sig` without `files` (the old, library-only form, or `LIB.sig` beside a library)
 * is never accepted as a signature of a zip.
 */
export interface SignatureFile {
  alg: 'ed25519';
  /** Fingerprint of the signing public key: sha256 of its SPKI DER, hex, first 16 chars. */
  key: string;
  /** base64 signature over manifestText(files) (or, old form, over the library bytes). */
  sig: string;
  /** Every file of the zip but the .sig itself: zip path → sha256 hex. */
  files?: Record<string, string>;
}

/** The exact bytes signed: a header line, then "sha256  path" per file, sorted by path. */
export function manifestText(files: Record<string, string>): Buffer {
  const lines = Object.keys(files)
    .sort()
    .map((f) => `${files[f]}  ${f}\n`);
  return Buffer.from('streamplug-manifest-v1\n' + lines.join(''));
}

/** sha256 of each named file under `dir` (zip paths with "/"). */
export function hashFiles(dir: string, entries: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) out[e] = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, e))).digest('hex');
  return out;
}

export function signManifest(files: Record<string, string>, privatePem: string | Buffer): SignatureFile {
  return { ...signBytes(manifestText(files), privatePem), files };
}

/**
 * Verifies a zip's manifest signature against what was actually unpacked (`found`: every file but
 * the .sig). Returns the fingerprint of the trusted key, or undefined when the signature is absent
 * or from a key this host does not trust and signatures are not required. A signature from a
 * trusted key that does not verify is always refused: that is tampering, required or not.
 */
export function verifyManifest(
  found: Record<string, string>,
  signature: SignatureFile | undefined,
  keys: TrustedKey[],
  opts: { required: boolean; what: string },
): string | undefined {
  const fail = (reason: string, message: string, extra: Record<string, unknown> = {}) =>
    new StreamplugError('E_SIGNATURE', message, { reason, ...extra });
  if (!signature) {
    if (!opts.required) return undefined;
    throw fail('unsigned', `${opts.what} is unsigned and this host requires signatures (requireSignatures); sign the zip with \`streamplug sign --key PRIVATE.pem ZIP\``);
  }
  const key = keys.find((k) => k.fingerprint === signature.key);
  if (!key) {
    if (!opts.required) return undefined;
    throw fail(
      'untrusted-key',
      `${opts.what} is signed by key ${signature.key}, which is not trusted here (trusted: ${keys.map((k) => k.fingerprint).join(', ') || 'none'}); add its public key to etc/trusted-keys or re-sign`,
      { key: signature.key },
    );
  }
  if (!signature.files || typeof signature.files !== 'object') {
    throw fail('library-only', `${opts.what}'s signature covers the library only (an old or LIB.sig signature); sign the whole zip with \`streamplug sign --key PRIVATE.pem ZIP\``, {
      key: signature.key,
    });
  }
  if (!crypto.verify(null, manifestText(signature.files), key.key, Buffer.from(signature.sig, 'base64'))) {
    throw fail('bad-signature', `${opts.what}'s signature by key ${signature.key} does not verify: the signature is damaged or its file list was edited; re-sign the zip`, {
      key: signature.key,
    });
  }
  const changed = Object.keys(found).filter((f) => signature.files![f] !== found[f]);
  const missing = Object.keys(signature.files).filter((f) => !(f in found));
  if (changed.length || missing.length) {
    const unsigned = changed.filter((f) => !(f in signature.files!));
    const modified = changed.filter((f) => f in signature.files!);
    throw fail(
      'not-covered',
      `${opts.what} differs from what key ${signature.key} signed (${[
        modified.length ? `changed: ${modified.join(', ')}` : '',
        unsigned.length ? `not signed: ${unsigned.join(', ')}` : '',
        missing.length ? `missing: ${missing.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; ')}); expected the zip exactly as signed: re-sign it after every change`,
      { key: signature.key, changed: modified, unsigned, missing },
    );
  }
  return key.fingerprint;
}

export interface TrustedKey {
  fingerprint: string;
  source: string;
  key: crypto.KeyObject;
}

export function fingerprint(key: crypto.KeyObject): string {
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export function signBytes(data: Buffer, privatePem: string | Buffer): SignatureFile {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(privatePem);
  } catch (e) {
    throw new StreamplugError('E_SIGNATURE', `the signing key is not a readable PEM private key (${(e as Error).message}); expected an ed25519 key from \`streamplug keygen\``);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new StreamplugError('E_SIGNATURE', `the signing key is ${key.asymmetricKeyType}; expected ed25519 (\`streamplug keygen\` makes one)`);
  }
  return { alg: 'ed25519', key: fingerprint(key), sig: crypto.sign(null, data, key).toString('base64') };
}

export function generateKeyPair(): { privatePem: string; publicPem: string; fingerprint: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    fingerprint: fingerprint(publicKey),
  };
}

/** Public keys from `<data>/etc/trusted-keys/*.pem` plus any extra PEM files given. Unreadable keys are errors. */
export function loadTrustedKeys(dir: string, extraFiles: string[] = []): TrustedKey[] {
  const files: string[] = [];
  if (fs.existsSync(dir)) {
    for (const f of fs.readdirSync(dir).sort()) if (f.endsWith('.pem')) files.push(path.join(dir, f));
  }
  files.push(...extraFiles.map((f) => path.resolve(f)));
  return files.map((file) => {
    try {
      const key = crypto.createPublicKey(fs.readFileSync(file));
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${key.asymmetricKeyType} key, expected ed25519`);
      return { fingerprint: fingerprint(key), source: file, key };
    } catch (e) {
      throw new StreamplugError('E_SIGNATURE', `trusted key ${file} is unusable (${(e as Error).message}); expected an ed25519 public key in PEM`, {
        file,
      });
    }
  });
}

export function parseSignature(text: string, where: string): SignatureFile {
  try {
    const s = JSON.parse(text) as SignatureFile;
    const filesOk =
      s.files === undefined ||
      (typeof s.files === 'object' && s.files !== null && !Array.isArray(s.files) && Object.values(s.files).every((v) => typeof v === 'string'));
    if (s.alg === 'ed25519' && typeof s.key === 'string' && typeof s.sig === 'string' && filesOk) return s;
  } catch {
    // fall through
  }
  throw new StreamplugError('E_SIGNATURE', `${where} is not a streamplug signature; expected the JSON written by \`streamplug sign\``, { file: where });
}

/**
 * At start: an installed library is loaded only if its recorded manifest signature still verifies
 * and names these exact library bytes. The record keeps the signature taken at install.
 */
export function verifyInstalled(
  librarySha256: string,
  libName: string,
  signature: SignatureFile | undefined,
  keys: TrustedKey[],
  required: boolean,
): string | undefined {
  if (!signature || !signature.files) {
    if (!required) return undefined;
    throw new StreamplugError('E_SIGNATURE', `${libName} was installed without a zip signature and this host requires signatures (requireSignatures); reinstall a signed zip`, {
      reason: 'unsigned',
      library: libName,
    });
  }
  const key = keys.find((k) => k.fingerprint === signature.key);
  if (!key) {
    if (!required) return undefined;
    throw new StreamplugError('E_SIGNATURE', `${libName} is signed by key ${signature.key}, which is no longer trusted here; add its public key to etc/trusted-keys or reinstall`, {
      reason: 'untrusted-key',
      library: libName,
      key: signature.key,
    });
  }
  const ok = crypto.verify(null, manifestText(signature.files), key.key, Buffer.from(signature.sig, 'base64'));
  if (!ok || !Object.values(signature.files).includes(librarySha256)) {
    throw new StreamplugError('E_SIGNATURE', `${libName} is not the library key ${signature.key} signed: it changed on disk after install; reinstall the signed zip`, {
      reason: 'bad-signature',
      library: libName,
      key: signature.key,
    });
  }
  return key.fingerprint;
}
