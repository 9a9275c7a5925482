/**
 * `streamplug check FILE… [--type T] [--json]`: install's checks on bare library files (the static
 * pre-load check, the trial load in a child process, and with --type the type against what the
 * library provides), without loading anything into this process. Exit 0 when every file can be
 * loaded, 1 when any is refused (usage errors exit 2 in index.ts).
 */
import { Option, type Command } from 'commander';
import { formatReport, reportToJSON } from '../../check/format.js';
import { runInstallChecks } from '../../manager/install-checks.js';
import type { PluginType } from '../../manager/layout.js';

export function register(program: Command): void {
  program
    .command('check')
    .description('check whether plugin files (.so / .node) can be loaded by this host, exactly as install checks them, without loading them here')
    .argument('<files...>', 'plugin files to check')
    .addOption(new Option('--type <type>', 'also check the file provides this kind of extension, as install does').choices(['sources', 'sinks', 'functions']))
    .option('--no-trial-load', 'skip the trial load in a child process (static checks only)')
    .option('--json', 'print the reports as JSON')
    .action(async (files: string[], opts: { json?: boolean; type?: PluginType; trialLoad?: boolean }) => {
      const reports = [];
      for (const f of files) reports.push(await runInstallChecks(f, { type: opts.type, probe: opts.trialLoad !== false }));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(reports.map(reportToJSON), null, 2)}\n`);
      } else {
        process.stdout.write(`${reports.map(formatReport).join('\n\n')}\n`);
      }
      process.exitCode = reports.every((r) => r.loadable) ? 0 : 1;
    });
}
