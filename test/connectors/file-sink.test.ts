/** File sink: exact JSON-lines and CSV content, buffering until flush/close, created folders. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createSink, createSinkRunner } from '../../src/connectors/index.js';
import type { FileSink } from '../../src/connectors/sinks/file.js';
import { tempDir } from './helpers.js';

describe('file sink', () => {
  it('writes one JSON line per row into a folder it creates, and appends across opens', async () => {
    const dir = tempDir('file');
    const file = path.join(dir, 'deep', 'er', 'out.jsonl');
    const r = createSinkRunner('file', { path: file });
    await r.open();
    await r.collect([{ a: 1, s: 'x' }, { a: 2, o: { k: [1, 2] }, big: 12345678901234567890n }]);
    await r.collect([{ a: 3 }]);
    await r.close();
    assert.equal(readFileSync(file, 'utf8'), '{"a":1,"s":"x"}\n{"a":2,"o":{"k":[1,2]},"big":12345678901234567890}\n{"a":3}\n');

    const again = createSinkRunner('file', { path: file, sendSingle: true, dataTemplate: '{{.a}}|{{.s}}' });
    await again.open();
    await again.collect([{ a: 4, s: 'y' }]);
    await again.close();
    assert.equal(readFileSync(file, 'utf8').split('\n').at(-2), '4|y');
  });

  it('buffers writes until flush or close', async () => {
    const dir = tempDir('file');
    const file = path.join(dir, 'b.jsonl');
    const sink = createSink('file', { path: file, interval: 0 }) as FileSink;
    await sink.open();
    await sink.collect([{ a: 1 }]);
    assert.equal(readFileSync(file, 'utf8'), '');
    await sink.flush();
    assert.equal(readFileSync(file, 'utf8'), '{"a":1}\n');
    await sink.collect([{ a: 2 }]);
    await sink.close();
    assert.equal(readFileSync(file, 'utf8'), '{"a":1}\n{"a":2}\n');
  });

  it('flushes as soon as bufferSize bytes wait', async () => {
    const file = path.join(tempDir('file'), 'c.jsonl');
    const sink = createSink('file', { path: file, interval: 0, bufferSize: 10 });
    await sink.open();
    await sink.collect([{ abcdefgh: 1 }]);
    assert.equal(readFileSync(file, 'utf8'), '{"abcdefgh":1}\n');
    await sink.close();
  });

  it('writes CSV with a header once, quoting as RFC 4180, in the given field order', async () => {
    const dir = tempDir('file');
    const file = path.join(dir, 'out.csv');
    const r = createSinkRunner('file', { path: file, fileType: 'csv', fields: 'id,name,tags' });
    await r.open();
    await r.collect([
      { id: 1, name: 'plain', tags: ['a'] },
      { name: 'comma, "quote"', id: 2, extra: 'dropped' },
      { id: 3, name: 'line\nbreak', tags: null },
    ]);
    await r.close();
    const r2 = createSinkRunner('file', { path: file, fileType: 'csv', fields: ['id', 'name', 'tags'] });
    await r2.open();
    await r2.collect([{ id: 4, name: 'again', tags: 'x' }]);
    await r2.close();
    assert.equal(
      readFileSync(file, 'utf8'),
      'id,name,tags\n1,plain,"[""a""]"\n2,"comma, ""quote""",\n3,"line\nbreak",\n4,again,x\n',
    );
  });

  it('CSV takes its columns from the first row when fields is not set, with another delimiter and no header', async () => {
    const file = path.join(tempDir('file'), 'd.csv');
    writeFileSync(file, '');
    const r = createSinkRunner('file', { path: file, fileType: 'csv', delimiter: ';', hasHeader: false });
    await r.open();
    await r.collect([{ x: 1, y: 'a;b' }, { y: 'c', x: 2 }]);
    await r.close();
    assert.equal(readFileSync(file, 'utf8'), '1;"a;b"\n2;c\n');
  });

  it('resolves a relative path against the data directory', async () => {
    const dataDir = tempDir('file');
    const r = createSinkRunner('file', { path: 'out/rel.jsonl' }, { dataDir });
    await r.open();
    await r.collect([{ a: 1 }]);
    await r.close();
    assert.ok(existsSync(path.join(dataDir, 'out', 'rel.jsonl')));
  });

  it('refuses missing path, unknown fileType and bad delimiter', () => {
    assert.throws(() => createSink('file', {}), { code: 'E_CONNECTOR_CONFIG' });
    assert.throws(() => createSink('file', { path: 'x', fileType: 'xml' }), { code: 'E_CONNECTOR_CONFIG' });
    assert.throws(() => createSink('file', { path: 'x', delimiter: '::' }), { code: 'E_CONNECTOR_CONFIG' });
  });
});
