// countPlusOne(x): aggregate; for each group, the number of its rows (nulls included) plus one.
// eKuiper's `countPlusOne` sample, as a streamplug C++ plugin.
#include <streamplug/plugin.h>

#include <cstdint>

namespace {

const sp_host_api *host = nullptr;

// Hooks are called from C: they must never let an exception escape.
sp_status count_plus_one(const sp_call *call) noexcept {
  auto *out = static_cast<int64_t *>(call->result->values);
  if (call->group_offsets == nullptr) {
    // Called as a scalar (nrows rows, each its own group of one).
    for (size_t i = 0; i < call->nrows; ++i) out[i] = 2;
    return SP_OK;
  }
  for (size_t g = 0; g < call->ngroups; ++g) {
    const uint32_t rows = call->group_offsets[g + 1] - call->group_offsets[g];
    out[g] = static_cast<int64_t>(rows) + 1;
  }
  return SP_OK;
}

sp_status init(const sp_host_api *api, sp_ctx *ctx, void **) noexcept {
  host = api;
  host->log(ctx, SP_LOG_INFO, "countPlusOne 1.0.0 ready: countPlusOne(x)");
  return SP_OK;
}

const uint32_t arg_types[] = {SP_TYPE_ANY};

const sp_function_def functions[] = {
  SP_FUNCTION_DEF("countPlusOne", SP_FUNCTION_AGGREGATE, 0, 1, 1, arg_types, nullptr,
                  SP_TYPE_INT64, count_plus_one, nullptr, nullptr),
};

void describe(sp_plugin_descriptor *d) {
  d->init = init;
  d->functions = functions;
  d->n_functions = sizeof functions / sizeof functions[0];
}

}  // namespace

STREAMPLUG_PLUGIN("countPlusOne", "1.0.0", "function:countPlusOne", describe)
