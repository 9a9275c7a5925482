/**
 * The eKuiper case table end to end: a real host process (`streamplug start`, its embedded MQTT broker
 * on a free port), each case's stream and rule created over REST with a file sink, the input rows
 * published over MQTT one message each, the file's lines compared with eKuiper's rows. Rules and
 * streams are deleted the way many HTTP clients do it: no body but `content-type: application/json`.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { startHostProcess, type HostProcess } from '../helpers/host-process.js';
import { freePort, tempDir, waitFor } from '../connectors/helpers.js';
import { caseSql, compareRows, inputRows, loadCases, streamSql, tableSql } from '../engine/ekuiper-cases.js';

const { cases, streams } = loadCases();

const readLines = (file: string): unknown[] =>
  fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];

describe('eKuiper SQL cases end to end: REST, MQTT source, file sink', () => {
  let host: HostProcess;
  let client: MqttClient;
  let dir: string;
  const failures: string[] = [];
  before(async () => {
    dir = tempDir('ekuiper-sql');
    const mqttPort = await freePort();
    host = await startHostProcess({ dataDir: dir, args: ['--mqtt-port', String(mqttPort)] });
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
  });
  after(async () => {
    await client?.endAsync();
    await host?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('bodiless requests with content-type JSON (start, stop, restart, DELETE) are accepted, so the names can be used again', async () => {
    const json = { 'content-type': 'application/json' };
    for (let round = 0; round < 2; round++) {
      let r = await host.api('POST', '/streams', { sql: 'CREATE STREAM again () WITH (DATASOURCE="again")' });
      assert.equal(r.status, 201, r.text);
      r = await host.api('POST', '/rules', { id: 'again', sql: 'SELECT * FROM again', actions: [{ log: {} }] });
      assert.equal(r.status, 201, r.text);
      for (const op of ['stop', 'start', 'restart']) {
        r = await host.api('POST', `/rules/again/${op}`, undefined, json);
        assert.equal(r.status, 200, `${op}: ${r.text}`);
      }
      assert.equal((await host.api('DELETE', '/rules/again', undefined, json)).status, 200);
      assert.equal((await host.api('DELETE', '/streams/again', undefined, json)).status, 200);
    }
    // a body that is there but broken is still refused with its position
    const bad = await host.api('POST', '/rules', '{"id": "x",', json);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'E_BAD_REQUEST');
    assert.match(bad.text, /not valid JSON/);
  });

  cases.forEach((c, i) => {
    it(`${c.group}: ${c.name}`, async () => {
      const name = `s${i}`;
      const topic = `cases/${i}`;
      const out = `out/case${i}.jsonl`;
      let r = await host.api('POST', '/streams', { sql: streamSql(streams[c.stream], name, topic) });
      assert.equal(r.status, 201, r.text);
      // tables: their rows in a JSON file under the data directory; joined streams: their own topics
      for (const [t, spec] of Object.entries(c.tables ?? {})) {
        const file = `tables/case${i}-${t}.json`;
        fs.mkdirSync(path.join(dir, 'tables'), { recursive: true });
        fs.writeFileSync(path.join(dir, file), JSON.stringify(spec.rows));
        r = await host.api('POST', '/tables', { sql: tableSql(spec, t, file) });
        assert.equal(r.status, 201, r.text);
      }
      for (const [j, spec] of Object.entries(c.joinStreams ?? {})) {
        r = await host.api('POST', '/streams', { sql: streamSql(spec, j, `cases/${i}/${j}`) });
        assert.equal(r.status, 201, r.text);
      }
      r = await host.api('POST', '/rules', { id: `r${i}`, sql: caseSql(c, name, topic), actions: [{ file: { path: out, interval: 20 } }], ...(c.options ? { options: c.options } : {}) });
      assert.equal(r.status, 201, r.text);
      for (const row of inputRows(c, streams[c.stream])) await client.publishAsync(topic, JSON.stringify(row), { qos: 1 });
      for (const [j, spec] of Object.entries(c.joinStreams ?? {}))
        for (const row of spec.rows) await client.publishAsync(`cases/${i}/${j}`, JSON.stringify(row), { qos: 1 });
      const file = path.join(dir, out);
      await waitFor(`${c.expected.length} result rows`, () => readLines(file).length >= c.expected.length, 5000).catch(() => undefined);
      await new Promise((res) => setTimeout(res, 150)); // rows beyond the expected ones would show up here
      // a bodiless DELETE that still says content-type JSON, as many clients send it
      const del = await host.api('DELETE', `/rules/r${i}`, undefined, { 'content-type': 'application/json' });
      assert.equal(del.status, 200, del.text);
      const dels = await host.api('DELETE', `/streams/${name}`, undefined, { 'content-type': 'application/json' });
      assert.equal(dels.status, 200, dels.text);
      for (const j of Object.keys(c.joinStreams ?? {})) assert.equal((await host.api('DELETE', `/streams/${j}`)).status, 200);
      for (const t of Object.keys(c.tables ?? {})) assert.equal((await host.api('DELETE', `/tables/${t}`)).status, 200);
      const diff = compareRows(readLines(file), c.expected);
      if (diff) failures.push(`${c.name}: ${diff}`);
      assert.equal(diff, undefined, diff);
    });
  });
});
