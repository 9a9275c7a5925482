/*
 * echo(x): returns its argument unchanged, whatever its type; nulls stay null.
 * eKuiper's `echo` sample, as a streamplug C plugin.
 */
#include <streamplug/plugin.h>
#include <string.h>

static const sp_host_api *host;

static size_t fixed_width(uint32_t type) {
  switch (type) {
    case SP_TYPE_BOOL: return sizeof(uint8_t);
    case SP_TYPE_INT64: return sizeof(int64_t);
    case SP_TYPE_FLOAT64: return sizeof(double);
    default: return 0;
  }
}

static sp_status echo_call(const sp_call *call) {
  const sp_column *x = &call->args[0];
  sp_result *out = call->result;
  size_t n = call->nrows;
  size_t width = fixed_width(x->type);
  size_t i;

  if (x->nulls) memcpy(out->nulls, x->nulls, n);
  if (width) {
    if (n) memcpy(out->values, x->values, n * width);
    return SP_OK;
  }
  if (x->type != SP_TYPE_STRING && x->type != SP_TYPE_BYTES) {
    host->set_error(call->ctx, "echo: argument has an unknown column type; expected bool, int64, "
                               "float64, string or bytes");
    return SP_ERROR;
  }
  /* result_set_string copies any bytes, so it serves BYTES as well. */
  for (i = 0; i < n; i++) {
    if (x->nulls && x->nulls[i]) continue;
    if (host->result_set_string(out, i, x->data + x->offsets[i],
                                (size_t)(x->offsets[i + 1] - x->offsets[i])) != SP_OK) {
      return SP_ERROR;
    }
  }
  return SP_OK;
}

static sp_status echo_init(const sp_host_api *api, sp_ctx *ctx, void **plugin_data) {
  (void)plugin_data;
  host = api;
  host->log(ctx, SP_LOG_INFO, "echo 1.0.0 ready: echo(x)");
  return SP_OK;
}

static const uint32_t echo_arg_types[] = {SP_TYPE_ANY};

static const sp_function_def echo_functions[] = {
  SP_FUNCTION_DEF("echo", SP_FUNCTION_SCALAR, 0, 1, 1, echo_arg_types, NULL, SP_TYPE_LIKE_ARG0,
                  echo_call, NULL, NULL),
};

static void describe(sp_plugin_descriptor *d) {
  d->init = echo_init;
  d->functions = echo_functions;
  d->n_functions = sizeof echo_functions / sizeof echo_functions[0];
}

STREAMPLUG_PLUGIN("echo", "1.0.0", "function:echo", describe)
