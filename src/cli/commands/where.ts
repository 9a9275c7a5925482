/**
 * `streamplug plugin where NAME [--data DIR | --pid PID]`: the library file of plugin NAME that a
 * running host has actually mapped, read from /proc/PID/maps — not what the records say — so a
 * debugger is pointed at the code that runs (gdb: `info sharedlibrary`, `add-symbol-file`). A file
 * replaced or deleted on disk while still mapped is shown with "(deleted)".
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { StreamplugError } from '../../errors.js';
import { runningHost } from '../../host/lock.js';
import { dataLayout } from '../../manager/layout.js';
import { fail, usage } from './plugin.js';

export interface Mapping { file: string; deleted: boolean }

/** Files of plugin `name` mapped by process `pid`: plugins/<type>/NAME[@<sha8>].so|.node. */
export function mappedPluginFiles(pid: number, name: string): Mapping[] {
  let maps: string;
  try {
    maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch (e) {
    throw new StreamplugError('E_NOT_FOUND', `cannot read /proc/${pid}/maps (${(e as Error).message}); is the host running, and as this user?`);
  }
  const seen = new Map<string, Mapping>();
  for (const line of maps.split('\n')) {
    const at = line.indexOf('/');
    if (at < 0) continue;
    const text = line.slice(at);
    const deleted = text.endsWith(' (deleted)');
    const file = deleted ? text.slice(0, -' (deleted)'.length) : text;
    // NAME@<sha8>.so|.node as the manager names installs, NAME.so|.node as adopted (dropped in).
    const m = /^(.+?)(@[0-9a-f]{8})?\.(so|node)$/.exec(path.basename(file));
    if (!m || m[1] !== name || path.basename(path.dirname(path.dirname(file))) !== 'plugins') continue;
    seen.set(file, { file, deleted });
  }
  return [...seen.values()];
}

export function register(program: Command): void {
  const plugin = program.commands.find((c) => c.name() === 'plugin');
  if (!plugin) throw new Error('where.ts: register after plugin.ts');
  plugin
    .command('where')
    .argument('<name>', 'plugin name')
    .description('the library file of a plugin that the running host has mapped (for gdb and core dumps)')
    .option('--data <dir>', 'data directory of the running host (default $STREAMPLUG_DATA or ./data)')
    .option('--pid <pid>', 'the host process id, instead of reading it from the data directory')
    .option('--json', 'print JSON')
    .action((name: string, o: { data?: string; pid?: string; json?: boolean }) => {
      try {
        let pid: number;
        if (o.pid !== undefined) {
          pid = Number(o.pid);
          if (!Number.isInteger(pid) || pid <= 0) usage(`--pid ${o.pid} is not a process id`);
        } else {
          const data = path.resolve(o.data ?? process.env.STREAMPLUG_DATA ?? 'data');
          const lock = runningHost(dataLayout(data).lockFile);
          if (!lock) throw new StreamplugError('E_NOT_FOUND', `no host is running on ${data}; start it, or give --data DIR / --pid PID`);
          pid = lock.pid;
        }
        const files = mappedPluginFiles(pid, name);
        if (files.length === 0) {
          throw new StreamplugError('E_NOT_FOUND', `process ${pid} has no library of plugin ${name} mapped; is it installed and loaded (streamplug plugin describe)?`);
        }
        if (o.json) process.stdout.write(`${JSON.stringify({ pid, files }, null, 2)}\n`);
        else for (const f of files) process.stdout.write(`${f.file}${f.deleted ? ' (deleted: replaced on disk; the host still runs this copy)' : ''}\n`);
      } catch (e) { fail(e); }
    });
}
