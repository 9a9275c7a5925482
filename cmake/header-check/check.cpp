// Compiles the contract header as C++17 and expands every macro a plugin uses (the column
// accessors in their STREAMPLUG_DEBUG form; check.c has the plain one).
#define STREAMPLUG_DEBUG 1
#include <streamplug/plugin.h>

namespace {

const sp_host_api *check_host = nullptr;

sp_status check_call(const sp_call *call) noexcept {
  if (!sp_col_f64(check_host, call, 0) || !sp_col_str(check_host, call, 0)) return SP_ERROR;
  return call->nrows == call->ngroups ? SP_OK : SP_ERROR;
}

const uint32_t check_arg_types[] = {SP_TYPE_ANY};
const uint32_t check_arg_flags[] = {SP_ARG_LITERAL};
const sp_function_def check_functions[] = {
  SP_FUNCTION_DEF("check", SP_FUNCTION_SCALAR, SP_FUNCTION_STATEFUL, 1, 1, check_arg_types,
                  check_arg_flags, SP_TYPE_LIKE_ARG0, check_call, nullptr, nullptr),
};

void check_describe(sp_plugin_descriptor *d) {
  d->functions = check_functions;
  d->n_functions = sizeof check_functions / sizeof check_functions[0];
}

}  // namespace

// A second entry point in the same object library would clash at link time, but objects are
// never linked together: this target only compiles.
STREAMPLUG_PLUGIN("check", "0.0.0", "function:check", check_describe)

extern "C" int streamplug_header_check_cxx(const sp_host_api *host) {
  return SP_HAS_FIELD(host, sp_host_api, rule_id);
}
