/** The host addon alone: what open() refuses and why, init, memory accounting, logs, unload. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hostAddon, type PluginLogLine } from '../../src/plugins/native-addon.js';
import { buildFx, fixtureDir } from './fixtures.js';
import { HOST_CONTRACT } from '../../src/check/contract.js';

const HOST = `${HOST_CONTRACT.major}\\.${HOST_CONTRACT.minor}`;

const addon = hostAddon();

describe('host addon: open', () => {
  it('describes a valid plugin from its descriptor and the manifest note as mapped', () => {
    const lib = addon.open(buildFx('fx-describe'));
    try {
      const d = lib.describe();
      assert.equal(d.name, 'fx');
      assert.equal(d.version, '1.2.3');
      assert.deepEqual([d.contractMajor, d.contractMinor], [1, 0]);
      assert.equal(d.arch, { x64: 'x86_64', arm64: 'aarch64' }[process.arch as 'x64' | 'arm64'] ?? d.arch);
      assert.match(d.libc, /^glibc \d+\.\d+$/);
      assert.match(d.manifest, new RegExp(`^contract=1\\.0\\nheader=${HOST}\\nname=fx\\nversion=1\\.2\\.3\\nextensions=function:fx_add1,`));
      const wordcount = d.functions.find((f) => f.name === 'fx_wordcount')!;
      assert.deepEqual(wordcount.argTypes, [4, 4]);
      assert.deepEqual(wordcount.argFlags, [0, 1]);
      assert.equal(wordcount.hasValidate, true);
      assert.equal(d.functions.find((f) => f.name === 'fx_echo')!.resultType, 0x100);
    } finally {
      lib.close();
    }
  });

  const refusals: [string, string[], string, RegExp][] = [
    ['bad magic', ['FX_MAGIC=0xDEADBEEF'], 'E_BAD_MAGIC', /magic is 0xDEADBEEF, expected 0x53504C47/],
    ['contract major 2', ['FX_MAJOR=2'], 'E_CONTRACT_MAJOR', new RegExp(`built for contract 2\\.0, this host speaks ${HOST}`)],
    ['contract minor 9', ['FX_MINOR=9'], 'E_CONTRACT_MINOR', new RegExp(`needs contract 1\\.9, this host offers up to ${HOST}`)],
    ['no manifest note', ['FX_NO_MANIFEST'], 'E_NO_MANIFEST', /no streamplug manifest note/],
    ['manifest lists other functions', ['FX_EXTENSIONS="function:fx_add1"'], 'E_MANIFEST_MISMATCH', /declares extensions function:fx_add1, the descriptor provides function:fx_add1,function:fx_closes/],
    ['a function without call', ['FX_NO_CALL'], 'E_BAD_DESCRIPTOR', /function #0 \(fx_add1\): call hook is NULL/],
    ['an undefined symbol', ['FX_UNDEFINED'], 'E_UNDEFINED_SYMBOL', /undefined symbol: fx_symbol_nobody_defines/],
  ];
  for (const [what, defines, code, message] of refusals) {
    it(`refuses ${what} with ${code} and leaves nothing mapped`, () => {
      const file = buildFx(`fx-${code}-${defines.length}`, defines);
      assert.throws(() => addon.open(file), (err: Error & { code?: string }) => {
        assert.equal(err.name, 'StreamplugError');
        assert.equal(err.code, code);
        assert.match(err.message, message);
        assert.ok(err.message.includes(file), 'the message names the file');
        return true;
      });
      assert.equal(addon.isMapped(file), false);
    });
  }

  it('reports dlopen\'s own reason for a file that is not a library', () => {
    const file = path.join(fixtureDir, 'text.so');
    fs.writeFileSync(file, 'not a library\n');
    assert.throws(() => addon.open(file), { code: 'E_DLOPEN', message: /invalid ELF header|file too short/ });
  });

  it('refuses to open a path that is still mapped, and opens it again once closed', () => {
    const file = buildFx('fx-twice');
    const lib = addon.open(file);
    assert.throws(() => addon.open(file), { code: 'E_PLUGIN_LOADED', message: /still mapped/ });
    assert.deepEqual(lib.close(), { closedInstances: 0, stillMapped: false });
    addon.open(file).close();
  });
});

describe('host addon: init, memory, logs, close', () => {
  it('reports the plugin\'s reason when init fails, and deinit does not run', () => {
    const trace = path.join(fixtureDir, 'deinit-initfails.txt');
    process.env.FX_DEINIT_FILE = trace;
    const lib = addon.open(buildFx('fx-initfails', ['FX_INIT_FAILS']));
    assert.throws(() => lib.init(), {
      code: 'E_INIT_FAILED',
      message: /plugin fx refused to start: the configuration is missing/,
    });
    assert.equal(lib.isOpen, false);
    lib.close();
    assert.equal(fs.existsSync(trace), false);
  });

  it('accounts host->alloc per plugin and sees it freed by deinit', () => {
    const trace = path.join(fixtureDir, 'deinit-memory.txt');
    process.env.FX_DEINIT_FILE = trace;
    const lib = addon.open(buildFx('fx-memory'));
    assert.deepEqual(lib.memory(), { bytes: 0, blocks: 0 });
    lib.init();
    assert.deepEqual(lib.memory(), { bytes: 8, blocks: 1 }); // init's plugin_state
    lib.instance(1, 'r'); // left open: close() ends it, its close hook counts
    lib.close();
    assert.deepEqual(lib.memory(), { bytes: 0, blocks: 0 });
    assert.equal(fs.readFileSync(trace, 'utf8'), 'deinit closes=1 magic=4242');
    assert.throws(() => lib.instance(0, 'r'), { code: 'E_PLUGIN_NOT_LOADED' });
  });

  it('delivers log lines from init and from a plugin thread, in order, on the JS thread', async () => {
    const lines: PluginLogLine[] = [];
    addon.setLogSink((line) => lines.push(line));
    const lib = addon.open(buildFx('fx-log'));
    try {
      lib.init();
      const names = lib.describe().functions.map((f) => f.name);
      const instance = lib.instance(names.indexOf('fx_log_thread'), 'rule-7');
      const text = Buffer.from('hello');
      instance.call([[4, undefined, Uint32Array.of(0, 5), text, undefined, false]], 1, null, 1);
      // Delivery goes through the event loop (a thread-safe function): wait for it, not for a time.
      for (let i = 0; i < 500 && lines.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(lines, [
        { plugin: 'fx', rule: '', level: 30, message: 'fx ready' },
        { plugin: 'fx', rule: 'rule-7', level: 40, message: 'from a thread: hello' },
      ]);
    } finally {
      addon.setLogSink(null);
      lib.close();
    }
  });
});
