import { Command, CommanderError } from 'commander';
import { sdk } from '../scaffold/sdk.js';

/**
 * `streamplug` command line. Each subcommand lives in ./commands/<name>.ts and exports
 * `register(program)`. Exit codes: 0 ok, 1 refused, 2 usage.
 */
const program = new Command('streamplug')
  .description('stream-processing host whose sources, sinks and functions are native plugins')
  .version(sdk.version, '-V, --version', 'print the streamplug version')
  .showHelpAfterError()
  .exitOverride();

// Subcommand registrations (one line each, appended by their owners):
import { register as registerStart } from './commands/start.js'; registerStart(program);
import { register as registerPlugin } from './commands/plugin.js'; registerPlugin(program);
import { register as registerPack } from './commands/pack.js'; registerPack(program);
import { register as registerSign } from './commands/sign.js'; registerSign(program);
import { register as registerCheck } from './commands/check.js'; registerCheck(program);
import { register as registerStream } from './commands/stream.js'; registerStream(program);
import { register as registerTable } from './commands/table.js'; registerTable(program);
import { register as registerRule } from './commands/rule.js'; registerRule(program);
import { register as registerRun } from './commands/run.js'; registerRun(program);
import { register as registerNew } from './commands/new.js'; registerNew(program);
import { register as registerWhere } from './commands/where.js'; registerWhere(program);
import { register as registerFleet } from './commands/fleet.js'; registerFleet(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  throw err;
}
