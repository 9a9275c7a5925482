/**
 * `streamplug new NAME --kind function|source|sink [--lang c|cpp|node] [--dir DIR]`: writes an
 * out-of-tree plugin project (src/scaffold/templates.ts) into DIR (default ./NAME). Refuses to
 * overwrite anything. `streamplug sdk --cmake-dir | --include-dir`: where the SDK is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { StreamplugError } from '../../errors.js';
import { projectFiles, type Kind, type Lang } from '../../scaffold/templates.js';
import { sdk } from '../../scaffold/sdk.js';
import { fail, usage } from './plugin.js';

export function register(program: Command): void {
  program
    .command('new')
    .description('create a plugin project: source, CMakeLists (find_package(streamplug)), a test and a README')
    .argument('<name>', 'plugin name, also the function / source / sink name: ^[A-Za-z][A-Za-z0-9_]*$')
    .addOption(new Option('--kind <kind>', 'what the plugin provides').choices(['function', 'source', 'sink']).makeOptionMandatory())
    .addOption(new Option('--lang <lang>', 'implementation language').choices(['c', 'cpp', 'node']).default('c'))
    .option('--dir <dir>', 'where to create the project (default: ./NAME); must not exist or be empty')
    .addHelpText('after', '\nExample:\n  streamplug new celsius --kind function --lang c\n  cd celsius && cmake -B build && cmake --build build\n  streamplug call build/plugins/celsius.so celsius 212')
    .action((name: string, opts: { kind: Kind; lang: Lang; dir?: string }) => {
      try {
        // A C identifier (the templates name C functions after it) and a valid plugin/SQL name.
        if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) usage(`NAME '${name}' must match ^[A-Za-z][A-Za-z0-9_]*$ (it names C symbols and the SQL function)`);
        if (opts.lang === 'node' && opts.kind !== 'function') usage(`--lang node makes function plugins only; use --lang c or cpp for a ${opts.kind}`);
        const dir = path.resolve(opts.dir ?? name);
        if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
          throw new StreamplugError('E_CONFLICT', `${dir} exists and is not empty; choose another NAME or --dir, nothing was written`);
        }
        const files = projectFiles(name, opts.kind, opts.lang);
        for (const [rel, text] of Object.entries(files)) {
          fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
          fs.writeFileSync(path.join(dir, rel), text, { flag: 'wx' });
        }
        const shown = path.relative(process.cwd(), dir) || '.';
        process.stdout.write(`created ${shown}/: ${Object.keys(files).sort().join(', ')}\nnext: cd ${shown} and follow README.md\n`);
      } catch (e) { fail(e); }
    });

  program
    .command('sdk')
    .description('print where the plugin SDK is: the CMake package folder (default) or the include folder')
    .option('--cmake-dir', 'the folder holding streamplugConfig.cmake (for -Dstreamplug_DIR=…)')
    .option('--include-dir', 'the folder holding streamplug/plugin.h')
    .action((opts: { cmakeDir?: boolean; includeDir?: boolean }) => {
      if (opts.cmakeDir && opts.includeDir) usage('give --cmake-dir or --include-dir, not both');
      process.stdout.write(`${opts.includeDir ? sdk.includeDir : sdk.cmakeDir}\n`);
    });
}
