/**
 * restartStrategy for rules that fail while running: a native sink (test/io/fixtures/iofx.c, built
 * from plugin.h here) whose collect returns SP_ERROR at its Nth batch dies; the rule becomes `failed`
 * with the reason, is restarted after delay, delay*multiplier, …, and gives up after `attempts`
 * failures in a row. A rule that ran at least maxDelay before failing starts its count again.
 * The waits come from the log's timestamps; the bounds are generous (late on a loaded machine is
 * fine, early never).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { PluginRegistry } from '../../src/plugins/registry.js';
import { openStore, type Store } from '../../src/store/index.js';
import { createRuleService, type RuleService } from '../../src/rules/index.js';
import { buildIoFx } from '../io/fixtures.js';
import { publish, tempDir, waitFor } from '../rules/helpers.js';

interface Line {
  level: number;
  time: number;
  msg: string;
  rule?: string;
}

describe('restartStrategy after a failure while running', { timeout: 60_000 }, () => {
  let reg: PluginRegistry;
  let store: Store;
  let service: RuleService;
  let dir: string;
  const lines: Line[] = [];
  before(async () => {
    reg = new PluginRegistry({ onLog: () => undefined });
    await reg.load(buildIoFx());
    dir = tempDir('runtime-restart');
    store = openStore(dir);
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
    service = createRuleService({ dataDir: dir, store, functions: reg, log });
  });
  after(async () => {
    await service?.close();
    store?.close();
    reg?.unloadAll();
  });

  const status = (id: string) => service.ruleStatus(id);
  const seqs = (file: string) =>
    fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { n: number }).n) : [];
  const logged = (id: string, re: RegExp) => lines.filter((l) => l.rule === id && re.test(l.msg));

  /** Publishes one row and waits until the sink wrote it. */
  async function deliver(topic: string, file: string, n: number): Promise<void> {
    publish(topic, [{ n }]);
    await waitFor(`row ${n} written`, () => seqs(file).includes(n));
  }

  /** Publishes the row the sink dies on and waits for the rule to be failed. */
  async function kill(id: string, topic: string, n: number): Promise<void> {
    publish(topic, [{ n }]);
    await waitFor(`rule ${id} failed`, () => status(id).status === 'failed');
  }

  it('restarts with the configured waits, counts tries across quick failures, then stays failed', async () => {
    service.createStream('CREATE STREAM s1 () WITH (TYPE="memory", DATASOURCE="rt/one")');
    const file = path.join(dir, 'one.jsonl');
    const strategy = { attempts: 2, delay: 300, multiplier: 2, maxDelay: 20_000, jitterFactor: 0 };
    const r = await service.createRule({ id: 'dies', sql: 'SELECT * FROM s1', actions: [{ fx_sink: { path: file, fatalat: 2 } }], options: { restartStrategy: strategy } });
    assert.equal(r.status, 'running', r.message);

    await deliver('rt/one', file, 1);
    await kill('dies', 'rt/one', 2);
    let st = status('dies');
    assert.equal(st.error?.code, 'E_RULE_FAILED');
    assert.match(st.message ?? '', /actions\[0\]\.fx_sink: .*disk on fire/);
    assert.equal(st.restart?.tries, 0);
    assert.equal(typeof st.restart?.nextAt, 'number', 'the next try is shown');

    await waitFor('first restart', () => status('dies').status === 'running');
    await deliver('rt/one', file, 3);
    await kill('dies', 'rt/one', 4);
    st = status('dies');
    assert.equal(st.restart?.tries, 1, 'failed soon after its restart: the count goes on');
    assert.equal(typeof st.restart?.nextAt, 'number');

    await waitFor('second restart', () => status('dies').status === 'running');
    await deliver('rt/one', file, 5);
    await kill('dies', 'rt/one', 6);
    await waitFor('gave up', () => logged('dies', /restartStrategy gave up after 2 tries/).length === 1);
    st = status('dies');
    assert.equal(st.status, 'failed');
    assert.deepEqual(st.restart, { tries: 2 });
    publish('rt/one', [{ n: 7 }]);

    const failures = logged('dies', /failed while running/).map((l) => l.time);
    const starts = logged('dies', /^rule dies started$/).map((l) => l.time);
    assert.equal(failures.length, 3);
    assert.equal(starts.length, 3, 'the first start and 2 restarts');
    [300, 600].forEach((want, k) => {
      const gap = starts[k + 1] - failures[k];
      assert.ok(gap >= want - 5, `wait ${k + 1} was ${gap} ms, expected ${want}`);
      assert.ok(gap < want + 3000, `wait ${k + 1} was ${gap} ms, expected about ${want}`);
    });
    // What each instance of the sink took before dying; nothing after the rule gave up.
    assert.deepEqual(seqs(file), [1, 3, 5]);
    assert.equal(status('dies').status, 'failed');
  });

  it('a rule that ran at least maxDelay before failing starts its count again', async () => {
    service.createStream('CREATE STREAM s2 () WITH (TYPE="memory", DATASOURCE="rt/two")');
    const file = path.join(dir, 'two.jsonl');
    const strategy = { attempts: 1, delay: 200, multiplier: 1, maxDelay: 200, jitterFactor: 0 };
    await service.createRule({ id: 'steady', sql: 'SELECT * FROM s2', actions: [{ fx_sink: { path: file, fatalat: 2 } }], options: { restartStrategy: strategy } });
    await deliver('rt/two', file, 1);
    await kill('steady', 'rt/two', 2);
    await waitFor('restart', () => status('steady').status === 'running');
    await deliver('rt/two', file, 3);
    await new Promise((r) => setTimeout(r, 400)); // longer than maxDelay: a good run
    await kill('steady', 'rt/two', 4);
    assert.equal(status('steady').restart?.tries, 0, 'its one try is available again');
    await waitFor('restarted again', () => status('steady').status === 'running');
    await deliver('rt/two', file, 5);
    assert.deepEqual(seqs(file), [1, 3, 5]);
  });

  it('without a restartStrategy the rule stays failed, says so, and a manual start runs it again', async () => {
    service.createStream('CREATE STREAM s3 () WITH (TYPE="memory", DATASOURCE="rt/three")');
    const file = path.join(dir, 'three.jsonl');
    await service.createRule({ id: 'once', sql: 'SELECT * FROM s3', actions: [{ fx_sink: { path: file, fatalat: 2 } }] });
    await deliver('rt/three', file, 1);
    await kill('once', 'rt/three', 2);
    const st = status('once');
    assert.equal(st.restart, undefined);
    assert.match(st.message ?? '', /set options\.restartStrategy/);
    assert.equal(service.listRules().find((x) => x.id === 'once')?.status, 'failed');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(status('once').status, 'failed', 'attempts 0: never tried again');
    await service.startRule('once');
    await deliver('rt/three', file, 3);
    assert.deepEqual(seqs(file), [1, 3]);
  });
});
