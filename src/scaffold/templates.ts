/**
 * The files `streamplug new NAME --kind K --lang L` writes: a plugin source, a build (CMake through
 * find_package(streamplug), or npm + cmake-js for `node`), a node:test file on streamplug/testing and
 * a README of three commands. Each template is the smallest correct plugin of its kind; the
 * comments point at what the author replaces.
 */
import { sdk } from './sdk.js';

export type Kind = 'function' | 'source' | 'sink';
export type Lang = 'c' | 'cpp' | 'node';
export type Files = Record<string, string>;

const cmakeFind = (name: string) => `# Finds the streamplug SDK without copying it: -Dstreamplug_DIR=..., else \`streamplug sdk --cmake-dir\`,
# else the streamplug that generated this project.
if(NOT streamplug_DIR)
  execute_process(COMMAND streamplug sdk --cmake-dir OUTPUT_VARIABLE _sp_dir
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _sp_rc)
  if(_sp_rc EQUAL 0 AND EXISTS "\${_sp_dir}/streamplugConfig.cmake")
    set(streamplug_DIR "\${_sp_dir}")
  endif()
endif()
find_package(streamplug 1 REQUIRED CONFIG HINTS "${sdk.cmakeDir}")

# Debug builds keep symbols and frame pointers for gdb: cmake -B build -DCMAKE_BUILD_TYPE=Debug
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE RelWithDebInfo)
endif()
`;

function cmakeLists(name: string, source: string): string {
  return `cmake_minimum_required(VERSION 3.16)
project(${name} LANGUAGES C CXX)

${cmakeFind(name)}
# ${name}.so in build/plugins/: hidden visibility, warnings as errors, nothing of Node linked in.
streamplug_add_plugin(NAME ${name} SOURCES ${source})
`;
}

const functionC = (name: string) => `/*
 * ${name}(x): returns its argument unchanged. A placeholder: replace the loop in ${name}_call with
 * your computation. The contract is streamplug/plugin.h (read its comments); the host calls
 * ${name}_call with a batch of rows, columnar, and ${name}_call fills one result per row.
 */
#include <streamplug/plugin.h>
#include <string.h>

static const sp_host_api *host; /* the host's routines (log, set_error, state, ...), set in init */

static sp_status ${name}_call(const sp_call *call) {
  const sp_column *x = &call->args[0];
  /* sp_col_f64: x's values as doubles. The Debug build checks the column really is FLOAT64 and
   * fails the call with a clear message otherwise (here the host converts to the declared type). */
  const double *in = sp_col_f64(host, call, 0);
  double *out = (double *)call->result->values;
  size_t i;

  if (!in) return SP_ERROR;
  for (i = 0; i < call->nrows; i++) {
    if (x->nulls && x->nulls[i]) {          /* null in, null out */
      call->result->nulls[i] = 1;
      continue;
    }
    out[i] = in[i];                         /* <- your computation */
  }
  /* To fail the whole batch: host->set_error(call->ctx, "what was wrong"); return SP_ERROR; */
  return SP_OK;
}

static sp_status ${name}_init(const sp_host_api *api, sp_ctx *ctx, void **plugin_data) {
  (void)plugin_data;
  host = api;
  host->log(ctx, SP_LOG_INFO, "${name} ready");
  return SP_OK;
}

static const uint32_t ${name}_args[] = {SP_TYPE_FLOAT64};

static const sp_function_def ${name}_functions[] = {
  /* SQL name, kind, flags, min and max arguments, argument types, argument flags, result type,
   * call, validate (optional), close (optional) */
  SP_FUNCTION_DEF("${name}", SP_FUNCTION_SCALAR, 0, 1, 1, ${name}_args, NULL, SP_TYPE_FLOAT64,
                  ${name}_call, NULL, NULL),
};

static void describe(sp_plugin_descriptor *d) {
  d->init = ${name}_init;
  d->functions = ${name}_functions;
  d->n_functions = sizeof ${name}_functions / sizeof ${name}_functions[0];
}

/* Plugin name, version, what it provides (checked against the descriptor at load), describe. */
STREAMPLUG_PLUGIN("${name}", "0.1.0", "function:${name}", describe)
`;

const functionCpp = (name: string) => `/*
 * ${name}(x): returns its argument unchanged. A placeholder: replace the loop in call() with your
 * computation. The contract is streamplug/plugin.h (C ABI; C++ is fine inside). Exceptions must
 * not cross into the host: catch them and report with set_error.
 */
#include <streamplug/plugin.h>
#include <exception>

namespace {

const sp_host_api *host = nullptr;  // the host's routines, set in init

sp_status call(const sp_call *c) noexcept {
  try {
    const sp_column &x = c->args[0];  // declared FLOAT64 below: the host converts to it
    const auto *in = static_cast<const double *>(x.values);
    auto *out = static_cast<double *>(c->result->values);
    for (size_t i = 0; i < c->nrows; ++i) {
      if (x.nulls && x.nulls[i]) { c->result->nulls[i] = 1; continue; }  // null in, null out
      out[i] = in[i];                                                     // <- your computation
    }
    return SP_OK;
  } catch (const std::exception &e) {
    host->set_error(c->ctx, e.what());
    return SP_ERROR;
  }
}

sp_status init(const sp_host_api *api, sp_ctx *ctx, void **) {
  host = api;
  host->log(ctx, SP_LOG_INFO, "${name} ready");
  return SP_OK;
}

const uint32_t args[] = {SP_TYPE_FLOAT64};
const sp_function_def functions[] = {
  SP_FUNCTION_DEF("${name}", SP_FUNCTION_SCALAR, 0, 1, 1, args, nullptr, SP_TYPE_FLOAT64, call, nullptr, nullptr),
};

void describe(sp_plugin_descriptor *d) {
  d->init = init;
  d->functions = functions;
  d->n_functions = sizeof functions / sizeof functions[0];
}

}  // namespace

STREAMPLUG_PLUGIN("${name}", "0.1.0", "function:${name}", describe)
`;

const sourceC = (name: string) => `/*
 * ${name}: a source emitting {"seq": n} every "interval" ms (default 100) until the host stops it,
 * "start" the first seq (default 0). A placeholder:
 * replace the body of ${name}_run with your producer (read a device, poll a service, ...).
 * The host runs open, run and close on a thread of its own (see LIFECYCLE in plugin.h).
 */
#define _POSIX_C_SOURCE 199309L /* strict C99 hides nanosleep without it */
#define STREAMPLUG_PLUGIN_MINOR 3 /* sources need 1.1, the config_* routines 1.3 */
#include <streamplug/plugin.h>
#include <time.h>

static const sp_host_api *host;

typedef struct ${name}_instance {
  int64_t interval_ms, start;
} ${name}_instance;

/* The host reads the instance's properties (a JSON object) for you: config_int64 / config_double /
 * config_bool / config_string, each with a default. A key of the wrong type ("interval": "fast")
 * fails open with a message naming the key, the expected and the found type. */
static sp_status ${name}_open(sp_ctx *ctx, const char *config, size_t length, void **instance) {
  ${name}_instance *self;
  int64_t interval_ms = host->config_int64(ctx, "interval", 100);
  int64_t start = host->config_int64(ctx, "start", 0);
  (void)config; (void)length; /* the raw JSON text, if you ever need it */
  if (interval_ms <= 0) { host->set_error(ctx, "${name}: interval must be > 0 (milliseconds)"); return SP_ERROR; }
  self = (${name}_instance *)host->alloc(sizeof *self);
  if (self == NULL) { host->set_error(ctx, "${name}: out of memory"); return SP_ERROR; }
  self->interval_ms = interval_ms;
  self->start = start;
  *instance = self;
  return SP_OK;
}

static void ${name}_run(sp_ctx *ctx, void *instance) {
  const ${name}_instance *self = (const ${name}_instance *)instance;
  struct timespec pause;
  int64_t seq = self->start;
  pause.tv_sec = (time_t)(self->interval_ms / 1000);
  pause.tv_nsec = (long)(self->interval_ms % 1000) * 1000000L;
  while (!host->stopping(ctx)) {
    sp_row *row = host->row_begin(ctx);
    host->row_int64(row, "seq", seq++);
    if (host->row_push(row) != SP_OK) break;   /* the host is stopping this source */
    nanosleep(&pause, NULL);
  }
}

static void ${name}_close(sp_ctx *ctx, void *instance) { (void)ctx; host->free(instance); }

static sp_status ${name}_init(const sp_host_api *api, sp_ctx *ctx, void **plugin_data) {
  (void)ctx; (void)plugin_data;
  if (!SP_HOST_HAS(api, config_int64)) { api->set_error(ctx, "${name} needs a host with contract 1.3 (config_* routines)"); return SP_ERROR; }
  host = api;
  return SP_OK;
}

static const sp_source_def ${name}_sources[] = {
  SP_SOURCE_DEF("${name}", 0, NULL, ${name}_open, ${name}_run, ${name}_close),
};

static void describe(sp_plugin_descriptor *d) {
  d->init = ${name}_init;
  d->sources = ${name}_sources;
  d->n_sources = 1;
}

STREAMPLUG_PLUGIN("${name}", "0.1.0", "source:${name}", describe)
`;

const sinkC = (name: string) => `/*
 * ${name}: a sink writing each batch to standard output as JSON Lines. A placeholder: replace
 * ${name}_collect with your delivery (a file, a socket, a service). Every hook of one instance
 * runs on that instance's worker thread, one at a time (see LIFECYCLE in plugin.h).
 */
#define STREAMPLUG_PLUGIN_MINOR 3 /* sinks need 1.1, the config_* routines 1.3 */
#include <streamplug/plugin.h>
#include <stdio.h>

static const sp_host_api *host;

/* The host reads the action's properties (a JSON object) for you: config_string / config_int64 /
 * config_double / config_bool, each with a default. A key of the wrong type ("quiet": "yes") fails
 * open with a message naming the key, the expected and the found type. */
static sp_status ${name}_open(sp_ctx *ctx, const char *config, size_t length, void **instance) {
  (void)config; (void)length; /* the raw JSON text, if you ever need it */
  /* "quiet": true swallows the rows; the instance pointer carries the flag */
  *instance = host->config_bool(ctx, "quiet", 0) ? (void *)&host : NULL;
  return SP_OK;
}

/* SP_SINK_ENCODED: the batch arrives as JSON Lines, data[offsets[0] .. offsets[nrows]). */
static sp_status ${name}_collect(sp_ctx *ctx, void *instance, const sp_batch *batch) {
  size_t bytes = batch->offsets[batch->nrows] - batch->offsets[0];
  if (instance != NULL) return SP_OK; /* quiet */
  if (fwrite(batch->data + batch->offsets[0], 1, bytes, stdout) != bytes || fflush(stdout) != 0) {
    host->set_error(ctx, "${name}: cannot write to standard output");
    return SP_RETRY; /* the host retries the same batch after a backoff */
  }
  return SP_OK;
}

static void ${name}_close(sp_ctx *ctx, void *instance) { (void)ctx; (void)instance; }

static sp_status ${name}_init(const sp_host_api *api, sp_ctx *ctx, void **plugin_data) {
  (void)plugin_data;
  if (!SP_HOST_HAS(api, config_bool)) { api->set_error(ctx, "${name} needs a host with contract 1.3 (config_* routines)"); return SP_ERROR; }
  host = api;
  return SP_OK;
}

static const sp_sink_def ${name}_sinks[] = {
  SP_SINK_DEF("${name}", SP_SINK_ENCODED, NULL, ${name}_open, ${name}_collect, ${name}_close),
};

static void describe(sp_plugin_descriptor *d) {
  d->init = ${name}_init;
  d->sinks = ${name}_sinks;
  d->n_sinks = 1;
}

STREAMPLUG_PLUGIN("${name}", "0.1.0", "sink:${name}", describe)
`;

/** The test: streamplug/testing from node_modules, else from the streamplug that made the project. */
const testPrelude = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// streamplug/testing: this project's dependency if installed, else the streamplug that generated it.
const { loadPlugin } = await import('streamplug/testing').catch(() =>
  import(process.env.STREAMPLUG_TESTING ?? '${sdk.testingUrl}'));
const here = path.dirname(fileURLToPath(import.meta.url));
`;

const testFor = (name: string, kind: Kind, file: string) => testPrelude + {
  function: `
test('${name}(x) returns x, null stays null', async () => {
  const plugin = await loadPlugin(path.join(here, '..', ${JSON.stringify(file)}));
  try {
    assert.equal(plugin.call('${name}', 212), 212);
    assert.deepEqual(plugin.callRows('${name}', [[1.5], [null], [-40]]), [1.5, null, -40]);
  } finally {
    await plugin.close();
  }
});
`,
  source: `
test('${name} emits rows with an increasing seq', async () => {
  const plugin = await loadPlugin(path.join(here, '..', ${JSON.stringify(file)}));
  try {
    const rows = await plugin.runSource({}, 3);
    assert.deepEqual(rows.map((r) => r.seq), [0, 1, 2]);
  } finally {
    await plugin.close();
  }
});
`,
  sink: `
test('${name} accepts a batch', async () => {
  const plugin = await loadPlugin(path.join(here, '..', ${JSON.stringify(file)}));
  try {
    await plugin.feedSink({}, [{ a: 1 }, { a: 2 }]);
  } finally {
    await plugin.close();
  }
});
`,
}[kind];

const nodeFunction = (name: string) => `/*
 * ${name}(x): a .node streamplug plugin (Node-API, plain C) returning its argument unchanged.
 * The module exports
 *   { streamplug: { contract: [1, 0], name: '${name}', version: '0.1.0' },
 *     functions: [{ name: '${name}', kind: 'scalar', minArgs: 1, maxArgs: 1,
 *                   argTypes: ['float64'], resultType: 'float64', call(args, nrows, ctx) }] }
 * call receives columns { type, values, nulls? } (float64: a Float64Array) and returns one column
 * of nrows rows. To fail the call, throw: the host reports E_FUNCTION_FAILED with the message.
 */
#include <node_api.h>
#include <streamplug/plugin.h>

STREAMPLUG_MANIFEST("${name}", "0.1.0", "function:${name}")

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "${name}: Node-API call failed"); return NULL; } } while (0)

/* call(args, nrows, ctx): returns args[0] as it is (same values, same nulls). <- your computation */
static napi_value call(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], column;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_element(env, argv[0], 0, &column));
  return column;
}

static napi_value str(napi_env env, const char *s) {
  napi_value v;
  return napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) == napi_ok ? v : NULL;
}

NAPI_MODULE_INIT() {
  napi_value meta, contract, major, minor, fn, types, functions, callfn, one;
  CHECK(napi_create_object(env, &meta));
  CHECK(napi_create_array_with_length(env, 2, &contract));
  CHECK(napi_create_uint32(env, 1, &major));
  CHECK(napi_create_uint32(env, 0, &minor));
  CHECK(napi_set_element(env, contract, 0, major));
  CHECK(napi_set_element(env, contract, 1, minor));
  CHECK(napi_set_named_property(env, meta, "contract", contract));
  CHECK(napi_set_named_property(env, meta, "name", str(env, "${name}")));
  CHECK(napi_set_named_property(env, meta, "version", str(env, "0.1.0")));
  CHECK(napi_set_named_property(env, exports, "streamplug", meta));

  CHECK(napi_create_object(env, &fn));
  CHECK(napi_create_uint32(env, 1, &one));
  CHECK(napi_set_named_property(env, fn, "name", str(env, "${name}")));
  CHECK(napi_set_named_property(env, fn, "kind", str(env, "scalar")));
  CHECK(napi_set_named_property(env, fn, "minArgs", one));
  CHECK(napi_set_named_property(env, fn, "maxArgs", one));
  CHECK(napi_create_array_with_length(env, 1, &types));
  CHECK(napi_set_element(env, types, 0, str(env, "float64")));
  CHECK(napi_set_named_property(env, fn, "argTypes", types));
  CHECK(napi_set_named_property(env, fn, "resultType", str(env, "float64")));
  CHECK(napi_create_function(env, "call", NAPI_AUTO_LENGTH, call, NULL, &callfn));
  CHECK(napi_set_named_property(env, fn, "call", callfn));
  CHECK(napi_create_array_with_length(env, 1, &functions));
  CHECK(napi_set_element(env, functions, 0, fn));
  CHECK(napi_set_named_property(env, exports, "functions", functions));
  return exports;
}
`;

function readme(name: string, kind: Kind, lang: Lang, file: string): string {
  const build = lang === 'node' ? 'npm install && npm run build' : 'cmake -B build && cmake --build build';
  const run = {
    function: `streamplug call ${file} ${name} 212`,
    source: `streamplug run-source ${file} --rows 3`,
    sink: `echo '{"a":1}' | streamplug feed-sink ${file}`,
  }[kind];
  return `# ${name}

A streamplug ${kind} plugin (${lang === 'node' ? '.node, Node-API' : lang === 'cpp' ? 'C++' : 'C'}), made by \`streamplug new\`.

\`\`\`sh
${build}     # build ${file}
${run}
npm test     # test/${name}.test.mjs through streamplug/testing
\`\`\`

Then pack and install it on a host:
\`streamplug pack --type ${kind}s --name ${name} ${file} -o ${name}.zip && streamplug plugin install --host http://127.0.0.1:9081 ${kind}s ${name} ${name}.zip\`.
${lang === 'node' ? '' : `
Debug build (symbols, no optimisation): \`cmake -B build -DCMAKE_BUILD_TYPE=Debug && cmake --build build\`.
The SDK (plugin.h and the CMake package) is found through \`find_package(streamplug)\` — nothing is copied.
`}`;
}

/** Every file of a new project, by relative path. Throws on a combination there is no template for. */
export function projectFiles(name: string, kind: Kind, lang: Lang): Files {
  if (lang === 'node' && kind !== 'function') throw new Error(`--lang node makes function plugins only; use --lang c or cpp for a ${kind}`);
  const file = lang === 'node' ? `build/${name}.node` : `build/plugins/${name}.so`;
  const files: Files = {
    'README.md': readme(name, kind, lang, file),
    [`test/${name}.test.mjs`]: testFor(name, kind, file),
    '.gitignore': 'build/\nnode_modules/\n',
  };
  const pkg = {
    name, version: '0.1.0', private: true, type: 'module',
    scripts: { test: `node --test test/${name}.test.mjs` } as Record<string, string>,
    devDependencies: {} as Record<string, string>,
  };
  if (lang === 'node') {
    files[`${name}.c`] = nodeFunction(name);
    files['CMakeLists.txt'] = `cmake_minimum_required(VERSION 3.16)
project(${name} LANGUAGES C CXX)
set(STREAMPLUG_PLUGIN_OUTPUT_DIR "\${CMAKE_SOURCE_DIR}/build")
${cmakeFind(name)}
# ${name}.node: configure through cmake-js (npm run build), which provides the Node-API headers.
streamplug_add_node_plugin(NAME ${name} SOURCES ${name}.c)
`;
    // cmake-js and the Node-API headers are this project's own dev dependencies: the build works
    // out of tree and offline once installed (no header download).
    pkg.scripts.build = 'cmake-js build --out build/cmake';
    pkg.devDependencies['cmake-js'] = '^8.0.0';
    pkg.devDependencies['node-api-headers'] = '^1.0.0';
    // napi_versions makes cmake-js take the headers from node-api-headers instead of downloading Node's.
    (pkg as Record<string, unknown>).binary = { napi_versions: [8] };
  } else {
    const source = `${name}.${lang === 'cpp' ? 'cpp' : 'c'}`;
    files[source] = lang === 'cpp' && kind === 'function' ? functionCpp(name)
      : kind === 'function' ? functionC(name) : kind === 'source' ? sourceC(name) : sinkC(name);
    files['CMakeLists.txt'] = cmakeLists(name, source);
  }
  files['package.json'] = `${JSON.stringify(pkg, null, 2)}\n`;
  return files;
}
