/*
 * textnode: a `.node` streamplug plugin (Node-API, plain C). The module exports
 *
 *   { streamplug: { contract: [1, 0], name: 'textnode', version: '1.0.0' },
 *     init(host)   optional: the host may pass { log(level, message) }; we log one line,
 *     functions: [ { name: 'reverseText', kind: 'scalar', minArgs: 1, maxArgs: 1,
 *                    argTypes: ['string'], resultType: 'string', call(args, nrows, ctx) } ] }
 *
 * call takes columns { type: 'string', values: string[], nulls?: Uint8Array } and returns one such
 * column: each string reversed by Unicode code point (a surrogate pair stays one character).
 * The manifest note lets the host's check read the plugin without loading it, as for a `.so`.
 */
#include <node_api.h>
#include <streamplug/plugin.h>
#include <stdlib.h>

STREAMPLUG_MANIFEST("textnode", "1.0.0", "function:reverseText")

#define CHECK(env, call)                                                            \
  do {                                                                              \
    if ((call) != napi_ok) {                                                        \
      const napi_extended_error_info *info_ = NULL;                                 \
      napi_get_last_error_info((env), &info_);                                      \
      napi_throw_error((env), NULL, info_ && info_->error_message                   \
                                        ? info_->error_message                      \
                                        : "textnode: a Node-API call failed");      \
      return NULL;                                                                  \
    }                                                                               \
  } while (0)

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static int is_high(char16_t c) { return c >= 0xD800 && c <= 0xDBFF; }
static int is_low(char16_t c) { return c >= 0xDC00 && c <= 0xDFFF; }

/* Reverses by code point: copies each surrogate pair as a unit; lone surrogates move alone. */
static void reverse_utf16(const char16_t *in, size_t n, char16_t *out) {
  size_t i = 0;
  while (i < n) {
    if (i + 1 < n && is_high(in[i]) && is_low(in[i + 1])) {
      out[n - i - 2] = in[i];
      out[n - i - 1] = in[i + 1];
      i += 2;
    } else {
      out[n - i - 1] = in[i];
      i += 1;
    }
  }
}

static napi_value reverse_one(napi_env env, napi_value s, char16_t **buf, size_t *cap) {
  size_t len = 0;
  napi_value result;
  CHECK(env, napi_get_value_string_utf16(env, s, NULL, 0, &len));
  if (len + 1 > *cap) {
    char16_t *grown = (char16_t *)realloc(*buf, (len + 1) * 2 * sizeof(char16_t));
    if (!grown) {
      napi_throw_error(env, NULL, "textnode: out of memory");
      return NULL;
    }
    *buf = grown;
    *cap = (len + 1) * 2;
  }
  /* Read into the second half, reverse into the first. */
  CHECK(env, napi_get_value_string_utf16(env, s, *buf + len + 1, len + 1, &len));
  reverse_utf16(*buf + len + 1, len, *buf);
  CHECK(env, napi_create_string_utf16(env, *buf, len, &result));
  return result;
}

/* call(args, nrows, ctx) */
static napi_value reverse_text(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], col, values, nulls_in, out, out_values, str;
  napi_valuetype vt;
  bool is_array = false, has_nulls = false;
  uint8_t *nulls = NULL;
  size_t nulls_len = 0;
  uint32_t nrows = 0, i;
  char16_t *buf = NULL;
  size_t cap = 0;

  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "reverseText: call(args, nrows) got no arguments; expected an array of one column");
  CHECK(env, napi_is_array(env, argv[0], &is_array));
  if (!is_array) return throw_type(env, "reverseText: args is not an array; expected [ { type: 'string', values: string[] } ]");
  CHECK(env, napi_get_element(env, argv[0], 0, &col));
  CHECK(env, napi_typeof(env, col, &vt));
  if (vt != napi_object) return throw_type(env, "reverseText: args[0] is not a column object; expected { type: 'string', values: string[] }");
  CHECK(env, napi_get_named_property(env, col, "values", &values));
  CHECK(env, napi_is_array(env, values, &is_array));
  if (!is_array) return throw_type(env, "reverseText: args[0].values is not an array; expected string[]");
  CHECK(env, napi_get_array_length(env, values, &nrows));
  if (argc >= 2) {
    CHECK(env, napi_typeof(env, argv[1], &vt));
    if (vt == napi_number) {
      uint32_t n;
      CHECK(env, napi_get_value_uint32(env, argv[1], &n));
      if (n < nrows) nrows = n;
    }
  }

  CHECK(env, napi_has_named_property(env, col, "nulls", &has_nulls));
  if (has_nulls) {
    bool is_typed = false;
    CHECK(env, napi_get_named_property(env, col, "nulls", &nulls_in));
    CHECK(env, napi_is_typedarray(env, nulls_in, &is_typed));
    if (is_typed) {
      napi_typedarray_type type;
      void *data;
      CHECK(env, napi_get_typedarray_info(env, nulls_in, &type, &nulls_len, &data, NULL, NULL));
      if (type != napi_uint8_array) return throw_type(env, "reverseText: args[0].nulls is not a Uint8Array");
      nulls = (uint8_t *)data;
    }
  }

  CHECK(env, napi_create_array_with_length(env, nrows, &out_values));
  for (i = 0; i < nrows; i++) {
    napi_value v;
    if (nulls && i < nulls_len && nulls[i]) {
      CHECK(env, napi_create_string_utf8(env, "", 0, &str));
    } else {
      CHECK(env, napi_get_element(env, values, i, &v));
      CHECK(env, napi_typeof(env, v, &vt));
      if (vt != napi_string) {
        free(buf);
        return throw_type(env, "reverseText: a value of args[0] is not a string; expected string[]");
      }
      str = reverse_one(env, v, &buf, &cap);
      if (!str) {
        free(buf);
        return NULL;
      }
    }
    CHECK(env, napi_set_element(env, out_values, i, str));
  }
  free(buf);

  CHECK(env, napi_create_object(env, &out));
  CHECK(env, napi_create_string_utf8(env, "string", NAPI_AUTO_LENGTH, &str));
  CHECK(env, napi_set_named_property(env, out, "type", str));
  CHECK(env, napi_set_named_property(env, out, "values", out_values));
  if (nulls) {
    napi_value ab, copy;
    void *dst;
    CHECK(env, napi_create_arraybuffer(env, nrows, &dst, &ab));
    for (i = 0; i < nrows; i++) ((uint8_t *)dst)[i] = i < nulls_len ? nulls[i] : 0;
    CHECK(env, napi_create_typedarray(env, napi_uint8_array, nrows, ab, 0, &copy));
    CHECK(env, napi_set_named_property(env, out, "nulls", copy));
  }
  return out;
}

/* init(host): logs through host.log(level, message) when the host offers it. */
static napi_value plugin_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value host, log, args[2], ignored;
  napi_valuetype vt;
  CHECK(env, napi_get_cb_info(env, info, &argc, &host, NULL, NULL));
  if (argc < 1) return NULL;
  CHECK(env, napi_typeof(env, host, &vt));
  if (vt != napi_object) return NULL;
  CHECK(env, napi_get_named_property(env, host, "log", &log));
  CHECK(env, napi_typeof(env, log, &vt));
  if (vt != napi_function) return NULL;
  CHECK(env, napi_create_int32(env, SP_LOG_INFO, &args[0]));
  CHECK(env, napi_create_string_utf8(env, "textnode 1.0.0 ready: reverseText(s)", NAPI_AUTO_LENGTH, &args[1]));
  CHECK(env, napi_call_function(env, host, log, 2, args, &ignored));
  return NULL;
}

static napi_value str_value(napi_env env, const char *s) {
  napi_value v;
  CHECK(env, napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v));
  return v;
}

static napi_value int_value(napi_env env, int32_t n) {
  napi_value v;
  CHECK(env, napi_create_int32(env, n, &v));
  return v;
}

NAPI_MODULE_INIT() {
  napi_value meta, contract, functions, fn, arg_types, call, init;
  (void)streamplug_manifest_note_;

  CHECK(env, napi_create_object(env, &meta));
  CHECK(env, napi_create_array_with_length(env, 2, &contract));
  CHECK(env, napi_set_element(env, contract, 0, int_value(env, STREAMPLUG_CONTRACT_MAJOR)));
  CHECK(env, napi_set_element(env, contract, 1, int_value(env, STREAMPLUG_PLUGIN_MINOR)));
  CHECK(env, napi_set_named_property(env, meta, "contract", contract));
  CHECK(env, napi_set_named_property(env, meta, "name", str_value(env, "textnode")));
  CHECK(env, napi_set_named_property(env, meta, "version", str_value(env, "1.0.0")));
  CHECK(env, napi_set_named_property(env, exports, "streamplug", meta));

  CHECK(env, napi_create_function(env, "init", NAPI_AUTO_LENGTH, plugin_init, NULL, &init));
  CHECK(env, napi_set_named_property(env, exports, "init", init));

  CHECK(env, napi_create_object(env, &fn));
  CHECK(env, napi_set_named_property(env, fn, "name", str_value(env, "reverseText")));
  CHECK(env, napi_set_named_property(env, fn, "kind", str_value(env, "scalar")));
  CHECK(env, napi_set_named_property(env, fn, "minArgs", int_value(env, 1)));
  CHECK(env, napi_set_named_property(env, fn, "maxArgs", int_value(env, 1)));
  CHECK(env, napi_create_array_with_length(env, 1, &arg_types));
  CHECK(env, napi_set_element(env, arg_types, 0, str_value(env, "string")));
  CHECK(env, napi_set_named_property(env, fn, "argTypes", arg_types));
  CHECK(env, napi_set_named_property(env, fn, "resultType", str_value(env, "string")));
  CHECK(env, napi_create_function(env, "reverseText", NAPI_AUTO_LENGTH, reverse_text, NULL, &call));
  CHECK(env, napi_set_named_property(env, fn, "call", call));
  CHECK(env, napi_create_array_with_length(env, 1, &functions));
  CHECK(env, napi_set_element(env, functions, 0, fn));
  CHECK(env, napi_set_named_property(env, exports, "functions", functions));
  return exports;
}
