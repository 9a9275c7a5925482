import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { StreamplugError } from '../../errors.js';
import { DEFAULT_LIMITS } from '../../manager/limits.js';
import { signZip } from '../../manager/pack.js';
import { generateKeyPair } from '../../manager/signature.js';
import { fail } from './plugin.js';

export function register(program: Command): void {
  program
    .command('sign')
    .description('sign a plugin zip with an ed25519 key: NAME.sig covers every file in the zip')
    .argument('<target>', 'plugin zip')
    .requiredOption('--key <pem>', 'ed25519 private key (PEM), e.g. from `streamplug keygen`')
    .option('-o, --output <file>', 'zip: write the signed zip here instead of in place')
    .action(async (target: string, o: { key: string; output?: string }) => {
      try {
        if (!fs.statSync(target, { throwIfNoEntry: false })?.isFile()) {
          throw new StreamplugError('E_NOT_FOUND_FILE', `${target} does not exist; expected a plugin zip or library`);
        }
        const pem = fs.readFileSync(o.key, 'utf8');
        if (target.endsWith('.zip')) {
          const r = await signZip(target, pem, DEFAULT_LIMITS, o.output ? path.resolve(o.output) : target);
          process.stdout.write(`signed ${r.library} in ${o.output ?? target} with key ${r.key}\n`);
        } else {
          // A signature covers the whole zip (metadata, etc/ …), so a bare library is not signed alone.
          throw new StreamplugError('E_USAGE', `${target} is not a zip; a signature covers every file of a plugin zip: sign the zip, or build it signed with \`streamplug pack --key PEM\``);
        }
      } catch (e) {
        fail(e);
      }
    });

  program
    .command('keygen')
    .description('make an ed25519 key pair for signing plugins: PREFIX.pem (private) and PREFIX.pub.pem (public)')
    .argument('<prefix>', 'path prefix of the two files, e.g. keys/acme')
    .action((prefix: string) => {
      try {
        const k = generateKeyPair();
        const priv = `${prefix}.pem`;
        const pub = `${prefix}.pub.pem`;
        for (const f of [priv, pub]) if (fs.existsSync(f)) throw new StreamplugError('E_CONFLICT', `${f} exists; refusing to overwrite a key`);
        fs.mkdirSync(path.dirname(path.resolve(priv)), { recursive: true });
        fs.writeFileSync(priv, k.privatePem, { mode: 0o600 });
        fs.writeFileSync(pub, k.publicPem);
        process.stdout.write(`wrote ${priv} (keep it secret) and ${pub} (copy it to <data>/etc/trusted-keys/); fingerprint ${k.fingerprint}\n`);
      } catch (e) {
        fail(e);
      }
    });
}
