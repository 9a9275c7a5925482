/**
 * Against a real host process: GET /metrics parsed by a strict Prometheus-format parser with per-rule
 * counters equal to rule status; a sink outage shows the rule `degraded` (reason, since), logged
 * once at warn and its recovery once at info; the parser itself refuses broken expositions.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { startHostProcess } from '../helpers/host-process.js';
import { freePort, Target, waitFor } from './helpers.js';
import { parseExposition } from './prom-parse.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-health-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const logLines = (out: string, re: RegExp) => out.split('\n').filter((l) => re.test(l)).map((l) => JSON.parse(l) as { level: number; msg: string });

describe('metrics and rule health', { timeout: 90_000 }, () => {
  it('the strict parser refuses what Prometheus refuses', () => {
    const ok = '# HELP a_total x\n# TYPE a_total counter\na_total{rule="r\\"1"} 3\n';
    assert.equal(parseExposition(ok).get('a_total', { rule: 'r"1' }), 3);
    for (const bad of [
      'a_total 1\n', // no TYPE
      '# TYPE a counter\na 1', // no final newline
      '# TYPE a gauge\na{1x="v"} 1\n', // bad label name
      '# TYPE a gauge\na{x="v\\q"} 1\n', // bad escape
      '# TYPE a gauge\na{x="v"} one\n', // bad value
      '# TYPE a gauge\na{x="v"} 1\na{x="v"} 2\n', // duplicate series
      '# TYPE a gauge\n# TYPE a gauge\na 1\n', // TYPE twice
      '# TYPE a_total counter\na_total -1\n', // negative counter
    ])
      assert.throws(() => parseExposition(bad), Error, JSON.stringify(bad));
  });

  it('GET /metrics: valid exposition, per-rule counters equal to status; a sink outage is degraded and logged once each way', async () => {
    const target = new Target(await freePort());
    await target.up();
    const mqttPort = await freePort();
    const host = await startHostProcess({ dataDir: path.join(root, 'data'), args: ['--mqtt-port', String(mqttPort)] });
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
    try {
      assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM s (n bigint) WITH (DATASOURCE="in/rows", FORMAT="json")' })).status, 201);
      const url = `http://127.0.0.1:${target.port}/in`;
      let r = await host.api('POST', '/rules', { id: 'r1', sql: 'SELECT n FROM s', actions: [{ rest: { url, enableCache: true, sendSingle: true, retryInterval: 200 } }] });
      assert.equal(r.status, 201, r.text);
      r = await host.api('POST', '/rules', { id: 'r2', sql: 'SELECT n FROM s WHERE n > 5', actions: [{ nop: {} }] });
      assert.equal(r.status, 201, r.text);
      for (let n = 0; n < 10; n++) await pub.publishAsync('in/rows', JSON.stringify({ n }), { qos: 1 });
      await waitFor('10 rows at the target', () => target.rows.length === 10);
      await waitFor('r2 saw 4 rows', async () => (await host.api('GET', '/rules/r2/status')).body.sinks[0].recordsIn === 4);

      const res = await host.api('GET', '/metrics');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const m = parseExposition(res.text);
      const s1 = (await host.api('GET', '/rules/r1/status')).body;
      const s2 = (await host.api('GET', '/rules/r2/status')).body;
      assert.equal(m.get('kuiper_source_records_in_total', { rule: 'r1', type: 'source', op: 's' }), 10);
      assert.equal(m.get('kuiper_sink_records_out_total', { rule: 'r1', type: 'sink', op: 'rest_0' }), s1.sinks[0].recordsOut);
      assert.equal(m.get('kuiper_sink_records_out_total', { rule: 'r1', op: 'rest_0' }), 10);
      assert.equal(m.get('kuiper_sink_records_in_total', { rule: 'r2', op: 'nop_0' }), 4);
      const filter = s2.operators.find((o: { name: string }) => o.name === 'filter');
      assert.ok(filter, JSON.stringify(s2.operators));
      assert.equal(m.get('kuiper_op_records_in_total', { rule: 'r2', type: 'op', op: 'filter' }), filter.recordsIn);
      assert.equal(m.get('kuiper_op_records_out_total', { rule: 'r2', op: 'filter' }), 4);
      assert.equal(m.get('streamplug_rule_status', { rule: 'r1', status: 'running' }), 1);
      assert.equal(m.get('streamplug_rule_status', { rule: 'r1', status: 'degraded' }), 0);
      assert.equal(m.types.get('kuiper_sink_records_out_total'), 'counter');
      assert.ok(m.get('streamplug_process_resident_memory_bytes')! > 0);

      // The target goes away: r1 is degraded (r2 is not), logged once however many resends fail.
      await target.down();
      for (let n = 10; n < 15; n++) await pub.publishAsync('in/rows', JSON.stringify({ n }), { qos: 1 });
      await waitFor('r1 degraded', async () => (await host.api('GET', '/rules/r1/status')).body.status === 'degraded');
      const d = (await host.api('GET', '/rules/r1/status')).body;
      assert.match(d.degraded.reason, /actions\[0\]\.rest: .*ECONNREFUSED/);
      assert.equal(typeof d.degraded.since, 'number');
      assert.equal((await host.api('GET', '/rules/r2/status')).body.status, 'running');
      const list = (await host.api('GET', '/rules')).body as { id: string; status: string }[];
      assert.equal(list.find((x) => x.id === 'r1')?.status, 'degraded');
      const md = parseExposition((await host.api('GET', '/metrics')).text);
      assert.equal(md.get('streamplug_rule_status', { rule: 'r1', status: 'degraded' }), 1);
      assert.equal(md.get('streamplug_sink_connected', { rule: 'r1', op: 'rest_0' }), 0);
      assert.equal(md.get('streamplug_rule_degraded_since', { rule: 'r1' }), d.degraded.since);
      await waitFor('several failed resends', async () => (await host.api('GET', '/rules/r1/status')).body.sinks[0].exceptions >= 3);

      await target.up();
      await waitFor('r1 running again', async () => (await host.api('GET', '/rules/r1/status')).body.status === 'running');
      await waitFor('every row', () => target.rows.length === 15);
      assert.deepEqual(target.rows, Array.from({ length: 15 }, (_, i) => i));
      const out = host.stdout();
      const down = logLines(out, /rule r1 is degraded/);
      const up = logLines(out, /rule r1 recovered/);
      assert.equal(down.length, 1, out);
      assert.equal(down[0].level, 40);
      assert.equal(up.length, 1);
      assert.equal(up[0].level, 30);
      assert.equal(logLines(out, /rule r2 is degraded/).length, 0);
    } finally {
      await pub.endAsync();
      await host.stop();
      await target.down().catch(() => undefined);
    }
  });
});
