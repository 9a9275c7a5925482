/**
 * Plugin functions through a FunctionResolver whose functions are plain JS implementations of the
 * PluginFunction interface (the native ones are exercised end to end elsewhere).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamplugError } from '../../src/errors.js';
import type { ArgInfo, BatchFrame, Column, FunctionInstance, PluginFunction, ValueType, ResultType } from '../../src/plugins/types.js';
import type { FunctionResolver } from '../../src/engine/index.js';
import { rule } from './harness.js';

interface Calls {
  batch: number[]; // nrows of each callBatch
  groups: number[][]; // offsets of each callGroups
  instances: number;
  closed: number;
}

function fn(
  name: string,
  kind: 'scalar' | 'aggregate',
  argTypes: ValueType[],
  resultType: ResultType,
  impl: (state: Record<string, number>, args: readonly Column[], nrows: number, offsets?: Uint32Array) => Column,
  calls: Calls,
  literalArgs: boolean[] = argTypes.map(() => false),
): PluginFunction {
  return {
    name, plugin: 'jsplug', kind, minArgs: argTypes.length, maxArgs: argTypes.length, argTypes, literalArgs, resultType, stateful: true,
    validate(args: readonly ArgInfo[]) {
      if (args.length !== argTypes.length)
        throw new StreamplugError('E_ARITY', `${name} takes ${argTypes.length} argument(s) but was given ${args.length}`, { function: name });
      args.forEach((a, i) => {
        if (literalArgs[i] && a.literal === undefined)
          throw new StreamplugError('E_ARG_LITERAL', `argument ${i + 1} of ${name} must be a literal`, { function: name });
        if (literalArgs[i] && argTypes[i] === 'string' && typeof a.literal !== 'string')
          throw new StreamplugError('E_ARG_TYPE', `argument ${i + 1} of ${name} must be a string`, { function: name });
      });
    },
    instantiate(): FunctionInstance {
      calls.instances++;
      const state: Record<string, number> = {};
      return {
        callBatch(args, nrows) {
          calls.batch.push(nrows);
          return impl(state, args, nrows);
        },
        callGroups(args, nrows, offsets) {
          calls.groups.push([...offsets]);
          return impl(state, args, nrows, offsets);
        },
        call() {
          throw new Error('the engine must not use the per-row path');
        },
        prepare(): BatchFrame {
          throw new Error('not used');
        },
        close() {
          calls.closed++;
        },
      };
    },
  };
}

function resolver() {
  const calls: Calls = { batch: [], groups: [], instances: 0, closed: 0 };
  const fns = new Map<string, PluginFunction>();
  fns.set('echo', fn('echo', 'scalar', ['any'], 'like-arg0', (_s, args) => args[0], calls));
  fns.set('countPlusOne', fn('countPlusOne', 'aggregate', ['any'], 'int64', (_s, _a, _n, offs) => {
    const g = offs!.length - 1;
    const out = new BigInt64Array(g);
    for (let i = 0; i < g; i++) out[i] = BigInt(offs![i + 1] - offs![i] + 1);
    return { type: 'int64', values: out };
  }, calls));
  fns.set('accumulateWordCount', fn('accumulateWordCount', 'scalar', ['string', 'string'], 'int64', (state, args, n) => {
    const col = args[0] as Extract<Column, { type: 'string' }>;
    const sep = (args[1] as Extract<Column, { type: 'string' }>).values[0];
    const out = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      state.allwordcount = (state.allwordcount ?? 0) + col.values[i].split(sep).length;
      out[i] = BigInt(state.allwordcount);
    }
    return { type: 'int64', values: out };
  }, calls, [false, true]));
  fns.set('half', fn('half', 'scalar', ['float64'], 'float64', (_s, args, n) => {
    const a = args[0] as Extract<Column, { type: 'float64' }>;
    const out = new Float64Array(n);
    const nulls = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      if (a.nulls?.[i]) nulls[i] = 1;
      else out[i] = a.values[i] / 2;
    }
    return { type: 'float64', values: out, nulls };
  }, calls));
  fns.set('boom', fn('boom', 'scalar', ['any'], 'int64', () => {
    throw new StreamplugError('E_FUNCTION_FAILED', 'boom failed on purpose', {});
  }, calls));
  const r: FunctionResolver = { getFunction: (name) => fns.get(name) };
  return { r, calls };
}

test('a scalar plugin function is called once per batch, never per row', () => {
  const { r, calls } = resolver();
  const h = rule('SELECT echo(count) AS e, half(count) AS h FROM demo WHERE count > 49', r);
  h.rule.push([{ count: 50 }, { count: 10 }, { count: 51 }, { count: 52 }], 1);
  h.rule.push([{ count: 60 }], 2);
  assert.deepEqual(h.results, [[{ e: 50, h: 25 }, { e: 51, h: 25.5 }, { e: 52, h: 26 }], [{ e: 60, h: 30 }]]);
  // two call sites x two batches; each call carries the whole filtered batch
  assert.deepEqual(calls.batch, [3, 3, 1, 1]);
  assert.equal(calls.instances, 2);
});

test('nulls cross into the plugin as a null mask and come back as null', () => {
  const { r } = resolver();
  const h = rule('SELECT half(v) AS h FROM demo', r);
  h.rule.push([{ v: 4 }, { v: null }, {}], 1);
  assert.deepEqual(h.results, [[{ h: 2 }, {}, {}]]); // a null result is left out of the row, as eKuiper does
});

test('an aggregate plugin function is called once per window with the group offsets', () => {
  const { r, calls } = resolver();
  const h = rule('SELECT k, countPlusOne(v) AS c FROM demo GROUP BY k, TUMBLINGWINDOW(ss, 1) ORDER BY k', r);
  h.rule.push([{ k: 'a', v: 1 }, { k: 'b', v: 2 }, { k: 'a', v: 3 }, { k: 'a', v: 4 }], 10);
  h.rule.tick(1000);
  h.rule.push([{ k: 'z', v: 1 }], 1500);
  h.rule.tick(2000);
  assert.deepEqual(h.results, [[{ k: 'a', c: 4 }, { k: 'b', c: 2 }], [{ k: 'z', c: 2 }]]);
  assert.deepEqual(calls.groups, [[0, 3, 4], [0, 1]]);
  assert.deepEqual(calls.batch, []);
});

test('accumulateWordCount keeps per-rule state across batches (eKuiper expectations)', () => {
  const { r } = resolver();
  const inputs = ['john,alice,tom', 'rose,bob,mary', 'alice,tom', 'john,alice,tom,rose,bob,mary,alice,tom', 'rose,bob,mary,alice', 'tom,john,alice,tom,rose', 'bob,mary', 'alice,tom,rose'];
  const h = rule('SELECT accumulateWordCount(words, ",") AS wc FROM demo', r);
  h.rule.push(inputs.slice(0, 3).map((words) => ({ words })), 1);
  h.rule.push(inputs.slice(3).map((words) => ({ words })), 2);
  assert.deepEqual(h.results.flat().map((x) => x.wc), [3, 6, 8, 16, 20, 25, 27, 30]);
  // a second rule gets its own instance and so its own counter
  const h2 = rule('SELECT accumulateWordCount(words, ",") AS wc FROM demo', r);
  h2.rule.push([{ words: 'a,b' }], 1);
  assert.deepEqual(h2.results, [[{ wc: 2 }]]);
});

test('compile-time checks: unknown function, arity, literal arguments', () => {
  const { r, calls } = resolver();
  assert.throws(() => rule('SELECT nope(a) FROM demo', r), (e: any) => e.code === 'E_UNKNOWN_FUNCTION' && /unknown function nope/.test(e.message) && e.details.function === 'nope');
  assert.throws(() => rule('SELECT echo(a, b) FROM demo', r), (e: any) => e.code === 'E_ARITY');
  assert.throws(() => rule('SELECT accumulateWordCount(words, sep) FROM demo', r), (e: any) => e.code === 'E_ARG_LITERAL');
  assert.throws(() => rule('SELECT accumulateWordCount(words, 1) FROM demo', r), (e: any) => e.code === 'E_ARG_TYPE');
  assert.throws(() => rule('SELECT countPlusOne(v) FROM demo WHERE countPlusOne(v) > 1', r), (e: any) => e.code === 'E_SQL_SEMANTIC');
  // an echo instance created before a later failure in the same rule is closed again
  const before = calls.instances;
  assert.throws(() => rule('SELECT echo(a) AS x, nope(b) FROM demo', r), (e: any) => e.code === 'E_UNKNOWN_FUNCTION');
  assert.equal(calls.instances - before, 1);
  assert.equal(calls.closed, 1);
});

test('closing the rule closes its instances; a plugin failure is counted, not thrown', () => {
  const { r, calls } = resolver();
  const h = rule('SELECT boom(a) AS b, echo(a) AS e FROM demo', r);
  h.rule.push([{ a: 1 }], 1);
  assert.deepEqual(h.results, []);
  assert.equal(h.errors[0].code, 'E_FUNCTION_FAILED');
  assert.equal(h.rule.metrics().find((m) => m.name === 'project')!.exceptions, 1);
  h.rule.close();
  assert.equal(calls.closed, 2);
});
