/**
 * restartStrategy on a real host: a rule whose file sink cannot open (its folder is a file) is tried
 * again after delay, delay*multiplier, … capped at maxDelay, `attempts` times, then stays failed; a
 * rule whose cause goes away starts on a later try. Log timestamps give the waits; the bounds are
 * generous (a try may come late on a loaded machine, never early).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHostProcess } from '../helpers/host-process.js';
import { waitFor } from './helpers.js';
import { readRestartStrategy, restartDelay } from '../../src/rules/restart.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-restart-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe('restartStrategy', { timeout: 90_000 }, () => {
  it('reads eKuiper option names, checks them, and computes capped, jittered waits', () => {
    assert.deepEqual(readRestartStrategy('r', undefined), { attempts: 0, delay: 1000, multiplier: 2, maxDelay: 30000, jitterFactor: 0.1 });
    const s = readRestartStrategy('r', { attempts: 5, delay: 100, multiplier: 3, maxDelay: 1000, jitterFactor: 0.5 });
    assert.deepEqual([0, 1, 2, 3].map((k) => restartDelay(s, k, 0.5)), [100, 300, 900, 1000]);
    assert.equal(restartDelay(s, 0, 0), 50);
    assert.equal(restartDelay(s, 0, 0.999999), 150);
    for (const bad of [{ attempts: -1 }, { delay: 1.5 }, { multiplier: 0.5 }, { jitterFactor: 2 }, { delay: 100, maxDelay: 10 }, { retries: 3 }, 'often'])
      assert.throws(() => readRestartStrategy('r', bad), { code: 'E_BAD_REQUEST' }, JSON.stringify(bad));
  });

  it('tries again with the configured waits, gives up after attempts, and a cured rule starts', async () => {
    const data = path.join(root, 'data');
    fs.mkdirSync(data, { recursive: true });
    fs.writeFileSync(path.join(data, 'blocker'), 'a file where the sink wants a folder');
    fs.writeFileSync(path.join(data, 'blocker2'), 'same');
    const host = await startHostProcess({ dataDir: data, args: ['--mqtt-port', '0'] });
    try {
      assert.equal((await host.api('POST', '/streams', { sql: 'CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="t")' })).status, 201);
      const strategy = { attempts: 3, delay: 300, multiplier: 2, maxDelay: 800, jitterFactor: 0 };
      let r = await host.api('POST', '/rules', { id: 'doomed', sql: 'SELECT * FROM s', actions: [{ file: { path: 'blocker/out.jsonl' } }], options: { restartStrategy: strategy } });
      assert.equal(r.status, 201, r.text);
      r = await host.api('POST', '/rules', { id: 'cured', sql: 'SELECT * FROM s', actions: [{ file: { path: 'blocker2/out.jsonl' } }], options: { restartStrategy: { attempts: 10, delay: 300, jitterFactor: 0, multiplier: 1 } } });
      assert.equal(r.status, 201, r.text);
      r = await host.api('POST', '/rules', { id: 'never', sql: 'SELECT * FROM s', actions: [{ file: { path: 'blocker/x.jsonl' } }] });
      assert.equal(r.status, 201, r.text);
      const bad = await host.api('POST', '/rules', { id: 'bad', sql: 'SELECT * FROM s', actions: [{ nop: {} }], options: { restartStrategy: { attempts: 'many' } } });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error, 'E_BAD_REQUEST', bad.text);
      assert.match(bad.body.message, /restartStrategy.attempts/);

      const st = (await host.api('GET', '/rules/cured/status')).body;
      assert.equal(st.status, 'failed');
      assert.equal(typeof st.restart.nextAt, 'number');
      fs.rmSync(path.join(data, 'blocker2'));
      await waitFor('cured runs', async () => (await host.api('GET', '/rules/cured/status')).body.status === 'running');
      assert.equal((await host.api('GET', '/rules/cured/status')).body.restart, undefined, 'a good start resets the tries');

      await waitFor('doomed gives up', () => /restartStrategy gave up after 3 tries/.test(host.stdout()), 20_000);
      const lines = host.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { rule?: string; msg: string; time: number; level: number });
      const failures = lines.filter((l) => l.rule === 'doomed' && l.level === 40 && /cannot start/.test(l.msg));
      assert.equal(failures.length, 4, 'the first start and 3 tries');
      const gaps = failures.slice(1).map((f, i) => f.time - failures[i].time);
      [300, 600, 800].forEach((want, i) => {
        assert.ok(gaps[i] >= want - 5, `wait ${i + 1} was ${gaps[i]} ms, expected ${want}`);
        assert.ok(gaps[i] < want + 2000, `wait ${i + 1} was ${gaps[i]} ms, expected about ${want}`);
      });
      const d = (await host.api('GET', '/rules/doomed/status')).body;
      assert.equal(d.status, 'failed');
      assert.deepEqual(d.restart, { tries: 3 });
      // Without a restartStrategy (attempts 0) a failed rule is not tried again.
      assert.equal(lines.filter((l) => l.rule === 'never' && /cannot start/.test(l.msg)).length, 1);
      assert.equal((await host.api('GET', '/rules/never/status')).body.restart, undefined);
    } finally {
      await host.stop();
    }
  });
});
