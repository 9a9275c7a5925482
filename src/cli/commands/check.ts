/**
 * `streamplug check FILE… [--json]`: the pre-load compatibility check, without loading anything.
 * Exit 0 when every file can be loaded, 1 when any is refused (usage errors exit 2 in index.ts).
 */
import type { Command } from 'commander';
import { checkPluginFile } from '../../check/index.js';
import { formatReport, reportToJSON } from '../../check/format.js';

export function register(program: Command): void {
  program
    .command('check')
    .description('check whether plugin files (.so / .node) can be loaded by this host, without loading them')
    .argument('<files...>', 'plugin files to check')
    .option('--json', 'print the reports as JSON')
    .action((files: string[], opts: { json?: boolean }) => {
      const reports = files.map((f) => checkPluginFile(f));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(reports.map(reportToJSON), null, 2)}\n`);
      } else {
        process.stdout.write(`${reports.map(formatReport).join('\n\n')}\n`);
      }
      process.exitCode = reports.every((r) => r.loadable) ? 0 : 1;
    });
}
