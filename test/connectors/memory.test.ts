/** Memory topics between rules: wildcard subscriptions, copies per subscriber, templated JSON. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSinkRunner, createSource, MemoryBus, topicMatches, type Row } from '../../src/connectors/index.js';
import { MemorySink } from '../../src/connectors/memory/sink.js';
import { MemorySource } from '../../src/connectors/memory/source.js';
import { waitFor } from './helpers.js';

describe('topic filters', () => {
  it('matches MQTT wildcards', () => {
    const cases: [string, string, boolean][] = [
      ['a/b', 'a/b', true],
      ['a/b', 'a/c', false],
      ['a/+', 'a/b', true],
      ['a/+', 'a/b/c', false],
      ['a/+/c', 'a/x/c', true],
      ['a/#', 'a', true],
      ['a/#', 'a/b/c', true],
      ['#', 'x/y', true],
      ['+/+', 'a', false],
      ['a/b/#', 'a/c', false],
    ];
    for (const [f, t, want] of cases) assert.equal(topicMatches(f, t), want, `${f} vs ${t}`);
  });
});

describe('memory source and sink', () => {
  it('delivers a sink message to every matching source, by wildcard, each with its own copies', async () => {
    const bus = new MemoryBus();
    const exact = new MemorySource('home/kitchen/temp', bus);
    const plus = new MemorySource('home/+/temp', bus);
    const hash = new MemorySource('home/#', bus);
    const other = new MemorySource('office/#', bus);
    const got = new Map<string, { rows: Row[]; topic?: string }[]>();
    for (const [name, s] of Object.entries({ exact, plus, hash, other })) {
      got.set(name, []);
      await s.start((rows, meta) => got.get(name)!.push({ rows, topic: meta?.topic }), () => {});
    }
    const sink = new MemorySink('home/kitchen/temp', bus);
    await sink.collect([{ t: 20 }, { t: 21 }]);
    await waitFor('delivery', () => got.get('hash')!.length === 1);
    for (const name of ['exact', 'plus', 'hash'])
      assert.deepEqual(got.get(name), [{ rows: [{ t: 20 }, { t: 21 }], topic: 'home/kitchen/temp' }], name);
    assert.deepEqual(got.get('other'), []);
    got.get('exact')![0].rows[0].t = 99; // one rule changing its rows must not reach another
    assert.equal(got.get('plus')![0].rows[0].t, 20);
    assert.deepEqual(exact.metrics(), { messagesIn: 1, rowsOut: 2, decodeErrors: 0 });
    await exact.stop();
    await sink.collect([{ t: 22 }]);
    await waitFor('second delivery', () => got.get('plus')!.length === 2);
    assert.equal(got.get('exact')!.length, 1);
  });

  it('goes through the registry and the runner: sendSingle and a JSON template', async () => {
    const got: Row[][] = [];
    const src = createSource('memory', 'pipe/+');
    await src.start((rows) => got.push(rows), () => {});
    const runner = createSinkRunner('memory', { topic: 'pipe/a', sendSingle: true, dataTemplate: '{"v": {{.x}}, "tag": "{{.tag}}"}' });
    await runner.open();
    await runner.collect([{ x: 1, tag: 'p' }, { x: 2, tag: 'q' }]);
    await runner.drain();
    await waitFor('two messages', () => got.length === 2);
    assert.deepEqual(got, [[{ v: 1, tag: 'p' }], [{ v: 2, tag: 'q' }]]);
    await src.stop();
    await runner.close();
  });

  it('counts a template whose output is not JSON as a failed message', async () => {
    const runner = createSinkRunner('memory', { topic: 'pipe/b', dataTemplate: 'x={{len .}}' });
    await runner.open();
    await runner.collect([{ a: 1 }]);
    await runner.drain();
    const m = runner.metrics();
    assert.equal(m.exceptions, 1);
    assert.equal(m.droppedMessages, 1);
    assert.match(m.lastError ?? '', /not JSON/);
    await runner.close();
  });

  it('refuses bad topics', () => {
    assert.throws(() => createSource('memory', 'a/#/b'), { code: 'E_CONNECTOR_CONFIG' });
    assert.throws(() => createSinkRunner('memory', { topic: 'a/+' }), { code: 'E_CONNECTOR_CONFIG' });
    assert.throws(() => createSinkRunner('memory', {}), { code: 'E_CONNECTOR_CONFIG' });
  });
});
