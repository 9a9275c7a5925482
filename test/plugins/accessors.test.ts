/**
 * plugin.h's sp_col_* accessors: with STREAMPLUG_DEBUG a column read as the wrong type fails the
 * call with a message naming the C function, the argument and both types (instead of garbage for
 * int64-as-double, or a crash for string-as-double); without it they are plain field access.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadPlugin } from '../../src/testing/index.js';
import { repoRoot } from '../helpers/paths.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamplug-accessors-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

// peek(x ANY) reads x as float64 through the accessor and returns it.
const source = `#include <streamplug/plugin.h>
static const sp_host_api *host;
static sp_status peek_call(const sp_call *call) {
  const double *x = sp_col_f64(host, call, 0);
  size_t i;
  if (!x) return SP_ERROR;
  for (i = 0; i < call->nrows; i++) ((double *)call->result->values)[i] = x[i];
  return SP_OK;
}
static sp_status peek_init(const sp_host_api *api, sp_ctx *ctx, void **data) { (void)ctx; (void)data; host = api; return SP_OK; }
static const uint32_t peek_args[] = {SP_TYPE_ANY};
static const sp_function_def peek_functions[] = {
  SP_FUNCTION_DEF("peek", SP_FUNCTION_SCALAR, 0, 1, 1, peek_args, NULL, SP_TYPE_FLOAT64, peek_call, NULL, NULL),
};
static void describe(sp_plugin_descriptor *d) { d->init = peek_init; d->functions = peek_functions; d->n_functions = 1; }
STREAMPLUG_PLUGIN("peek", "0.0.1", "function:peek", describe)
`;
fs.writeFileSync(path.join(dir, 'peek.c'), source);
function build(name: string, defines: string[]): string {
  const out = path.join(dir, `${name}.so`);
  execFileSync('cc', ['-std=c99', '-shared', '-fPIC', '-Wall', '-Wextra', '-Werror', `-I${path.join(repoRoot, 'native/include')}`, ...defines, '-o', out, path.join(dir, 'peek.c')]);
  return out;
}

describe('type-checked column accessors', () => {
  it('STREAMPLUG_DEBUG: int64 or string read as float64 fails the call, naming function, argument and types', async () => {
    const plugin = await loadPlugin(build('debug', ['-DSTREAMPLUG_DEBUG']));
    try {
      assert.equal(plugin.call('peek', 2.5), 2.5);
      assert.throws(() => plugin.call('peek', 7n), (e: Error & { code?: string }) =>
        e.code === 'E_FUNCTION_FAILED' && /peek_call: argument 1 is int64, read as float64 with sp_col_f64/.test(e.message));
      assert.throws(() => plugin.call('peek', 'hot'), /peek_call: argument 1 is string, read as float64 with sp_col_f64/);
    } finally {
      await plugin.close();
    }
  });

  it('without STREAMPLUG_DEBUG: plain field access, no check (the right type reads the same)', async () => {
    const plugin = await loadPlugin(build('release', []));
    try {
      assert.equal(plugin.call('peek', 2.5), 2.5);
      // int64 bits read as a double: no error, and not the number 7 — what the debug build catches.
      assert.notEqual(plugin.call('peek', 7n), 7);
    } finally {
      await plugin.close();
    }
  });
});
