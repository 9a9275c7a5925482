/**
 * `streamplug rule create|list|describe|update|start|stop|restart|delete|status`: rules on a running
 * host (`--host URL`). Rule JSON comes as an argument or from `--file PATH` (`-` reads stdin).
 * Exit 0 ok, 1 refused, 2 usage.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import type { RuleStatus } from '../../rules/status.js';
import { usage } from './plugin.js';
import { client, out, remote, run, type RemoteOpts } from './stream.js';

interface BodyOpts extends RemoteOpts {
  file?: string;
}

function ruleBody(json: string | undefined, o: BodyOpts): string {
  if (json !== undefined && o.file !== undefined) usage('give the rule JSON either as an argument or with --file, not both');
  if (o.file !== undefined) {
    try {
      return fs.readFileSync(o.file === '-' ? 0 : o.file, 'utf8');
    } catch (e) {
      usage(`cannot read --file ${o.file}: ${(e as Error).message}`);
    }
  }
  if (json === undefined) usage('the rule JSON is missing: pass it as an argument (\'{"id": "r1", "sql": "SELECT …", "actions": [{"log": {}}]}\') or with --file PATH');
  return json;
}

function statusText(s: RuleStatus): string {
  const lines = [`rule ${s.id}: ${s.status}${s.message ? ` — ${s.message}` : ''}`];
  if (s.source) {
    const src = s.source;
    lines.push(`source ${src.type} ${src.datasource} (stream ${src.stream}): ${src.state}${src.error ? ` — ${src.error}` : ''}, ${src.messagesIn ?? 0} messages in, ${src.decodeErrors ?? 0} decode errors, shared by ${src.rules} rule(s)`);
    const c = src.consumer;
    if (c)
      lines.push(`  consumer ${c.kind} ${c.name}${c.stream ? ` on ${c.stream}` : ''}: pending ${c.pending ?? '?'}  ack pending ${c.ackPending ?? '?'}  redelivered ${c.redelivered ?? '?'}  (this host: acked ${c.acked}, nacked ${c.nacked}, redeliveries received ${c.receivedRedelivered})`);
  }
  for (const op of s.operators)
    lines.push(`  ${op.name.padEnd(9)} in ${op.recordsIn}  out ${op.recordsOut}  exceptions ${op.exceptions}  last ${op.lastLatencyUs} µs${op.lastError ? `  last error ${op.lastError.code}: ${op.lastError.message}` : ''}`);
  for (const k of s.sinks)
    lines.push(`  sink ${k.action} ${k.type}: in ${k.recordsIn}  out ${k.recordsOut}  messages ${k.messagesOut}  exceptions ${k.exceptions}  dropped ${k.droppedRecords}  buffered ${k.buffered}${k.lastError ? `  last error: ${k.lastError}` : ''}`);
  return lines.join('\n');
}

export function register(program: Command): void {
  const rule = program.command('rule').description('create, list, describe, update, start, stop, restart, delete rules and show their status on a running host');

  remote(
    rule
      .command('create')
      .argument('[json]', 'the rule: {"id", "sql", "actions": [{"<sink>": {…}}], "options"}')
      .option('-f, --file <path>', 'read the rule JSON from a file (- for stdin)')
      .description('create a rule (it starts unless "triggered": false)'),
  ).action(run(async (json: string | undefined, o: BodyOpts) => {
    const msg = await client(o).createRule(ruleBody(json, o));
    out(o, { message: msg }, () => msg);
  }));

  remote(
    rule
      .command('update')
      .argument('<id>')
      .argument('[json]', 'the new rule JSON (its id may be left out)')
      .option('-f, --file <path>', 'read the rule JSON from a file (- for stdin)')
      .description('replace a rule; a running rule restarts with the new definition'),
  ).action(run(async (id: string, json: string | undefined, o: BodyOpts) => {
    const msg = await client(o).updateRule(id, ruleBody(json, o));
    out(o, { message: msg }, () => msg);
  }));

  remote(rule.command('list').description('list rules and their state')).action(run(async (o: RemoteOpts) => {
    const rules = await client(o).listRules();
    out(o, rules, () => (rules.length ? rules.map((r) => `${r.id}\t${r.status}${r.message ? `\t${r.message}` : ''}`).join('\n') : '(no rules)'));
  }));

  remote(rule.command('describe').argument('<id>').description('print the rule JSON')).action(run(async (id: string, o: RemoteOpts) => {
    const d = await client(o).describeRule(id);
    process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
  }));

  remote(rule.command('status').argument('<id>').description('state, source, operator and sink counters')).action(run(async (id: string, o: RemoteOpts) => {
    const s = await client(o).ruleStatus(id);
    out(o, s, () => statusText(s));
    if (s.status === 'failed') process.exitCode = 1;
  }));

  for (const action of ['start', 'stop', 'restart'] as const) {
    remote(rule.command(action).argument('<id>').description(`${action} a rule`)).action(run(async (id: string, o: RemoteOpts) => {
      const msg = await client(o).ruleAction(id, action);
      out(o, { message: msg }, () => msg);
    }));
  }

  remote(rule.command('delete').argument('<id>').description('stop and delete a rule')).action(run(async (id: string, o: RemoteOpts) => {
    const msg = await client(o).deleteRule(id);
    out(o, { message: msg }, () => msg);
  }));
}
