/**
 * Tables through a real host process: /tables refusals an operator or an attacker could send, a
 * memory lookup table filled by another rule's memory sink and joined row by row, a file table read
 * when the joining rule starts, the table kept in the store across a host restart, and a table that
 * cannot be dropped while a rule joins it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { spawnSync } from 'node:child_process';
import { cliPath, startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { freePort, tempDir, waitFor } from '../connectors/helpers.js';

/** Polls an async condition (REST answers) until it holds. */
async function until(what: string, cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const readLines = (file: string): unknown[] =>
  fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];

describe('tables end to end: REST, MQTT source, memory and file tables, file sink', () => {
  let host: HostProcess;
  let client: MqttClient;
  let dir: string;
  let mqttPort: number;
  before(async () => {
    dir = tempDir('tables-e2e');
    mqttPort = await freePort();
    host = await startHostProcess({ dataDir: dir, args: ['--mqtt-port', String(mqttPort)] });
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
  });
  after(async () => {
    await client?.endAsync();
    await host?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses what cannot be a table, saying why: an escaping file, an unsupported TYPE, a stream DDL, no KEY, a taken name', async () => {
    const refuse = async (sql: string, status: number, code: string, msg: RegExp) => {
      const r = await host.api('POST', '/tables', { sql });
      assert.equal(r.status, status, r.text);
      assert.equal(r.body.error, code, r.text);
      assert.match(r.body.message, msg);
    };
    await refuse('CREATE TABLE t () WITH (TYPE="file", DATASOURCE="../../../../etc/passwd")', 400, 'E_CONNECTOR_CONFIG', /outside the data directory/);
    await refuse('CREATE TABLE t () WITH (TYPE="file", DATASOURCE="/etc/passwd")', 400, 'E_CONNECTOR_CONFIG', /outside the data directory/);
    await refuse('CREATE TABLE t () WITH (TYPE="mqtt", DATASOURCE="x")', 400, 'E_CONNECTOR_CONFIG', /cannot back a table here \(have: file, memory\)/);
    await refuse('CREATE TABLE t () WITH (TYPE="memory", DATASOURCE="x", KIND="lookup")', 400, 'E_SQL_SEMANTIC', /names no KEY/);
    await refuse('CREATE STREAM t () WITH (DATASOURCE="x")', 400, 'E_BAD_REQUEST', /POST \/tables takes a CREATE TABLE statement/);
    await refuse('CREATE TABLE `bad name` () WITH (TYPE="memory", DATASOURCE="x")', 400, 'E_BAD_REQUEST', /table name "bad name" is invalid/);
    assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM taken () WITH (DATASOURCE="taken")' })).status, 201);
    await refuse('CREATE TABLE taken () WITH (TYPE="memory", DATASOURCE="x")', 409, 'E_CONFLICT', /stream taken already exists/);
    const s = await host.api('POST', '/streams', { sql: 'CREATE TABLE x () WITH (TYPE="memory", DATASOURCE="x")' });
    assert.equal(s.status, 400);
    assert.match(s.body.message, /POST \/streams takes a CREATE STREAM statement/);
    assert.deepEqual((await host.api('GET', '/tables')).body, []);
    assert.equal((await host.api('GET', '/tables/nope')).status, 404);
    assert.equal((await host.api('DELETE', '/streams/taken')).status, 200);
  });

  it('a memory lookup table filled by a memory sink, joined row by row; kept (empty) across a restart; not dropped while joined', async () => {
    let r = await host.api('POST', '/tables', { sql: 'CREATE TABLE devices (id bigint, name string) WITH (TYPE="memory", DATASOURCE="dev/info", KIND="lookup", KEY="id")' });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.text, 'Table devices is created.');
    for (const sql of ['CREATE STREAM upd () WITH (DATASOURCE="t/upd")', 'CREATE STREAM readings (id bigint, v float) WITH (DATASOURCE="t/readings")'])
      assert.equal((r = await host.api('POST', '/streams', { sql })).status, 201, r.text);
    r = await host.api('POST', '/rules', { id: 'feed', sql: 'SELECT * FROM upd', actions: [{ memory: { topic: 'dev/info' } }] });
    assert.equal(r.status, 201, r.text);
    r = await host.api('POST', '/rules', {
      id: 'enrich',
      sql: 'SELECT readings.id, v, devices.name FROM readings LEFT JOIN devices ON readings.id = devices.id',
      actions: [{ file: { path: 'out/enrich.jsonl', interval: 20 } }],
    });
    assert.equal(r.status, 201, r.text);
    assert.equal((await host.api('GET', '/rules/enrich/status')).body.status, 'running');
    // the later row for a key replaces the earlier one (the latest row per KEY)
    for (const row of [{ id: 1, name: 'old' }, { id: 1, name: 'pump' }, { id: 2, name: 'fan' }]) await client.publishAsync('t/upd', JSON.stringify(row), { qos: 1 });
    await until('2 keyed rows in the table', async () => (await host.api('GET', '/tables/devices')).body.rows === 2, 5000);
    const d = (await host.api('GET', '/tables/devices')).body;
    assert.equal(d.options.KIND, 'lookup');
    assert.match(d.sql, /^CREATE TABLE devices/);
    for (const row of [{ id: 1, v: 1.5 }, { id: 3, v: 2.5 }, { id: 2, v: 3.5 }]) await client.publishAsync('t/readings', JSON.stringify(row), { qos: 1 });
    const file = path.join(dir, 'out/enrich.jsonl');
    await waitFor('3 joined rows', () => readLines(file).length >= 3, 5000);
    assert.deepEqual(readLines(file), [{ id: 1, v: 1.5, name: 'pump' }, { id: 3, v: 2.5 }, { id: 2, v: 3.5, name: 'fan' }]);
    const ops = (await host.api('GET', '/rules/enrich/status')).body.operators as { name: string; recordsIn: number; recordsOut: number }[];
    const join = ops.find((o) => o.name === 'join');
    assert.ok(join && join.recordsIn === 3 && join.recordsOut === 3, JSON.stringify(ops));

    r = await host.api('DELETE', '/tables/devices');
    assert.equal(r.status, 409, r.text);
    assert.match(r.body.message, /joined by rule\(s\) enrich; delete those rules first/);

    // a restart keeps the definition and the rule; a memory table starts empty again
    await host.stop();
    host = await startHostProcess({ dataDir: dir, args: ['--mqtt-port', String(mqttPort)] });
    await client.endAsync();
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
    assert.deepEqual((await host.api('GET', '/tables')).body, ['devices']);
    assert.equal((await host.api('GET', '/tables/devices')).body.rows, 0);
    await until('enrich running again', async () => (await host.api('GET', '/rules/enrich/status')).body.status === 'running', 5000);
    for (const id of ['enrich', 'feed']) assert.equal((await host.api('DELETE', `/rules/${id}`)).status, 200);
    assert.equal((r = await host.api('DELETE', '/tables/devices')).status, 200, r.text);
    assert.equal(r.text, 'Table devices is dropped.');
    assert.deepEqual((await host.api('GET', '/tables')).body, []);
  });

  it('a file table is read when the joining rule starts; a missing file fails that rule by name, and a restart after writing it works', async () => {
    let r = await host.api('POST', '/tables', { sql: 'CREATE TABLE names (id bigint, name string) WITH (DATASOURCE="tables/names.json", KIND="lookup", KEY="id")' });
    assert.equal(r.status, 201, r.text);
    assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM ev (id bigint) WITH (DATASOURCE="t/ev")' })).status, 201);
    r = await host.api('POST', '/rules', { id: 'named', sql: 'SELECT ev.id, names.name FROM ev INNER JOIN names ON ev.id = names.id', actions: [{ file: { path: 'out/named.jsonl', interval: 20 } }] });
    assert.equal(r.status, 201, r.text);
    const st = (await host.api('GET', '/rules/named/status')).body;
    assert.equal(st.status, 'failed');
    assert.equal(st.error.code, 'E_CONNECTOR_CONFIG');
    assert.match(st.message, /table names: cannot read .*tables\/names\.json \(ENOENT\)/);

    fs.mkdirSync(path.join(dir, 'tables'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tables/names.json'), '{"id": 7, "name": "seven"}\n{"id": "x", "name": "bad id"}\n{"id": 8, "name": "eight"}\n');
    r = await host.api('POST', '/rules/named/restart');
    assert.equal(r.status, 200, r.text);
    assert.equal((await host.api('GET', '/tables/names')).body.rows, 2); // the row whose id is not a bigint is skipped
    for (const row of [{ id: 8 }, { id: 9 }, { id: 7 }]) await client.publishAsync('t/ev', JSON.stringify(row), { qos: 1 });
    const file = path.join(dir, 'out/named.jsonl');
    await waitFor('2 joined rows', () => readLines(file).length >= 2, 5000);
    assert.deepEqual(readLines(file), [{ id: 8, name: 'eight' }, { id: 7, name: 'seven' }]);
  });
  it('rule sets carry tables: import creates them before the rules that join them, export gives them back, a re-import changes nothing', async () => {
    const set = {
      streams: { rs_in: 'CREATE STREAM rs_in () WITH (DATASOURCE="t/rs", FORMAT="json", TYPE="mqtt")' },
      tables: { rs_tab: 'CREATE TABLE rs_tab (k string, label string) WITH (DATASOURCE="rs", FORMAT="json", KEY="k", KIND="lookup", TYPE="memory")' },
      rules: { rs_rule: JSON.stringify({ id: 'rs_rule', sql: 'SELECT rs_tab.label FROM rs_in INNER JOIN rs_tab ON rs_in.k = rs_tab.k', actions: [{ log: {} }] }) },
    };
    let r = await host.api('POST', '/data/import', { content: JSON.stringify({ ...set, nativePlugins: {}, portablePlugins: {}, sourceConfig: {}, sinkConfig: {}, connectionConfig: {} }) });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.failed, []);
    assert.equal((await host.api('GET', '/rules/rs_rule/status')).body.status, 'running');
    const exp = (await host.api('GET', '/data/export')).body;
    assert.deepEqual(exp.tables, { rs_tab: (await host.api('GET', '/tables/rs_tab')).body.sql });
    r = await host.api('POST', '/data/import', { content: JSON.stringify(exp) });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.failed, []);
    assert.ok(r.body.applied.some((x: { section: string; name: string; outcome: string }) => x.section === 'tables' && x.name === 'rs_tab' && x.outcome === 'unchanged'), r.text);
    // a key that is not the table's name, and a table dropped while a kept rule joins it, are reported by name
    const bad = { ...exp, tables: { other: exp.tables.rs_tab } };
    r = await host.api('POST', '/data/import', { content: JSON.stringify(bad) });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error, 'E_IMPORT_INCOMPLETE');
    const failed = r.body.failed as { section: string; name: string; message: string }[];
    assert.ok(failed.some((f) => f.section === 'tables' && f.name === 'other' && /the key must be the table's name/.test(f.message)), r.text);
    assert.ok(failed.some((f) => f.section === 'tables' && f.name === 'rs_tab' && /joined by rule\(s\) rs_rule/.test(f.message)), r.text);
  });
  it('streamplug table create|list|describe|drop against the host: exit 0 done, 1 refused, 2 usage', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, [cliPath, 'table', ...args, '--host', host.url, '--data', host.dataDir], { encoding: 'utf8' });
    let r = cli('create', 'CREATE TABLE clitab (id bigint) WITH (TYPE="memory", DATASOURCE="cli/tab")');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'Table clitab is created.');
    r = cli('list', '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as string[]).includes('clitab'));
    r = cli('describe', 'clitab');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^table clitab\nfields:\n  id  bigint\n[\s\S]*rows: 0\n/);
    r = cli('create', 'CREATE TABLE clitab (id bigint) WITH (TYPE="memory", DATASOURCE="cli/tab")');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /E_CONFLICT: table clitab already exists/);
    r = cli('drop', 'clitab');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(cli('describe', 'clitab').status, 1);
    assert.equal(cli('describe').status, 2);
  });
  it('a file table that is a link leading out of the data directory fails the joining rule, naming where it leads', async () => {
    const outside = tempDir('tables-outside');
    fs.writeFileSync(path.join(outside, 'secret.json'), '[{"id": 1, "secret": "s"}]');
    fs.mkdirSync(path.join(dir, 'tables'), { recursive: true });
    fs.symlinkSync(path.join(outside, 'secret.json'), path.join(dir, 'tables/link.json'));
    let r = await host.api('POST', '/tables', { sql: 'CREATE TABLE linked () WITH (DATASOURCE="tables/link.json")' });
    assert.equal(r.status, 201, r.text);
    assert.equal((await host.api('GET', '/tables/linked')).body.rows, 0);
    assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM probe () WITH (DATASOURCE="t/probe")' })).status, 201);
    r = await host.api('POST', '/rules', { id: 'probe', sql: 'SELECT * FROM probe INNER JOIN linked ON probe.id = linked.id', actions: [{ log: {} }] });
    assert.equal(r.status, 201, r.text);
    const st = (await host.api('GET', '/rules/probe/status')).body;
    assert.equal(st.status, 'failed');
    assert.match(st.message, /leads to .*secret\.json, outside the data directory/);
    fs.rmSync(outside, { recursive: true, force: true });
  });
});
