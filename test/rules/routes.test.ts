/**
 * The REST routes on a fresh fastify instance (inject), and the CLI against the same routes on a real
 * port: eKuiper's paths, `{"error", "message"}` bodies, 400 with position and reason, 404, 409.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { PluginRegistry } from '../../src/plugins/registry.js';
import { collect, openService, publish, routesApp, sampleRegistry, tempDir, waitFor, type Opened } from './helpers.js';
import { repoRoot } from '../helpers/paths.js';

const STREAM = 'CREATE STREAM s (x float, w string) WITH (TYPE="memory", DATASOURCE="t/api/in")';

describe('stream and rule routes', () => {
  let reg: PluginRegistry;
  let o: Opened;
  let app: FastifyInstance;
  before(async () => {
    reg = await sampleRegistry();
    o = openService(tempDir('routes'), reg);
    app = await routesApp(o.service);
  });
  after(async () => {
    await app.close();
    await o.close();
    reg.unloadAll();
  });

  it('creates, lists, describes, updates and drops streams', async () => {
    let r = await app.inject({ method: 'POST', url: '/streams', payload: { sql: STREAM } });
    assert.equal(r.statusCode, 201);
    assert.equal(r.body, 'Stream s is created.');
    r = await app.inject({ method: 'POST', url: '/streams', payload: { sql: STREAM } });
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().error, 'E_CONFLICT');
    r = await app.inject({ method: 'POST', url: '/streams', payload: { sql: 'CREATE STREAM t (x float WITH (DATASOURCE="a")' } });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().error, 'E_SQL_SYNTAX');
    assert.deepEqual([r.json().details.line, r.json().details.column], [1, 26]);
    r = await app.inject({ method: 'POST', url: '/streams', payload: { sql: 'CREATE STREAM t () WITH (TYPE="memory", DATASOURCE="t/api/t")' } });
    assert.equal(r.statusCode, 201);
    assert.deepEqual((await app.inject({ method: 'GET', url: '/streams' })).json(), ['s', 't']);
    const d = (await app.inject({ method: 'GET', url: '/streams/s' })).json();
    assert.deepEqual(d.fields.map((f: { name: string }) => f.name), ['x', 'w']);
    assert.equal(d.options.DATASOURCE, 't/api/in');
    r = await app.inject({ method: 'PUT', url: '/streams/t', payload: { sql: 'CREATE STREAM t (y bigint) WITH (TYPE="memory", DATASOURCE="t/api/t2")' } });
    assert.equal(r.statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/streams/t' })).json().options.DATASOURCE, 't/api/t2');
    r = await app.inject({ method: 'PUT', url: '/streams/t', payload: { sql: STREAM } });
    assert.equal(r.statusCode, 400, 'renaming through PUT is refused');
    assert.equal((await app.inject({ method: 'DELETE', url: '/streams/t' })).body, 'Stream t is dropped.');
    r = await app.inject({ method: 'GET', url: '/streams/t' });
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().error, 'E_NOT_FOUND');
  });

  it('runs the rule lifecycle over REST', async () => {
    const out = collect('t/api/out');
    const rule = { id: 'r1', sql: 'SELECT echo(x) AS e, scale(x, 2.0) AS d FROM s WHERE x > 1', actions: [{ memory: { topic: 't/api/out' } }] };
    let r = await app.inject({ method: 'POST', url: '/rules', payload: rule });
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.body, 'Rule r1 was created successfully.');
    assert.equal((await app.inject({ method: 'POST', url: '/rules', payload: rule })).statusCode, 409);
    assert.deepEqual((await app.inject({ method: 'GET', url: '/rules' })).json(), [{ id: 'r1', status: 'running' }]);
    assert.deepEqual((await app.inject({ method: 'GET', url: '/rules/r1' })).json(), rule);
    publish('t/api/in', [{ x: 1 }, { x: 3 }]);
    await waitFor('result', () => out.rows.length === 1);
    assert.deepEqual(out.rows, [{ e: 3, d: 6 }]);
    const st = (await app.inject({ method: 'GET', url: '/rules/r1/status' })).json();
    assert.equal(st.status, 'running');
    assert.equal(st.source.state, 'connected');
    assert.deepEqual(st.operators.map((op: { name: string }) => op.name), ['source', 'filter', 'project']);
    assert.equal(st.metrics.op_filter_0_records_in_total, 2);
    assert.equal(st.metrics.op_filter_0_records_out_total, 1);
    for (const a of ['stop', 'start', 'restart']) {
      r = await app.inject({ method: 'POST', url: `/rules/r1/${a}` });
      assert.equal(r.statusCode, 200, r.body);
    }
    r = await app.inject({ method: 'PUT', url: '/rules/r1', payload: { ...rule, sql: 'SELECT x FROM s' } });
    assert.equal(r.statusCode, 200, r.body);
    r = await app.inject({ method: 'PUT', url: '/rules/r1', payload: { ...rule, id: 'r2' } });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().message, /cannot be renamed/);
    assert.equal((await app.inject({ method: 'DELETE', url: '/streams/s' })).statusCode, 409, 'a stream read by a rule stays');
    assert.equal((await app.inject({ method: 'DELETE', url: '/rules/r1' })).body, 'Rule r1 is dropped.');
    for (const [method, url] of [['GET', '/rules/r1'], ['GET', '/rules/r1/status'], ['POST', '/rules/r1/start'], ['DELETE', '/rules/r1']] as const) {
      r = await app.inject({ method, url });
      assert.equal(r.statusCode, 404, `${method} ${url}`);
      assert.equal(r.json().error, 'E_NOT_FOUND');
    }
    out.stop();
  });

  it('answers malformed SQL and JSON with 400, the position and the reason', async () => {
    let r = await app.inject({ method: 'POST', url: '/rules', payload: { id: 'bad', sql: 'SELECT x,\nFROM s', actions: [{ log: {} }] } });
    assert.equal(r.statusCode, 400);
    let b = r.json();
    assert.equal(b.error, 'E_SQL_SYNTAX');
    assert.deepEqual([b.details.line, b.details.column], [2, 1]);
    assert.match(b.message, /found 'FROM' at line 2, column 1/);

    r = await app.inject({ method: 'POST', url: '/rules', payload: { id: 'bad', sql: 'SELECT avg(x) FROM s WHERE sum(x) > 1', actions: [{ log: {} }] } });
    assert.equal(r.statusCode, 400);
    b = r.json();
    assert.equal(b.error, 'E_SQL_SEMANTIC');
    assert.equal(b.details.column, 28);

    r = await app.inject({ method: 'POST', url: '/rules', headers: { 'content-type': 'application/json' }, payload: '{"id": "bad",\n  "sql": "SELECT x FROM s" "actions": []}' });
    assert.equal(r.statusCode, 400);
    b = r.json();
    assert.equal(b.error, 'E_BAD_REQUEST');
    assert.deepEqual([b.details.line, b.details.column], [2, 28]);
    assert.match(b.message, /expected ',' or '}' but found "\\"actions/);

    r = await app.inject({ method: 'POST', url: '/rules', headers: { 'content-type': 'application/json' }, payload: '{"id": "bad", "sql": "SELECT x FROM s", "actions": [{"log": {}}]' });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().message, /found the end of the body at line 1, column 65/);

    r = await app.inject({ method: 'POST', url: '/rules', payload: ['not', 'an', 'object'] });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().message, /must be a JSON object/);
    r = await app.inject({ method: 'POST', url: '/streams', payload: { sql: 'SELECT * FROM s' } });
    assert.equal(r.statusCode, 400);
    assert.deepEqual((await app.inject({ method: 'GET', url: '/rules' })).json(), []);
  });
});

describe('streamplug stream / rule CLI', () => {
  let reg: PluginRegistry;
  let o: Opened;
  let app: FastifyInstance;
  let url: string;
  const cli = path.join(repoRoot, 'bin', 'streamplug.js');
  const run = (...args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [cli, ...args, ...(args.includes('--help') ? [] : ['--host', url])], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => resolve({ code, out, err }));
    });

  before(async () => {
    reg = await sampleRegistry();
    o = openService(tempDir('cli'), reg);
    app = await routesApp(o.service);
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await app.close();
    await o.close();
    reg.unloadAll();
  });

  it('manages streams and rules with exit codes 0, 1 and 2', async () => {
    let r = await run('stream', 'create', 'CREATE STREAM c (x float) WITH (TYPE="memory", DATASOURCE="t/cli/in")');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'Stream c is created.\n');
    r = await run('stream', 'list');
    assert.equal(r.out, 'c\n');
    r = await run('stream', 'describe', 'c', '--json');
    assert.equal(JSON.parse(r.out).name, 'c');
    r = await run('rule', 'create', JSON.stringify({ id: 'k', sql: 'SELECT scale(x, 2.0) AS y FROM c', actions: [{ memory: { topic: 't/cli/out' } }] }));
    assert.equal(r.code, 0, r.err);
    r = await run('rule', 'list');
    assert.equal(r.out, 'k\trunning\n');
    r = await run('rule', 'status', 'k');
    assert.equal(r.code, 0);
    assert.match(r.out, /^rule k: running\nsource memory t\/cli\/in \(stream c\): connected/);
    r = await run('rule', 'stop', 'k');
    assert.equal(r.out, 'Rule k was stopped.\n');
    r = await run('rule', 'describe', 'k');
    assert.equal(JSON.parse(r.out).sql, 'SELECT scale(x, 2.0) AS y FROM c');
    r = await run('rule', 'create', '{"id": "z", "sql": "SELECT FROM c", "actions": [{"log": {}}]}');
    assert.equal(r.code, 1);
    assert.match(r.err, /^streamplug: E_SQL_SYNTAX: .*line 1, column 8/);
    r = await run('rule', 'start', 'nope');
    assert.equal(r.code, 1);
    assert.match(r.err, /E_NOT_FOUND/);
    r = await run('rule', 'create');
    assert.equal(r.code, 2);
    r = await run('rule', 'frobnicate', 'k');
    assert.equal(r.code, 2);
    r = await run('rule', '--help');
    assert.equal(r.code, 0);
    assert.match(r.out, /restart/);
    r = await run('stream', 'drop', 'c');
    assert.equal(r.code, 1, 'rule k still reads c');
    assert.equal((await run('rule', 'delete', 'k')).code, 0);
    assert.equal((await run('stream', 'drop', 'c')).code, 0);
  });
});
