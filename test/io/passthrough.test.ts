/**
 * The pass-through fast path: which messages may stay JSON lines (the producer-side check), encoded
 * batches from a native source, and encoded sinks writing them without a decode.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSink, createSource } from '../../src/connectors/index.js';
import type { EncodedBatch, Row } from '../../src/connectors/types.js';
import { PluginRegistry } from '../../src/plugins/index.js';
import { ioAddon, JsonLines, type NativeSinkConnector, type NativeSourceConnector } from '../../src/plugins/native-io.js';
import { samplesDir } from '../helpers/paths.js';
import { blockJs, buildIoFx, ioTmp, until } from './fixtures.js';

const registry = new PluginRegistry({ onLog: () => undefined });
before(async () => {
  await registry.load(buildIoFx());
  await registry.load(path.join(samplesDir, 'filesink.so'));
});
after(() => registry.unloadAll());

const canonical = (t: string | Uint8Array): boolean => ioAddon().canonicalJson(t);

// ---- a small seeded generator of JSON-ish texts, many of them not canonical on purpose

let state = 12345;
const rnd = (n: number): number => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return (state >>> 8) % n;
};
const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)];
const KEYS = ['a', 'b', 'temp', 'é', 'x y', '0', '12', '__proto__', '', 'a"b', 'line\nbreak', '\u0001', '😀', 'seq', 'constructor'];
const CHARS = ['a', 'Z', ' ', '"', '\\', '/', '\n', '\t', '\u0001', '\u001f', '\u007f', 'é', '€', '😀', '\u2028', '\ud800', '\udc00', 'x'];
const NUMBERS = [0, -0, 1, -1, 42, 1e15, 2 ** 53, 2 ** 60, -(2 ** 70), 0.1, 0.1 + 0.2, 23.5, -1.25, 1e-6, 1e-7, 5e-324, 1e21, 123456.789, 1 / 3];

function value(depth: number): unknown {
  switch (rnd(depth > 2 ? 4 : 6)) {
    case 0: return pick(NUMBERS);
    case 1: return Array.from({ length: rnd(4) }, () => pick(CHARS)).join('');
    case 2: return pick([true, false, null]);
    case 3: return rnd(1000) - 500;
    case 4: return Array.from({ length: rnd(3) }, () => value(depth + 1));
    default: return object(depth + 1);
  }
}

function object(depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = rnd(4); i > 0; i--) o[pick(KEYS)] = value(depth);
  return o;
}

/** Ways to write the same value that JSON.stringify would not. */
function variant(text: string): string {
  switch (rnd(8)) {
    case 0: return text;
    case 1: return text.replace(/:/, ': ');
    case 2: return text.replace(/(\d)([,}\]])/, '$1.0$2');
    case 3: return text.replace(/(\d)([,}\]])/, '$1e0$2');
    case 4: return text.replace(/"a"/, '"\\u0061"');
    case 5: return text.replace(/^\{"([^"]*)":([^,}]*)/, '{"$1":$2,"$1":$2');
    case 6: return text.replace(/\\u00([0-9a-f]{2})/, (_, h: string) => `\\u00${h.toUpperCase()}`);
    default: return text.replace('/', '\\/');
  }
}

describe('canonical JSON check (which messages stay JSON lines)', () => {
  it('never accepts a text that JSON.stringify(JSON.parse(text)) or SELECT * would change', () => {
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const text = variant(JSON.stringify(object(0)));
      if (!canonical(text)) continue;
      accepted++;
      const parsed = JSON.parse(text) as Row;
      assert.ok(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), text);
      assert.equal(JSON.stringify(parsed), text);
      assert.equal(JSON.stringify(Object.assign({}, parsed)), text, 'the engine projects SELECT * with Object.assign');
    }
    assert.ok(accepted > 2000, `only ${accepted} of 20,000 texts were accepted: the check is too strict to matter`);
  });

  it('accepts what JSON.stringify writes for usual rows', () => {
    for (const row of [
      { count: 57, pad: 'xxxxxxxx' },
      { t: 23.5, id: -12, ok: true, none: null, tags: ['a', 'b'], nested: { k: [1, { z: 0.001 }] } },
      { s: 'é€😀 \u2028 \u007f / " \\ \n \t \u0001' },
      { big: 123456789012345, frac: 0.30000000000000004, small: 0.000001 },
      {},
    ]) {
      assert.ok(canonical(JSON.stringify(row)), JSON.stringify(row));
    }
  });

  it('refuses texts that decode to something else or re-encode differently', () => {
    for (const text of [
      '{"a": 1}', ' {"a":1}', '{"a":1}\n', '{"a":1.0}', '{"a":1e3}', '{"a":-0}', '{"a":1E2}', '{"a":1.50}',
      '{"a":1234567890123456}', '{"a":1e-7}', '{"a":0.0000001}', '{"\\u0061":1}', '{"a":"\\/"}', '{"a":"\\u001F"}',
      '{"a":"\\u0020"}', '{"a":"\\ud83d\\ude00"}', '{"a":1,"a":2}', '{"0":1}', '{"b":1,"12":2}', '{"__proto__":{}}',
      '[{"a":1}]', '{"a":1}{"a":2}', 'oops', '{"a":tru}', '{"a":"x', '{"a":01}', '{"a":+1}', '{"a":.5}', '{"a":"\t"}',
    ]) {
      assert.equal(canonical(text), false, text);
    }
    assert.equal(canonical(Buffer.from('{"a":"\xff"}', 'latin1')), false, 'invalid UTF-8');
    assert.equal(canonical(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])), false, 'a UTF-8 encoded surrogate');
    assert.equal(canonical(Buffer.from('{"a":"\xc0\xaf"}', 'latin1')), false, 'an overlong sequence');
  });
});

function messagesFile(messages: string[]): string {
  const file = path.join(ioTmp, `messages-${Date.now()}-${rnd(1e6)}.bin`);
  fs.writeFileSync(file, messages.join('\x1e'));
  return file;
}

describe('native source: encoded batches', () => {
  it('canonical messages arrive as JSON lines, the others as rows, in order, with exact counters', async () => {
    const messages = [
      '{"seq":0,"v":1}', '{"seq":1,"v":2}', '{"seq": 2, "v": 3}', '{"seq":3,"v":4}', '[{"seq":4},{"seq":5}]', 'oops',
      '{"seq":6,\n "v":7}', '{"seq":7,"v":1.50}', '{"seq":8,"v":"é"}', '{"seq":9,"v":"\\u00e9"}', '{"seq":10}',
    ];
    const src = createSource('fx_file', '', { CONFIG: JSON.stringify({ path: messagesFile(messages) }) }) as NativeSourceConnector;
    const got: { encoded: boolean; rows: Row[] }[] = [];
    const lines: string[] = [];
    const started = src.start(
      (rows) => got.push({ encoded: false, rows }),
      () => undefined,
      (batch: EncodedBatch) => {
        lines.push(Buffer.from(batch.lines).toString('utf8'));
        got.push({ encoded: true, rows: batch.rows() });
      },
    );
    blockJs(300); // every message is queued (open pushes them) before JS drains: one drain, whole runs
    await started;
    await until(() => src.metrics().messagesIn === messages.length, 'every message');
    await src.stop();
    const all = got.flatMap((g) => g.rows);
    assert.deepEqual(all.map((r) => r.seq), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(all[9], { seq: 9, v: 'é' });
    assert.equal(lines.join(''), '{"seq":0,"v":1}\n{"seq":1,"v":2}\n{"seq":3,"v":4}\n{"seq":8,"v":"é"}\n{"seq":10}\n');
    assert.deepEqual(got.map((g) => g.encoded), [true, false, true, false, true, false, true]);
    const m = src.metrics();
    assert.deepEqual([m.messagesIn, m.rowsOut, m.decodeErrors], [11, 11, 1]);
    assert.deepEqual([m.native!.in, m.native!.out, m.native!.dropped], [11, 11, 0]);
  });

  it('without an encoded consumer the same messages arrive as rows, as before', async () => {
    const src = createSource('fx_seq', '', { CONFIG: JSON.stringify({ count: 3000 }), BATCH_SIZE: '100' }) as NativeSourceConnector;
    const rows: Row[] = [];
    await src.start((r) => rows.push(...r), () => undefined);
    await until(() => rows.length >= 3000, 'rows');
    await src.stop();
    assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: 3000 }, (_, i) => i));
  });

  it('FORMAT binary keeps every message raw', async () => {
    const src = createSource('fx_seq', '', { CONFIG: JSON.stringify({ count: 2 }), FORMAT: 'binary' }) as NativeSourceConnector;
    const rows: Row[] = [];
    let encoded = 0;
    await src.start((r) => rows.push(...r), () => undefined, () => encoded++);
    await until(() => rows.length >= 2, 'rows');
    await src.stop();
    assert.equal(encoded, 0);
    assert.equal(Buffer.from(rows[1].self as Uint8Array).toString(), '{"seq":1}');
  });
});

describe('encoded sink: collectEncoded', () => {
  it('writes a source\'s batches byte for byte (shared, not copied) and counts every row', async () => {
    const file = path.join(ioTmp, 'pass.jsonl');
    const sink = createSink('filesink', { path: file }) as NativeSinkConnector;
    await sink.open();
    assert.equal(typeof sink.collectEncoded, 'function');
    const src = createSource('fx_seq', '', { CONFIG: JSON.stringify({ count: 5000 }), BATCH_SIZE: '300' }) as NativeSourceConnector;
    let n = 0;
    let pending = Promise.resolve();
    await src.start(() => assert.fail('no rows expected'), () => undefined, (b) => {
      n += b.count;
      pending = pending.then(() => sink.collectEncoded!(b));
    });
    await until(() => n >= 5000, 'all batches');
    await pending;
    await src.stop();
    await sink.close();
    const expected = Array.from({ length: 5000 }, (_, i) => `{"seq":${i}}\n`).join('');
    assert.equal(fs.readFileSync(file, 'utf8'), expected);
    const s = sink.stats()!;
    assert.deepEqual([s.in, s.out, s.dropped, s.errors], [5000, 5000, 0, 0]);
  });

  it('takes JSON lines from anywhere (copied) and refuses a wrong row count', async () => {
    const file = path.join(ioTmp, 'lines.jsonl');
    const sink = createSink('filesink', { path: file }) as NativeSinkConnector;
    await sink.open();
    await sink.collectEncoded!(new JsonLines(Buffer.from('{"a":1}\n{"b":"é"}\n'), 2));
    await assert.rejects(sink.collectEncoded!(new JsonLines(Buffer.from('{"a":1}\n'), 2)), { code: 'E_INTERNAL', message: /1 newline-terminated rows, expected 2/ });
    await sink.close();
    assert.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n{"b":"é"}\n');
  });

  it('a typed sink has no collectEncoded', () => {
    const sink = createSink('fx_typed', { path: path.join(ioTmp, 'typed.txt') }) as NativeSinkConnector;
    assert.equal(sink.collectEncoded, undefined);
  });

  it('JsonLines.rows() decodes once, whatever the lines hold', () => {
    const b = new JsonLines(Buffer.from('{"a":1,"s":"x,y"}\n{"b":[1,2]}\n'), 2);
    const rows = b.rows();
    assert.deepEqual(rows, [{ a: 1, s: 'x,y' }, { b: [1, 2] }]);
    assert.equal(b.rows(), rows);
  });
});
