/**
 * Contract 1.3 config_* routines: a plugin built from plugin.h in the setup reads typed keys of its
 * instance's config through the host; a key of the wrong type fails validate/open with a message
 * naming the key, the expected and the found type, even when the plugin ignores the error.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSink, createSource } from '../../src/connectors/index.js';
import type { Row } from '../../src/connectors/types.js';
import { PluginRegistry } from '../../src/plugins/index.js';
import type { PluginLogLine } from '../../src/plugins/native-addon.js';
import type { NativeSinkConnector, NativeSourceConnector } from '../../src/plugins/native-io.js';
import { repoRoot, samplesDir } from '../helpers/paths.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-config-test-'));
const logs: PluginLogLine[] = [];
const registry = new PluginRegistry({ onLog: (l) => logs.push(l) });

before(async () => {
  const file = path.join(work, 'configfx.so');
  execFileSync('cc', ['-shared', '-fPIC', '-O1', '-pthread', '-std=c99', '-Wall', '-Wextra', '-Werror',
    `-I${path.join(repoRoot, 'native/include')}`, path.join(repoRoot, 'test/config/fixtures/configfx.c'), '-o', file], { stdio: 'pipe' });
  await registry.load(file);
  await registry.load(path.join(samplesDir, 'random.so'));
  await registry.load(path.join(samplesDir, 'filesink.so'));
});
after(() => {
  registry.unloadAll();
  fs.rmSync(work, { recursive: true, force: true });
});

const until = async (cond: () => boolean, what: string, ms = 10000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** Starts cfx_src with CONFIG = config and returns the one row it emits. */
async function readBack(config: Record<string, unknown>): Promise<Row> {
  const src = createSource('cfx_src', '', { CONFIG: JSON.stringify(config) }) as NativeSourceConnector;
  const rows: Row[] = [];
  await src.start((r) => rows.push(...r), () => undefined);
  await until(() => rows.length >= 1, 'the row');
  await src.stop();
  return rows[0];
}

describe('config_* host routines (contract 1.3)', () => {
  it('absent keys and JSON null give the defaults', async () => {
    assert.deepEqual(await readBack({}), { s: 'dflt', slen: 4, i: '-1', d: 0.5, b: true, j: null });
    assert.deepEqual(await readBack({ s: null, i: null, d: null, b: null, j: null }), { s: 'dflt', slen: 4, i: '-1', d: 0.5, b: true, j: null });
  });

  it('reads strings (escapes, non-ASCII, an embedded NUL), large int64, doubles, booleans and raw JSON', async () => {
    const text = 'a"b\\c\u00e9\u{1F600}\u0000z';
    const row = await readBack({ s: text, i: 2 ** 53 + 2, d: 2, b: false, j: { k: [1, 'x', { y: null }] } });
    assert.deepEqual(row, { s: text, slen: Buffer.byteLength(text), i: '9007199254740994', d: 2, b: false, j: '{"k":[1,"x",{"y":null}]}' });
    assert.equal((await readBack({ i: -(2 ** 53) + 1, d: -1.25e-3 })).i, '-9007199254740991');
    assert.equal((await readBack({ d: -1.25e-3 })).d, -1.25e-3);
    assert.equal((await readBack({ j: [] })).j, '[]');
    assert.equal((await readBack({ j: 'text' })).j, '"text"', 'config_json gives any value as its JSON text');
  });

  for (const [config, pattern] of [
    [{ i: 'fast' }, /config key "i": expected an integer \(int64\), found string "fast"/],
    [{ i: 3.5 }, /config key "i": expected an integer \(int64\), found number 3\.5/],
    [{ i: 1e300 }, /config key "i": expected an integer \(int64\), found number 1e\+300/],
    [{ i: true }, /config key "i": expected an integer \(int64\), found boolean true/],
    [{ s: 42 }, /config key "s": expected a string, found number 42/],
    [{ s: { a: 1 } }, /config key "s": expected a string, found object \{"a":1\}/],
    [{ d: '1.5' }, /config key "d": expected a number, found string "1\.5"/],
    [{ b: 'yes' }, /config key "b": expected a boolean \(true or false\), found string "yes"/],
    [{ b: 1 }, /config key "b": expected a boolean \(true or false\), found number 1/],
  ] as const) {
    it(`a wrong type fails open naming the key, even though open returned SP_OK: ${JSON.stringify(config)}`, async () => {
      logs.length = 0;
      const src = createSource('cfx_src', '', { CONFIG: JSON.stringify(config) }) as NativeSourceConnector;
      await assert.rejects(src.start(() => undefined, () => undefined), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_SOURCE_FAILED');
        assert.match(err.message, /source cfx_src \(plugin configfx\) open failed: /);
        assert.match(err.message, pattern);
        return true;
      });
      await src.stop().catch(() => undefined);
      await until(() => logs.some((l) => l.message === 'cfx_src closed'), 'the close hook (open had succeeded)');
    });
  }

  it('an integer outside int64 is named as such', async () => {
    const src = createSource('cfx_src', '', { CONFIG: '{"i": 1e19}' }) as NativeSourceConnector;
    await assert.rejects(src.start(() => undefined, () => undefined), { message: /config key "i": expected an integer \(int64\), found number 10000000000000000000 \(outside int64\)/ });
    await src.stop().catch(() => undefined);
  });

  it('validate: a wrong type refuses the configuration (E_CONNECTOR_CONFIG) even when the hook returns SP_OK', () => {
    assert.throws(() => createSink('cfx_sink', { n: 'ten' }), {
      code: 'E_CONNECTOR_CONFIG',
      message: /sink cfx_sink \(plugin configfx\) refused its configuration: config key "n": expected an integer \(int64\), found string "ten"/,
    });
    assert.throws(() => createSink('cfx_sink', { name: ['a'] }), { message: /config key "name": expected a string, found array \["a"\]/ });
    assert.throws(() => createSink('cfx_sink', { n: 10.5 }), { message: /config key "n": expected an integer \(int64\), found number 10\.5/ });
    assert.ok(createSink('cfx_sink', { n: 3, name: 'x', other: { deep: [[[]]] } }), 'right types and unknown keys pass');
  });

  it('a long value is shortened in the message', () => {
    assert.throws(() => createSink('cfx_sink', { n: 'x'.repeat(500) }), (err: Error) => {
      assert.match(err.message, /found string "x{39}…/);
      assert.ok(err.message.length < 400, err.message);
      return true;
    });
  });

  it('a function ctx has no configuration: every key gives its default', () => {
    const fn = registry.getFunction('cfx_fn')!;
    const inst = fn.instantiate('r1');
    try {
      assert.equal(inst.call(), 7n);
    } finally {
      inst.close();
    }
  });

  it('samples: random and filesink read their config through the host; a wrong type names the key', async () => {
    assert.throws(() => createSource('random', '', { CONFIG: JSON.stringify({ interval: 'fast' }) }), {
      code: 'E_CONNECTOR_CONFIG',
      message: /source random \(plugin random\) refused its configuration: config key "interval": expected an integer \(int64\), found string "fast"/,
    });
    assert.throws(() => createSource('random', '', { CONFIG: JSON.stringify({ burst: 'yes' }) }), { message: /config key "burst": expected a boolean/ });
    assert.throws(() => createSink('filesink', { path: path.join(work, 'x.jsonl'), bufferBytes: 'big' }), {
      code: 'E_CONNECTOR_CONFIG',
      message: /sink filesink \(plugin filesink\) refused its configuration: config key "bufferBytes": expected an integer \(int64\), found string "big"/,
    });
    assert.throws(() => createSink('filesink', { path: 7 }), { message: /config key "path": expected a string, found number 7/ });
    const out = path.join(work, 'é "quoted".jsonl');
    const sink = createSink('filesink', { path: out, bufferBytes: 0 }) as NativeSinkConnector;
    await sink.open();
    await sink.collect([{ a: 1 }]);
    await sink.close();
    assert.equal(fs.readFileSync(out, 'utf8'), '{"a":1}\n', 'the escaped path string reached the sink decoded');
  });
});
