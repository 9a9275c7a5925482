/**
 * The sample plugins as files: built by `npm run build:plugins`, ELF shared objects carrying the
 * manifest note, exporting the right symbols and nothing of Node, with descriptors that match the
 * note. (Their values through the registry are tested in test/plugins.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import koffi from 'koffi';
import { samplesDir } from '../helpers/paths.js';
import { dynamicSymbols, elfType, noteInNoteSegment, parseManifest, streamplugNotes } from './elf-tools.js';

const SP_TYPE = { any: 0, bool: 1, int64: 2, float64: 3, string: 4, likeArg0: 0x100 } as const;
const SCALAR = 1;
const AGGREGATE = 2;
const STATEFUL = 1;
const LITERAL = 1;

interface ExpectedFunction {
  name: string;
  kind: number;
  flags: number;
  minArgs: number;
  maxArgs: number;
  argTypes: number[];
  argFlags: number[] | null;
  resultType: number;
  hasValidate: boolean;
}

const soSamples: { name: string; functions: ExpectedFunction[]; extraExports?: string[] }[] = [
  {
    name: 'echo',
    functions: [{ name: 'echo', kind: SCALAR, flags: 0, minArgs: 1, maxArgs: 1, argTypes: [SP_TYPE.any], argFlags: null, resultType: SP_TYPE.likeArg0, hasValidate: false }],
  },
  {
    name: 'countPlusOne',
    functions: [{ name: 'countPlusOne', kind: AGGREGATE, flags: 0, minArgs: 1, maxArgs: 1, argTypes: [SP_TYPE.any], argFlags: null, resultType: SP_TYPE.int64, hasValidate: false }],
  },
  {
    name: 'accumulateWordCount',
    functions: [{ name: 'accumulateWordCount', kind: SCALAR, flags: STATEFUL, minArgs: 2, maxArgs: 2, argTypes: [SP_TYPE.string, SP_TYPE.string], argFlags: [0, LITERAL], resultType: SP_TYPE.int64, hasValidate: true }],
  },
  {
    name: 'vector',
    functions: [{ name: 'scale', kind: SCALAR, flags: 0, minArgs: 2, maxArgs: 2, argTypes: [SP_TYPE.float64, SP_TYPE.float64], argFlags: null, resultType: SP_TYPE.float64, hasValidate: false }],
    extraExports: ['vector_scale_batch', 'vector_scale_one'],
  },
];

const expectedArch = ({ x64: 'x86_64', arm64: 'aarch64', ia32: 'ia32', arm: 'arm', riscv64: 'riscv64' } as Record<string, string>)[process.arch];
const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
const expectedLibc = report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';

// Symbols that would tie a plugin to one Node build: a `.so` plugin must need none of them.
const nodeSymbol = /^(napi_|node_api_|uv_|_ZN2v8|_ZN4node)/;

for (const sample of soSamples) {
  const file = path.join(samplesDir, `${sample.name}.so`);
  const fnNames = sample.functions.map((f) => f.name);

  test(`${sample.name}.so is a built ELF shared object`, () => {
    assert.ok(fs.existsSync(file), `${file} is missing: run npm run build:plugins`);
    assert.equal(elfType(file), 3, `${file} is not an ELF shared object (ET_DYN)`);
  });

  test(`${sample.name}.so carries one manifest note that describes it`, () => {
    const notes = streamplugNotes(file);
    assert.equal(notes.length, 1, `expected exactly one streamplug note, found ${notes.length}`);
    const m = parseManifest(notes[0]);
    assert.equal(m.contract, '1.0');
    assert.equal(m.name, sample.name);
    assert.equal(m.version, '1.0.0');
    assert.deepEqual(m.extensions.split(','), fnNames.map((n) => `function:${n}`));
    assert.equal(m.arch, expectedArch);
    assert.equal(m.libc, expectedLibc);
    assert.ok(noteInNoteSegment(file), '.note.streamplug is not mapped by a PT_NOTE segment');
  });

  test(`${sample.name}.so exports the entry point, hides the rest, needs nothing of Node`, () => {
    const syms = dynamicSymbols(file);
    const exported = syms.filter((s) => s.defined && s.bind !== 'LOCAL' && s.type === 'FUNC').map((s) => s.name).sort();
    assert.deepEqual(exported, ['streamplug_plugin_v1', ...(sample.extraExports ?? [])].sort());
    assert.deepEqual(syms.filter((s) => s.bind === 'UNIQUE').map((s) => s.name), [], 'STB_GNU_UNIQUE symbols block dlclose');
    assert.deepEqual(syms.filter((s) => !s.defined && nodeSymbol.test(s.name)).map((s) => s.name), []);
  });

  test(`${sample.name}.so descriptor matches its manifest and the contract`, () => {
    const d = readDescriptor(file);
    assert.equal(d.magic, 0x53504c47);
    assert.equal(d.contract, '1.0');
    assert.equal(d.name, sample.name);
    assert.equal(d.version, '1.0.0');
    assert.equal(d.arch, expectedArch);
    assert.ok(d.hasInit, 'every sample logs a line from init');
    assert.deepEqual(d.functions, sample.functions);
  });
}

test('vector.so exports its kernel as plain C symbols (the benchmark calls them through koffi)', () => {
  const lib = koffi.load(path.join(samplesDir, 'vector.so'));
  try {
    const one = lib.func('double vector_scale_one(double x, double k)');
    const batch = lib.func('void vector_scale_batch(void *x, double k, void *out, size_t n)');
    assert.equal(one(1.5, 4), 6);
    const x = Float64Array.from([1, -2, 0.5, 1e300]);
    const out = new Float64Array(5).fill(7);
    batch(x, 2, out, 4);
    assert.deepEqual([...out], [2, -4, 1, 2e300, 7]);
  } finally {
    lib.unload();
  }
});

test('textnode.node is a Node-API addon with the manifest note and the streamplug export shape', () => {
  const file = path.join(samplesDir, 'textnode.node');
  assert.ok(fs.existsSync(file), `${file} is missing: run npm run build:plugins`);
  assert.equal(elfType(file), 3);
  const notes = streamplugNotes(file);
  assert.equal(notes.length, 1);
  const m = parseManifest(notes[0]);
  assert.equal(m.name, 'textnode');
  assert.equal(m.extensions, 'function:reverseText');
  assert.ok(dynamicSymbols(file).some((s) => s.defined && s.name === 'napi_register_module_v1'));

  const mod = createRequire(import.meta.url)(file) as {
    streamplug: unknown;
    init(host: { log(level: number, message: string): void }): void;
    functions: { name: string; kind: string; minArgs: number; maxArgs: number; argTypes: string[]; resultType: string; call(args: unknown[], nrows: number, ctx: unknown): { type: string; values: string[]; nulls?: Uint8Array } }[];
  };
  assert.deepEqual(mod.streamplug, { contract: [1, 0], name: 'textnode', version: '1.0.0' });
  const { call, ...meta } = mod.functions[0];
  assert.deepEqual(meta, { name: 'reverseText', kind: 'scalar', minArgs: 1, maxArgs: 1, argTypes: ['string'], resultType: 'string' });

  const logged: [number, string][] = [];
  mod.init({ log: (level, message) => logged.push([level, message]) });
  assert.deepEqual(logged, [[30, 'textnode 1.0.0 ready: reverseText(s)']]);

  const out = call([{ type: 'string', values: ['abc', 'héllo', 'a😀b', '', 'skipped'], nulls: Uint8Array.from([0, 0, 0, 0, 1]) }], 5, {});
  assert.equal(out.type, 'string');
  assert.deepEqual(out.values.slice(0, 4), ['cba', 'olléh', 'b😀a', '']);
  assert.deepEqual([...(out.nulls ?? [])], [0, 0, 0, 0, 1]);
  assert.throws(() => call([{ type: 'string', values: [42] }], 1, {}), /not a string/);
});

// ---- the descriptor, read through koffi without running init ------------------------------------
const FunctionDef = koffi.struct('samples_sp_function_def', {
  size: 'uint32_t', name: 'const char *', kind: 'uint32_t', flags: 'uint32_t', min_args: 'int32_t', max_args: 'int32_t',
  arg_types: 'void *', arg_flags: 'void *', result_type: 'uint32_t', call: 'void *', validate: 'void *', close: 'void *',
});
const Descriptor = koffi.struct('samples_sp_plugin_descriptor', {
  magic: 'uint32_t', size: 'uint32_t', contract_major: 'uint16_t', contract_minor: 'uint16_t', reserved0: 'uint32_t',
  name: 'const char *', version: 'const char *', build_compiler: 'const char *', build_arch: 'const char *', build_libc: 'const char *',
  init: 'void *', deinit: 'void *', n_functions: 'size_t', functions: 'void *',
});

function readDescriptor(file: string) {
  const lib = koffi.load(file);
  try {
    const entry = lib.func('void *streamplug_plugin_v1(void)');
    const d = koffi.decode(entry(), Descriptor);
    const n = Number(d.n_functions);
    const defs = n ? (koffi.decode(d.functions, FunctionDef, n) as Record<string, any>[]) : [];
    return {
      magic: d.magic as number,
      contract: `${d.contract_major}.${d.contract_minor}`,
      name: d.name as string,
      version: d.version as string,
      arch: d.build_arch as string,
      hasInit: d.init !== null,
      functions: defs.map((f): ExpectedFunction => {
        const nargs = Math.max(f.min_args, 1);
        return {
          name: f.name,
          kind: f.kind,
          flags: f.flags,
          minArgs: f.min_args,
          maxArgs: f.max_args,
          argTypes: [...(koffi.decode(f.arg_types, 'uint32_t', nargs) as number[])],
          argFlags: f.arg_flags === null ? null : [...(koffi.decode(f.arg_flags, 'uint32_t', nargs) as number[])],
          resultType: f.result_type,
          hasValidate: f.validate !== null,
        };
      }),
    };
  } finally {
    lib.unload();
  }
}
