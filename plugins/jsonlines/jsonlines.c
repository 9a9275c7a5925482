/*
 * jsonlines: a `.node` streamplug plugin with a sink (contract 1.1), in plain C over Node-API.
 *
 *   { streamplug: { contract: [1, 1], name: 'jsonlines', version: '1.0.0' },
 *     functions: [],
 *     sinks: [ { name: 'jsonlines', validate(config), open(config), collect(handle, rows), close(handle) } ] }
 *
 * config is { path }: every row is written as one JSON line (JSON.stringify) to `path`, appended,
 * and flushed at the end of each collect. A `.node` sink runs on the JS thread: keep it quick.
 */
#define STREAMPLUG_PLUGIN_MINOR 1
#include <node_api.h>
#include <streamplug/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

STREAMPLUG_MANIFEST("jsonlines", "1.0.0", "sink:jsonlines")

#define CHECK(env, call)                                                         \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      bool pending_ = false;                                                     \
      napi_is_exception_pending((env), &pending_);                               \
      if (!pending_) napi_throw_error((env), NULL, "jsonlines: a Node-API call failed"); \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

/* The path in config, malloc'ed; NULL after throwing. */
static char *config_path(napi_env env, napi_value config) {
  napi_value v;
  napi_valuetype t;
  size_t n = 0;
  char *path;
  bool has = false;
  CHECK(env, napi_typeof(env, config, &t));
  if (t == napi_object) CHECK(env, napi_has_named_property(env, config, "path", &has));
  if (!has) {
    napi_throw_error(env, NULL, "jsonlines: config has no path; give the file to write, e.g. {\"path\": \"/tmp/out.jsonl\"}");
    return NULL;
  }
  CHECK(env, napi_get_named_property(env, config, "path", &v));
  CHECK(env, napi_typeof(env, v, &t));
  if (t != napi_string) {
    napi_throw_error(env, NULL, "jsonlines: path is not a string");
    return NULL;
  }
  CHECK(env, napi_get_value_string_utf8(env, v, NULL, 0, &n));
  path = (char *)malloc(n + 1);
  if (!path) return NULL;
  CHECK(env, napi_get_value_string_utf8(env, v, path, n + 1, &n));
  return path;
}

/* validate(config) -> reason string, or undefined */
static napi_value validate(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, error;
  char *path;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  path = argc > 0 ? config_path(env, argv[0]) : NULL;
  if (path) {
    free(path);
    CHECK(env, napi_get_undefined(env, &result));
    return result;
  }
  /* turn the thrown error into the reason string */
  if (napi_get_and_clear_last_exception(env, &error) == napi_ok) {
    napi_value message;
    if (napi_get_named_property(env, error, "message", &message) == napi_ok) return message;
  }
  CHECK(env, napi_create_string_utf8(env, "jsonlines: bad config", NAPI_AUTO_LENGTH, &result));
  return result;
}

static void finalize_file(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  if (data) fclose((FILE *)data);
}

/* open(config) -> handle (an external FILE*) */
static napi_value open_sink(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], handle;
  char *path;
  FILE *f;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_error(env, NULL, "jsonlines: open(config) needs a config");
    return NULL;
  }
  path = config_path(env, argv[0]);
  if (!path) return NULL;
  f = fopen(path, "ab");
  free(path);
  if (!f) {
    napi_throw_error(env, NULL, "jsonlines: cannot open the file for appending");
    return NULL;
  }
  /* an object holding the external, so close() can mark it closed */
  CHECK(env, napi_create_object(env, &handle));
  {
    napi_value ext;
    CHECK(env, napi_create_external(env, f, finalize_file, NULL, &ext));
    CHECK(env, napi_set_named_property(env, handle, "file", ext));
  }
  return handle;
}

static FILE *handle_file(napi_env env, napi_value handle) {
  napi_value ext;
  void *data = NULL;
  if (napi_get_named_property(env, handle, "file", &ext) != napi_ok) return NULL;
  if (napi_get_value_external(env, ext, &data) != napi_ok) return NULL;
  return (FILE *)data;
}

/* collect(handle, rows) */
static napi_value collect(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], global, json, stringify, result;
  uint32_t n = 0, i;
  bool is_array = false;
  FILE *f;
  char *buf = NULL;
  size_t cap = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !(f = handle_file(env, argv[0]))) {
    napi_throw_error(env, NULL, "jsonlines: collect(handle, rows): handle is not open");
    return NULL;
  }
  CHECK(env, napi_is_array(env, argv[1], &is_array));
  if (!is_array) {
    napi_throw_type_error(env, NULL, "jsonlines: rows is not an array");
    return NULL;
  }
  CHECK(env, napi_get_global(env, &global));
  CHECK(env, napi_get_named_property(env, global, "JSON", &json));
  CHECK(env, napi_get_named_property(env, json, "stringify", &stringify));
  CHECK(env, napi_get_array_length(env, argv[1], &n));
  for (i = 0; i < n; i++) {
    napi_value row, text;
    size_t len = 0;
    CHECK(env, napi_get_element(env, argv[1], i, &row));
    CHECK(env, napi_call_function(env, json, stringify, 1, &row, &text));
    CHECK(env, napi_get_value_string_utf8(env, text, NULL, 0, &len));
    if (len + 2 > cap) {
      char *grown = (char *)realloc(buf, (len + 2) * 2);
      if (!grown) {
        free(buf);
        napi_throw_error(env, NULL, "jsonlines: out of memory");
        return NULL;
      }
      buf = grown;
      cap = (len + 2) * 2;
    }
    if (napi_get_value_string_utf8(env, text, buf, cap, &len) != napi_ok) {
      free(buf);
      napi_throw_error(env, NULL, "jsonlines: a row did not serialise");
      return NULL;
    }
    buf[len++] = '\n';
    if (fwrite(buf, 1, len, f) != len) {
      free(buf);
      napi_throw_error(env, NULL, "jsonlines: write failed");
      return NULL;
    }
  }
  free(buf);
  if (fflush(f) != 0) {
    napi_throw_error(env, NULL, "jsonlines: flush failed");
    return NULL;
  }
  CHECK(env, napi_get_undefined(env, &result));
  return result;
}

/* close(handle): flush now; the FILE is closed when the handle is collected */
static napi_value close_sink(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  FILE *f;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc > 0 && (f = handle_file(env, argv[0])) != NULL) fflush(f);
  CHECK(env, napi_get_undefined(env, &result));
  return result;
}

static napi_value set_fn(napi_env env, napi_value obj, const char *name, napi_callback cb) {
  napi_value fn;
  CHECK(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn));
  CHECK(env, napi_set_named_property(env, obj, name, fn));
  return obj;
}

NAPI_MODULE_INIT() {
  napi_value d, contract, v, sinks, sink, functions;
  (void)streamplug_manifest_note_;
  CHECK(env, napi_create_object(env, &d));
  CHECK(env, napi_create_array_with_length(env, 2, &contract));
  CHECK(env, napi_create_uint32(env, STREAMPLUG_CONTRACT_MAJOR, &v));
  CHECK(env, napi_set_element(env, contract, 0, v));
  CHECK(env, napi_create_uint32(env, STREAMPLUG_PLUGIN_MINOR, &v));
  CHECK(env, napi_set_element(env, contract, 1, v));
  CHECK(env, napi_set_named_property(env, d, "contract", contract));
  CHECK(env, napi_create_string_utf8(env, "jsonlines", NAPI_AUTO_LENGTH, &v));
  CHECK(env, napi_set_named_property(env, d, "name", v));
  CHECK(env, napi_create_string_utf8(env, "1.0.0", NAPI_AUTO_LENGTH, &v));
  CHECK(env, napi_set_named_property(env, d, "version", v));
  CHECK(env, napi_set_named_property(env, exports, "streamplug", d));
  CHECK(env, napi_create_array(env, &functions));
  CHECK(env, napi_set_named_property(env, exports, "functions", functions));

  CHECK(env, napi_create_object(env, &sink));
  CHECK(env, napi_create_string_utf8(env, "jsonlines", NAPI_AUTO_LENGTH, &v));
  CHECK(env, napi_set_named_property(env, sink, "name", v));
  if (!set_fn(env, sink, "validate", validate) || !set_fn(env, sink, "open", open_sink) ||
      !set_fn(env, sink, "collect", collect) || !set_fn(env, sink, "close", close_sink))
    return NULL;
  CHECK(env, napi_create_array_with_length(env, 1, &sinks));
  CHECK(env, napi_set_element(env, sinks, 0, sink));
  CHECK(env, napi_set_named_property(env, exports, "sinks", sinks));
  return exports;
}
