/**
 * The sample plugins: random (C source), filesink (C++ sink), jsonlines (.node sink), and their
 * registration — in both isolation modes: random and filesink in this process, and in a worker
 * process of their own (src/plugins/isolated/io.ts). jsonlines is a .node addon: in-process only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ISOLATION_MODES } from '../helpers/isolation.js';
import { createSink, createSource, sinkTypes, sourceTypes } from '../../src/connectors/index.js';
import type { Row } from '../../src/connectors/types.js';
import { PluginRegistry } from '../../src/plugins/index.js';
import type { NativeSinkConnector, NativeSourceConnector } from '../../src/plugins/native-io.js';
import { samplesDir } from '../helpers/paths.js';
import { ioTmp, until } from './fixtures.js';


async function take(src: NativeSourceConnector, n: number): Promise<Row[]> {
  const rows: Row[] = [];
  await src.start((r) => rows.push(...r), () => undefined);
  await until(() => rows.length >= n, `${n} rows`);
  await src.stop();
  return rows;
}

for (const mode of ISOLATION_MODES) describe(`sample sources and sinks, isolation ${mode}`, () => {
  const registry = new PluginRegistry({ onLog: () => undefined });
  before(async () => {
    for (const f of ['random.so', 'filesink.so']) await registry.load(path.join(samplesDir, f), { isolation: mode });
    await registry.load(path.join(samplesDir, 'jsonlines.node'));
  });
  after(() => registry.unloadAll());

  it('registers sources and sinks under their names, and unregisters them on unload', async () => {
    assert.ok(sourceTypes().includes('random'));
    assert.ok(sinkTypes().includes('filesink') && sinkTypes().includes('jsonlines'));
    assert.deepEqual(registry.connectors('random'), { sources: ['random'], sinks: [] });
    assert.equal(registry.get('random')?.isolation, mode);
    // Isolated: the source runs in a worker process of its own, not in this one.
    assert.equal(typeof registry.status('random')?.worker?.pid, mode === 'process' ? 'number' : 'undefined');
    const r = new PluginRegistry({ onLog: () => undefined });
    // In-process the library is open already; from a worker its source names are taken.
    await assert.rejects(() => r.load(path.join(samplesDir, 'random.so'), { isolation: mode }), { code: mode === 'process' ? 'E_CONFLICT' : 'E_PLUGIN_LOADED' });
  });

  it('random: eKuiper semantics, seed 1 gives the pattern itself', async () => {
    const src = createSource('random', '', { INTERVAL: '5', SEED: '1' }) as NativeSourceConnector;
    const rows = await take(src, 3);
    assert.deepEqual(rows.slice(0, 3), [{ count: 50 }, { count: 50 }, { count: 50 }]);
  });

  it('random: values in [pattern, pattern + seed), structured rows mode', async () => {
    const src = createSource('random', '', { CONFIG: JSON.stringify({ burst: true, mode: 'rows', seed: 10, pattern: { a: 100, b: -5 }, sequence: true }) }) as NativeSourceConnector;
    const rows = await take(src, 1000);
    rows.forEach((r, i) => {
      assert.equal(r.seq, i);
      assert.ok((r.a as number) >= 100 && (r.a as number) < 110 && (r.b as number) >= -5 && (r.b as number) < 5);
    });
  });

  it('random: deduplicate drops repeats of the last N rows', async () => {
    const src = createSource('random', '', { CONFIG: JSON.stringify({ burst: true, seed: 3, deduplicate: 3, count: 3, pattern: { v: 0 } }) }) as NativeSourceConnector;
    const rows = await take(src, 3);
    assert.deepEqual(rows.map((r) => r.v).sort(), [0, 1, 2]);
  });

  it('random: a bad config is refused with the reason', () => {
    assert.throws(() => createSource('random', '', { INTERVAL: '0' }), { code: 'E_CONNECTOR_CONFIG', message: /random: interval must be > 0/ });
    assert.throws(() => createSource('random', '', { CONFIG: '{"pattern": {"a": "x"}}' }), { message: /pattern\.a is not an integer/ });
  });

  it('filesink: survives its directory being removed (error reported, retried), flushes on close', async () => {
    const dir = path.join(ioTmp, `fs-dir-${mode}`);
    fs.mkdirSync(dir);
    const file = path.join(dir, 'out.jsonl');
    const sink = createSink('filesink', { path: file, bufferBytes: 0, retryBackoff: 10, maxBackoff: 20, maxRetries: -1 }) as NativeSinkConnector;
    await sink.open();
    await sink.collect([{ n: 1 }]);
    await until(() => sink.stats()!.out === 1, 'first batch');
    fs.rmSync(dir, { recursive: true });
    await sink.collect([{ n: 2 }, { n: 3 }]);
    await until(() => sink.stats()!.errors > 0, 'the error to be reported');
    assert.equal(sink.status().state, 'reconnecting');
    assert.match(sink.stats()!.lastError, /filesink: cannot open .*out\.jsonl: No such file or directory/);
    fs.mkdirSync(dir);
    await sink.close();
    assert.equal(fs.readFileSync(file, 'utf8'), '{"n":2}\n{"n":3}\n');
    assert.equal(sink.stats()!.out, 3);
  });

  it('filesink: buffered rows reach the file at close', async () => {
    const file = path.join(ioTmp, `buffered-${mode}.jsonl`);
    const sink = createSink('filesink', { path: file }) as NativeSinkConnector;
    await sink.open();
    await sink.collect([{ a: 1 }, { a: 2 }]);
    await until(() => sink.stats()!.out === 2, 'ack');
    assert.equal(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '', '', 'still in the buffer');
    await sink.close();
    assert.equal(fs.readFileSync(file, 'utf8'), '{"a":1}\n{"a":2}\n');
  });

  it('jsonlines (.node): writes rows as JSON lines', { skip: mode === 'process' && '.node plugins run in-process only' }, async () => {
    const file = path.join(ioTmp, 'node.jsonl');
    const sink = createSink('jsonlines', { path: file });
    await sink.open();
    await sink.collect([{ x: 'é' }, { y: [1, 2] }]);
    await sink.close();
    assert.equal(fs.readFileSync(file, 'utf8'), '{"x":"é"}\n{"y":[1,2]}\n');
    assert.throws(() => createSink('jsonlines', {}), { code: 'E_CONNECTOR_CONFIG', message: /jsonlines: config has no path/ });
  });
});
