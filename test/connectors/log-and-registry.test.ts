/** The log sink's output through a real pino logger, the nop sink, the registry and JSON decoding. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  createSink, createSinkRunner, createSource, decodeJson, registerSink, sinkTypes, sourceTypes, unregisterSink, type Row,
} from '../../src/connectors/index.js';
import type { NopSink } from '../../src/connectors/sinks/nop.js';

describe('log sink', () => {
  it('logs every message with the rule id at the chosen level', async () => {
    const lines: Record<string, unknown>[] = [];
    const out = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    const logger = pino({ level: 'debug' }, out);
    const r = createSinkRunner('log', { level: 'warn', sendSingle: true }, { logger, ruleId: 'rule7' });
    await r.open();
    await r.collect([{ a: 1 }, { a: 2 }]);
    await r.close();
    assert.deepEqual(
      lines.map((l) => [l.level, l.rule, l.sink, l.result, l.msg]),
      [
        [40, 'rule7', 'log', '{"a":1}', 'sink result'],
        [40, 'rule7', 'log', '{"a":2}', 'sink result'],
      ],
    );
    assert.throws(() => createSink('log', { level: 'loud' }), { code: 'E_CONNECTOR_CONFIG' });
  });
});

describe('connector registry', () => {
  it('knows the built-in types and refuses unknown ones', () => {
    assert.deepEqual(sourceTypes(), ['memory', 'mqtt', 'nats']);
    assert.deepEqual(sinkTypes(), ['file', 'log', 'memory', 'mqtt', 'nats', 'nop', 'rest']);
    assert.throws(() => createSource('kafka', 't'), { code: 'E_NOT_FOUND' });
    assert.throws(() => createSink('kafka'), { code: 'E_NOT_FOUND' });
  });

  it('registers a sink under a new name (as native plugins will), refusing duplicates', async () => {
    const got: Row[][] = [];
    registerSink('capture', () => ({ open: async () => {}, collect: async (rows) => void got.push(rows), close: async () => {} }));
    try {
      assert.throws(() => registerSink('CAPTURE', () => createSink('nop')), { code: 'E_CONFLICT' });
      const r = createSinkRunner('capture', { sendSingle: true });
      await r.open();
      await r.collect([{ a: 1 }]);
      await r.close();
      assert.deepEqual(got, [[{ a: 1 }]]);
    } finally {
      assert.equal(unregisterSink('capture'), true);
    }
  });

  it('nop sink counts and discards', async () => {
    const nop = createSink('nop') as NopSink;
    await nop.collect([{}, {}]);
    assert.equal(nop.received, 2);
  });
});

describe('JSON decoding', () => {
  it('accepts an object or an array of objects and explains everything else', () => {
    assert.deepEqual(decodeJson('{"a":1}'), { ok: true, rows: [{ a: 1 }] });
    assert.deepEqual(decodeJson(Buffer.from('[{"a":1},{"b":2}]')), { ok: true, rows: [{ a: 1 }, { b: 2 }] });
    const bad = ['{', '42', 'null', '[1]', '"s"'].map((t) => decodeJson(t));
    assert.ok(bad.every((r) => !r.ok));
    assert.match((bad[3] as { error: string }).error, /array element 0 is not an object/);
  });
});
