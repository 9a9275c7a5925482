/**
 * Rule-set import and export (POST /data/import, GET /data/export) between real host processes: a
 * set with streams (MQTT, NATS), rules (one running with a plugin function, one stopped), a plugin
 * reference to a real zip and a source config goes into host A; A's export equals the set; A's export
 * imported into a fresh host B exports the very same text; applying it again changes nothing; and
 * the bad sets an operator could send are refused with a code and the item named.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeZip, sample } from '../manager/zips.js';
import { freePort, tempDir } from '../connectors/helpers.js';
import { startHostProcess, type HostProcess } from '../helpers/host-process.js';

export async function ruleSetFixture(dir: string): Promise<Record<string, Record<string, string>>> {
  const zip = path.join(dir, 'echo.zip');
  await makeZip(zip, [{ name: 'echo.so', file: sample('echo.so') }]);
  return {
    streams: {
      // the canonical form a host stores and exports (hand-written SQL is accepted and stored like this)
      demo: 'CREATE STREAM demo (temperature float, id bigint) WITH (TYPE="mqtt", FORMAT="json", DATASOURCE="demo/in")',
      n: 'CREATE STREAM n () WITH (TYPE="nats", FORMAT="json", DATASOURCE="scale.in", CONF_KEY="default")',
    },
    tables: {},
    rules: {
      hot: JSON.stringify({ id: 'hot', sql: 'SELECT echo(temperature) AS t FROM demo WHERE temperature > 30', actions: [{ file: { path: 'out/hot.jsonl' } }] }),
      copy: JSON.stringify({ id: 'copy', sql: 'SELECT * FROM n', actions: [{ log: {} }], triggered: false }),
    },
    nativePlugins: { functions_echo: JSON.stringify({ name: 'echo', file: pathToFileURL(zip).href }) },
    portablePlugins: {},
    sourceConfig: { nats: JSON.stringify({ default: { server: 'nats://127.0.0.1:1', stream: 'S', durable: 'D' } }) },
    sinkConfig: {},
    connectionConfig: {},
  };
}

async function host(tag: string): Promise<HostProcess> {
  return startHostProcess({ dataDir: tempDir(`data-${tag}`), args: ['--mqtt-port', String(await freePort())] });
}

describe('rule-set import and export', { timeout: 120_000 }, () => {
  let a: HostProcess;
  let b: HostProcess;
  let dir: string;
  before(async () => {
    dir = tempDir('ruleset');
    [a, b] = await Promise.all([host('a'), host('b')]);
  });
  after(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips a rule set exactly, between hosts, and a second apply changes nothing', async () => {
    const set = await ruleSetFixture(dir);
    const imp = await a.api('POST', '/data/import', { content: JSON.stringify(set) });
    assert.equal(imp.status, 200, imp.text);
    assert.deepEqual(imp.body.failed, []);
    assert.ok(imp.body.applied.some((x: { section: string; outcome: string }) => x.section === 'nativePlugins' && x.outcome === 'installed'));

    const expA = await a.api('GET', '/data/export');
    assert.equal(expA.status, 200);
    assert.deepEqual(expA.body, set, 'export differs from the set imported');

    // the imported things really work: the plugin is loaded, the rules have their states
    assert.equal((await a.api('GET', '/plugins/functions/echo')).body.state, 'loaded');
    assert.equal((await a.api('GET', '/rules/hot/status')).body.status, 'running');
    assert.equal((await a.api('GET', '/rules/copy/status')).body.status, 'stopped');
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(a.dataDir, 'etc', 'nats_source.json'), 'utf8')), JSON.parse(set.sourceConfig.nats));

    // A's export into a fresh B (as the object this time) gives the same text back
    const impB = await b.api('POST', '/data/import', expA.body);
    assert.equal(impB.status, 200, impB.text);
    const expB = await b.api('GET', '/data/export');
    assert.equal(expB.text, expA.text);

    // applying it again: everything unchanged, nothing restarted
    const again = await b.api('POST', '/data/import', { content: expA.text });
    assert.equal(again.status, 200);
    assert.deepEqual(
      [...new Set(again.body.applied.map((x: { outcome: string }) => x.outcome))].sort(),
      ['present', 'unchanged'],
    );
    // hand-written SQL meaning the same stream is unchanged too (compared in canonical form)
    const handWritten = { ...set, streams: { ...set.streams, demo: 'create stream demo (temperature FLOAT, id BIGINT) WITH (DATASOURCE="demo/in", FORMAT="json")' } };
    const third = await b.api('POST', '/data/import', { content: JSON.stringify(handWritten) });
    assert.equal(third.status, 200);
    assert.ok(third.body.applied.some((x: { section: string; name: string; outcome: string }) => x.name === 'demo' && x.outcome === 'unchanged'), third.text);
    assert.equal((await b.api('GET', '/data/export')).text, expA.text);
  });

  it('a full import removes what the set does not name; partial keeps it', async () => {
    const set = await ruleSetFixture(dir);
    assert.equal((await b.api('POST', '/streams', { sql: 'CREATE STREAM extra () WITH (DATASOURCE="x")' })).status, 201);
    const partial = await b.api('POST', '/data/import?partial=1', { content: JSON.stringify(set) });
    assert.equal(partial.status, 200);
    assert.ok((await b.api('GET', '/streams')).body.includes('extra'));
    const full = await b.api('POST', '/data/import', { content: JSON.stringify(set) });
    assert.equal(full.status, 200);
    assert.ok(full.body.applied.some((x: { section: string; name: string; outcome: string }) => x.section === 'streams' && x.name === 'extra' && x.outcome === 'deleted'));
    assert.deepEqual((await b.api('GET', '/data/export')).body, set);
  });

  it('refuses malformed sets as a whole and reports bad items by name', async () => {
    const set = await ruleSetFixture(dir);
    const h = await host('bad');
    try {
      const refused = async (body: unknown, re: RegExp) => {
        const r = await h.api('POST', '/data/import', body);
        assert.equal(r.status, 400, r.text);
        assert.equal(r.body.error, 'E_BAD_REQUEST');
        assert.match(r.body.message, re);
      };
      await refused({ content: '{"streams": ' }, /not valid JSON/);
      await refused({ content: JSON.stringify({ streams: [] }) }, /"streams" must be an object/);
      await refused({ content: JSON.stringify({ rules: { r: { id: 'r' } } }) }, /rules\.r must be a string/);
      await refused({ content: JSON.stringify({ bogus: {} }) }, /unknown section/);
      await refused({ content: JSON.stringify({ nativePlugins: { widgets_x: '{}' } }) }, /<type>_<name>/);
      await refused({ file: 'https://example.com/set.json' }, /only file:\/\/ URLs/);
      assert.deepEqual((await h.api('GET', '/data/export')).body.streams, {}, 'a refused set changed the host');

      // per item: the good ones apply, the bad ones are named
      const mixed = {
        ...set,
        tables: { t: 'CREATE TABLE t () WITH (TYPE="mqtt", DATASOURCE="t")' },
        streams: { ...set.streams, broken: 'CREATE STREAM broken (' },
        rules: { ...set.rules, wrongkey: set.rules.hot, nosuch: JSON.stringify({ id: 'nosuch', sql: 'SELECT * FROM missing', actions: [{ log: {} }] }) },
        nativePlugins: { ...set.nativePlugins, functions_gone: JSON.stringify({ name: 'gone', file: pathToFileURL(path.join(dir, 'gone.zip')).href }) },
        // a broken config file is not written; a key naming no connector cannot reach outside etc/
        sourceConfig: { nats: '{"default": ', '../../escape': '{}' },
      };
      const r = await h.api('POST', '/data/import', { content: JSON.stringify(mixed) });
      assert.equal(r.status, 400);
      assert.equal(r.body.error, 'E_IMPORT_INCOMPLETE');
      const failed = r.body.failed.map((f: { section: string; name: string }) => `${f.section}.${f.name}`).sort();
      assert.deepEqual(failed, ['nativePlugins.functions_gone', 'rules.nosuch', 'rules.wrongkey', 'sourceConfig.../../escape', 'sourceConfig.nats', 'streams.broken', 'tables.t']);
      assert.ok(!fs.existsSync(path.join(h.dataDir, 'etc', 'nats_source.json')), 'a broken source config was written');
      assert.deepEqual(fs.readdirSync(path.join(h.dataDir, 'etc')).filter((f) => f.includes('import')), [], 'a temporary file was left behind');
      for (const f of r.body.failed) assert.match(f.code, /^E_/);
      const exp = (await h.api('GET', '/data/export')).body;
      assert.deepEqual(Object.keys(exp.streams).sort(), ['demo', 'n']);
      assert.deepEqual(Object.keys(exp.rules).sort(), ['copy', 'hot']);
    } finally {
      await h.kill();
    }
  });
});
