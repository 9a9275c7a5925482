/**
 * `streamplug stream create|list|describe|update|drop`: stream definitions on a running host
 * (`--host URL`, default $STREAMPLUG_URL or http://127.0.0.1:9081). Exit 0 ok, 1 refused, 2 usage.
 */
import type { Command } from 'commander';
import { RulesClient } from '../../rules/client.js';
import { authHeaders } from '../credentials.js';
import { fail } from './plugin.js';

export const DEFAULT_HOST = 'http://127.0.0.1:9081';

export interface RemoteOpts {
  host?: string;
  json?: boolean;
  token?: string;
  data?: string;
}

/** Adds --host and --json to a subcommand. */
export function remote(c: Command): Command {
  return c
    .option('--host <url>', `the running host (default $STREAMPLUG_URL or ${DEFAULT_HOST})`)
    .option('--token <token>', 'API token (default $STREAMPLUG_TOKEN, else <data>/etc/api-token)')
    .option('--data <dir>', 'the host\'s data directory, to read its token (default $STREAMPLUG_DATA or ./data)')
    .option('--json', 'print JSON');
}

export function client(o: RemoteOpts): RulesClient {
  return new RulesClient(o.host ?? process.env.STREAMPLUG_URL ?? DEFAULT_HOST, authHeaders(o));
}

/** Runs an action; any error prints `streamplug: CODE: message` and exits 1 (2 for usage). */
export function run<A extends unknown[]>(fn: (...a: A) => Promise<void>): (...a: A) => Promise<void> {
  return async (...a: A) => {
    try {
      await fn(...a);
    } catch (e) {
      fail(e);
    }
  };
}

export function out(o: RemoteOpts, value: unknown, text: () => string): void {
  process.stdout.write(`${o.json ? JSON.stringify(value, null, 2) : text()}\n`);
}

export function register(program: Command): void {
  const stream = program.command('stream').description('create, list, describe, update and drop streams on a running host');

  remote(stream.command('create').argument('<sql>', 'CREATE STREAM name (…) WITH (DATASOURCE="topic", …)').description('define a stream'))
    .action(run(async (sql: string, o: RemoteOpts) => {
      const msg = await client(o).createStream(sql);
      out(o, { message: msg }, () => msg);
    }));

  remote(stream.command('list').description('list the stream names'))
    .action(run(async (o: RemoteOpts) => {
      const names = await client(o).listStreams();
      out(o, names, () => (names.length ? names.join('\n') : '(no streams)'));
    }));

  remote(stream.command('describe').argument('<name>').description('show a stream: fields, options and its DDL'))
    .action(run(async (name: string, o: RemoteOpts) => {
      const d = await client(o).describeStream(name);
      out(o, d, () => {
        const fields = d.fields ? d.fields.map((f) => `  ${f.name}  ${typeName(f.type)}`).join('\n') : '  (schemaless: any field)';
        const opts = Object.entries(d.options).map(([k, v]) => `  ${k}=${v}`).join('\n');
        return `stream ${d.name}\nfields:\n${fields}\noptions:\n${opts}\nsql: ${d.sql}`;
      });
    }));

  remote(stream.command('update').argument('<name>').argument('<sql>', 'the new CREATE STREAM statement (same name)').description('replace a stream definition; running rules reading it restart'))
    .action(run(async (name: string, sql: string, o: RemoteOpts) => {
      const msg = await client(o).updateStream(name, sql);
      out(o, { message: msg }, () => msg);
    }));

  remote(stream.command('drop').argument('<name>').description('drop a stream (refused while rules read it)'))
    .action(run(async (name: string, o: RemoteOpts) => {
      const msg = await client(o).dropStream(name);
      out(o, { message: msg }, () => msg);
    }));
}

type FieldType = { type: string; items?: FieldType; fields?: { name: string; type: FieldType }[] };

export function typeName(t: FieldType): string {
  if (t.type === 'array' && t.items) return `array(${typeName(t.items)})`;
  if (t.type === 'struct' && t.fields) return `struct(${t.fields.map((f) => `${f.name} ${typeName(f.type)}`).join(', ')})`;
  return t.type;
}
