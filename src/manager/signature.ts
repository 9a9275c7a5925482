import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StreamplugError } from '../errors.js';

/**
 * Ed25519 signatures over a plugin library's bytes. The signature file (`NAME.sig` in a zip, or
 * `LIB.sig` beside a library) is JSON so that a refusal can say which key signed it.
 */
export interface SignatureFile {
  alg: 'ed25519';
  /** Fingerprint of the signing public key: sha256 of its SPKI DER, hex, first 16 chars. */
  key: string;
  /** base64 signature over the whole library file. */
  sig: string;
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
    if (s.alg === 'ed25519' && typeof s.key === 'string' && typeof s.sig === 'string') return s;
  } catch {
    // fall through
  }
  throw new StreamplugError('E_SIGNATURE', `${where} is not a streamplug signature; expected the JSON written by \`streamplug sign\``, { file: where });
}

/**
 * Refuses the library unless a trusted key signed it. With no trusted keys configured nothing is
 * required and `undefined` is returned; otherwise the fingerprint of the key that verified.
 */
export function verifyLibrary(library: Buffer, libName: string, signature: SignatureFile | undefined, keys: TrustedKey[]): string | undefined {
  if (keys.length === 0) return undefined;
  if (!signature) {
    throw new StreamplugError(
      'E_SIGNATURE',
      `${libName} is unsigned and this host requires signatures (${keys.length} trusted key(s)); sign it with \`streamplug sign --key PRIVATE.pem\``,
      { reason: 'unsigned', library: libName },
    );
  }
  const key = keys.find((k) => k.fingerprint === signature.key);
  if (!key) {
    throw new StreamplugError(
      'E_SIGNATURE',
      `${libName} is signed by key ${signature.key}, which is not trusted here (trusted: ${keys.map((k) => k.fingerprint).join(', ')}); add its public key to etc/trusted-keys or re-sign`,
      { reason: 'untrusted-key', library: libName, key: signature.key },
    );
  }
  if (!crypto.verify(null, library, key.key, Buffer.from(signature.sig, 'base64'))) {
    throw new StreamplugError(
      'E_SIGNATURE',
      `${libName}'s signature by key ${signature.key} does not verify: the library changed after signing or the signature is damaged; re-sign the exact file`,
      { reason: 'bad-signature', library: libName, key: signature.key },
    );
  }
  return key.fingerprint;
}
