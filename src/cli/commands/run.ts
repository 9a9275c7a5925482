/**
 * Run a plugin without a host: `streamplug call`, `run-source`, `feed-sink`. Each loads the file
 * through the host's own pre-load check and registry (streamplug/testing), prints results as JSON
 * lines on stdout (plugin logs go to stderr) and unloads it. Exit 0 ok, 1 refused/failed, 2 usage.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { StreamplugError } from '../../errors.js';
import { loadPlugin, toJSONValue, type TestPlugin } from '../../testing/index.js';
import type { Scalar } from '../../plugins/types.js';
import type { Row } from '../../connectors/types.js';
import { fail, usage } from './plugin.js';

/** A command-line argument as a value: JSON when it parses as a scalar (212, 1.5, true, null, "x"), else the text. */
export function parseArg(text: string): Scalar {
  try {
    const v: unknown = JSON.parse(text);
    if (v === null || ['number', 'boolean', 'string'].includes(typeof v)) return v as Scalar;
  } catch { /* plain text */ }
  return text;
}

/** rows.jsonl: one JSON array of arguments per line (a bare scalar is a one-argument row); blank lines skipped. */
function readRows(file: string): Scalar[][] {
  const text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  const rows: Scalar[][] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try { v = JSON.parse(line); } catch (e) {
      throw new StreamplugError('E_BAD_REQUEST', `${file}:${i + 1}: not JSON (${(e as Error).message}); expected one JSON array of arguments per line, e.g. [212]`);
    }
    if (Array.isArray(v)) {
      if (v.some((x) => x !== null && typeof x === 'object')) throw new StreamplugError('E_BAD_REQUEST', `${file}:${i + 1}: arguments must be numbers, strings, booleans or null`);
      rows.push(v as Scalar[]);
    } else if (v === null || typeof v !== 'object') rows.push([v as Scalar]);
    else throw new StreamplugError('E_BAD_REQUEST', `${file}:${i + 1}: an object; expected a JSON array of arguments, e.g. [212]`);
  });
  return rows;
}

/** JSON objects, one per line (for feed-sink). */
function readObjects(text: string, what: string): Row[] {
  return text.split('\n').filter((l) => l.trim()).map((line, i) => {
    let v: unknown;
    try { v = JSON.parse(line); } catch (e) {
      throw new StreamplugError('E_BAD_REQUEST', `${what}:${i + 1}: not JSON (${(e as Error).message}); expected one JSON object per line`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new StreamplugError('E_BAD_REQUEST', `${what}:${i + 1}: expected a JSON object per line`);
    return v as Row;
  });
}

function parseConfig(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  try {
    const v: unknown = JSON.parse(text);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch { /* reported below */ }
  usage(`--config must be a JSON object, e.g. --config '{"interval":100}'; got ${text}`);
}

async function withPlugin<T>(file: string, work: (p: TestPlugin) => Promise<T> | T): Promise<T> {
  const plugin = await loadPlugin(file);
  try {
    return await work(plugin);
  } finally {
    await plugin.close();
  }
}

const line = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

export function register(program: Command): void {
  program
    .command('call')
    .description('call one function of a plugin file without a host; prints each result as a JSON line')
    .argument('<file>', 'plugin file (.so or .node), checked and loaded as the host does')
    .argument('<function>', 'function name')
    .argument('[args...]', 'arguments, one row: JSON scalars (212, 1.5, true, null, "text") or plain text')
    .option('--rows <file>', 'a batch instead: rows.jsonl, one JSON array of arguments per line (- for stdin)')
    .addHelpText('after', '\nExamples:\n  streamplug call build/plugins/celsius.so celsius 212\n  streamplug call build/plugins/echo.so echo --rows rows.jsonl')
    .action(async (file: string, fn: string, args: string[], opts: { rows?: string }) => {
      try {
        if (opts.rows && args.length) usage('give arguments or --rows, not both');
        const rows = opts.rows ? readRows(opts.rows) : [args.map(parseArg)];
        const results = await withPlugin(file, (p) => p.callRows(fn, rows));
        for (const r of results) line(toJSONValue(r));
      } catch (e) { fail(e); }
    });

  program
    .command('run-source')
    .description("start a plugin's source without a host and print the rows it emits as JSON lines")
    .argument('<file>', 'plugin file (.so or .node)')
    .option('--config <json>', 'the source instance\'s properties, a JSON object', undefined)
    .option('--rows <n>', 'stop after this many rows', '10')
    .option('--type <name>', 'which source, when the plugin has several')
    .option('--datasource <text>', 'the datasource (topic, path…) the stream would give', '')
    .option('--timeout <ms>', 'stop after this long even with fewer rows', '10000')
    .action(async (file: string, opts: { config?: string; rows: string; type?: string; datasource: string; timeout: string }) => {
      try {
        const n = Number(opts.rows);
        const timeoutMs = Number(opts.timeout);
        if (!Number.isInteger(n) || n < 0) usage(`--rows must be a whole number, got ${opts.rows}`);
        if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) usage(`--timeout must be a positive number of milliseconds, got ${opts.timeout}`);
        const config = parseConfig(opts.config);
        const rows = await withPlugin(file, (p) => p.runSource(config, n, { type: opts.type, datasource: opts.datasource, timeoutMs }));
        for (const r of rows) line(r);
        if (rows.length < n) process.stderr.write(`streamplug: the source emitted ${rows.length} of ${n} rows within ${timeoutMs} ms\n`);
      } catch (e) { fail(e); }
    });

  program
    .command('feed-sink')
    .description("feed JSON lines from stdin to a plugin's sink without a host")
    .argument('<file>', 'plugin file (.so or .node)')
    .option('--config <json>', 'the sink instance\'s properties, a JSON object', undefined)
    .option('--type <name>', 'which sink, when the plugin has several')
    .action(async (file: string, opts: { config?: string; type?: string }) => {
      try {
        const config = parseConfig(opts.config);
        const rows = readObjects(fs.readFileSync(0, 'utf8'), 'stdin');
        await withPlugin(file, (p) => p.feedSink(config, rows, { type: opts.type }));
        process.stderr.write(`streamplug: ${rows.length} rows delivered\n`);
      } catch (e) { fail(e); }
    });
}
