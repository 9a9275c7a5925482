/*
 * scale(x float64, k float64) -> x * k over whole columns; a null in either argument gives null.
 *
 * Also exports the kernel as plain C symbols (vector_scale_batch, vector_scale_one) so the
 * benchmark can call the very same code through an FFI and compare the crossing costs.
 */
#include <streamplug/plugin.h>
#include <stddef.h>

static const sp_host_api *host;

SP_EXPORT void vector_scale_batch(const double *x, double k, double *out, size_t n);
SP_EXPORT double vector_scale_one(double x, double k);

void vector_scale_batch(const double *x, double k, double *out, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) out[i] = x[i] * k;
}

double vector_scale_one(double x, double k) {
  return x * k;
}

static sp_status scale_call(const sp_call *call) {
  const sp_column *x = &call->args[0];
  const sp_column *k = &call->args[1];
  const double *xs = (const double *)x->values;
  const double *ks = (const double *)k->values;
  double *out = (double *)call->result->values;
  uint8_t *nulls = call->result->nulls;
  size_t n = call->nrows;
  size_t i;

  if (k->is_constant && n > 0) {
    /* A literal k (the usual `scale(x, 2.5)`) is one value repeated: one tight loop. */
    vector_scale_batch(xs, ks[0], out, n);
  } else {
    for (i = 0; i < n; i++) out[i] = xs[i] * ks[i];
  }
  if (x->nulls) {
    for (i = 0; i < n; i++) nulls[i] |= x->nulls[i];
  }
  if (k->nulls) {
    for (i = 0; i < n; i++) nulls[i] |= k->nulls[i];
  }
  return SP_OK;
}

static sp_status vector_init(const sp_host_api *api, sp_ctx *ctx, void **plugin_data) {
  (void)plugin_data;
  host = api;
  host->log(ctx, SP_LOG_INFO, "vector 1.0.0 ready: scale(x, k)");
  return SP_OK;
}

static const uint32_t arg_types[] = {SP_TYPE_FLOAT64, SP_TYPE_FLOAT64};

static const sp_function_def functions[] = {
  SP_FUNCTION_DEF("scale", SP_FUNCTION_SCALAR, 0, 2, 2, arg_types, NULL, SP_TYPE_FLOAT64,
                  scale_call, NULL, NULL),
};

static void describe(sp_plugin_descriptor *d) {
  d->init = vector_init;
  d->functions = functions;
  d->n_functions = sizeof functions / sizeof functions[0];
}

STREAMPLUG_PLUGIN("vector", "1.0.0", "function:scale", describe)
