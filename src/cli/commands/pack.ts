import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { isPluginType } from '../../manager/layout.js';
import { packPlugin } from '../../manager/pack.js';
import { fail, inspectZip, usage } from './plugin.js';

interface PackOpts {
  type: string;
  name: string;
  json?: string;
  yaml?: string;
  etc?: string;
  lib?: string[];
  key?: string;
  output: string;
}

export function register(program: Command): void {
  program
    .command('pack')
    .description('build a plugin zip (NAME.so|.node, NAME.json, NAME.yaml, etc/) and check it as install would')
    .argument('<library>', 'the plugin library (.so or .node)')
    .addOption(new Option('--type <type>', 'plugin type').choices(['sources', 'sinks', 'functions']).makeOptionMandatory())
    .requiredOption('--name <name>', 'plugin name (^[A-Za-z0-9_-]+$)')
    .option('--json <file>', 'metadata file, stored as NAME.json')
    .option('--yaml <file>', 'default configuration (sources), stored as NAME.yaml')
    .option('--etc <dir>', 'folder stored as etc/')
    .option('--lib <files...>', 'private libraries the plugin needs, stored under lib/ (link the plugin with RUNPATH $ORIGIN/lib)')
    .option('--key <pem>', 'ed25519 private key: sign the library into NAME.sig')
    .requiredOption('-o, --output <zip>', 'zip to write')
    .action(async (library: string, o: PackOpts) => {
      if (!isPluginType(o.type)) usage(`--type ${o.type} is unknown`);
      const out = path.resolve(o.output);
      try {
        const entries = await packPlugin({
          name: o.name,
          library,
          metadata: o.json,
          yaml: o.yaml,
          etcDir: o.etc,
          libs: o.lib,
          privateKeyPem: o.key ? fs.readFileSync(o.key, 'utf8') : undefined,
          out,
        });
        try {
          const r = await inspectZip(out, o.type, o.name);
          process.stdout.write(`${out}: ${entries.join(', ')}\n  checked as install would: ${o.type} plugin ${r.name}, ${r.flavour}, sha256 ${r.sha256}\n`);
        } catch (e) {
          fs.rmSync(out, { force: true }); // never leave a zip install would refuse
          throw e;
        }
      } catch (e) {
        fail(e);
      }
    });
}
