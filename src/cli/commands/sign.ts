import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { StreamplugError } from '../../errors.js';
import { DEFAULT_LIMITS } from '../../manager/limits.js';
import { signZip } from '../../manager/pack.js';
import { generateKeyPair, signBytes } from '../../manager/signature.js';
import { fail } from './plugin.js';

export function register(program: Command): void {
  program
    .command('sign')
    .description('sign a plugin library with an ed25519 key: into NAME.sig inside a zip, or LIB.sig beside a library')
    .argument('<target>', 'plugin zip or library (.so / .node)')
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
          const sig = signBytes(fs.readFileSync(target), pem);
          fs.writeFileSync(`${target}.sig`, JSON.stringify(sig) + '\n');
          process.stdout.write(`wrote ${target}.sig (key ${sig.key}); \`streamplug pack\` puts it in the zip\n`);
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
