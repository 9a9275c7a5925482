/**
 * `streamplug table create|list|describe|drop`: table definitions (CREATE TABLE) on a running host
 * (`--host URL`, default $STREAMPLUG_URL or http://127.0.0.1:9081). Exit 0 ok, 1 refused, 2 usage.
 */
import type { Command } from 'commander';
import { client, out, remote, run, typeName, type RemoteOpts } from './stream.js';

export function register(program: Command): void {
  const table = program.command('table').description('create, list, describe and drop tables (joined by rules) on a running host');

  remote(table.command('create').argument('<sql>', 'CREATE TABLE name (…) WITH (TYPE="file"|"memory", DATASOURCE=…, KIND="scan"|"lookup", KEY=…)').description('define a table'))
    .action(run(async (sql: string, o: RemoteOpts) => {
      const msg = await client(o).createTable(sql);
      out(o, { message: msg }, () => msg);
    }));

  remote(table.command('list').description('list the table names'))
    .action(run(async (o: RemoteOpts) => {
      const names = await client(o).listTables();
      out(o, names, () => (names.length ? names.join('\n') : '(no tables)'));
    }));

  remote(table.command('describe').argument('<name>').description('show a table: fields, options, its DDL and how many rows it holds'))
    .action(run(async (name: string, o: RemoteOpts) => {
      const d = await client(o).describeTable(name);
      out(o, d, () => {
        const fields = d.fields ? d.fields.map((f) => `  ${f.name}  ${typeName(f.type)}`).join('\n') : '  (schemaless: any field)';
        const opts = Object.entries(d.options).map(([k, v]) => `  ${k}=${v}`).join('\n');
        return `table ${d.name}\nfields:\n${fields}\noptions:\n${opts}\nrows: ${d.rows}\nsql: ${d.sql}`;
      });
    }));

  remote(table.command('drop').argument('<name>').description('drop a table (refused while rules join it)'))
    .action(run(async (name: string, o: RemoteOpts) => {
      const msg = await client(o).dropTable(name);
      out(o, { message: msg }, () => msg);
    }));
}
