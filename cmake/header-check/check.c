/* Compiles the contract header as strict C99 (-pedantic) and expands every macro a plugin uses. */
#include <streamplug/plugin.h>

static const sp_host_api *check_host;

static sp_status check_call(const sp_call *call) {
  const double *x = sp_col_f64(check_host, call, 0);
  const sp_column *s = sp_col_str(check_host, call, 0);
  if (!x || !s || !sp_col_i64(check_host, call, 0) || !sp_col_bool(check_host, call, 0) || !sp_col_bytes(check_host, call, 0)) return SP_ERROR;
  return call->nrows == call->ngroups ? SP_OK : SP_ERROR;
}

static const uint32_t check_arg_types[] = {SP_TYPE_ANY};
static const uint32_t check_arg_flags[] = {SP_ARG_LITERAL};
static const sp_function_def check_functions[] = {
  SP_FUNCTION_DEF("check", SP_FUNCTION_SCALAR, SP_FUNCTION_STATEFUL, 1, 1, check_arg_types,
                  check_arg_flags, SP_TYPE_LIKE_ARG0, check_call, NULL, NULL),
};

static void check_describe(sp_plugin_descriptor *d) {
  d->functions = check_functions;
  d->n_functions = sizeof check_functions / sizeof check_functions[0];
}

STREAMPLUG_PLUGIN("check", "0.0.0", "function:check", check_describe)

int streamplug_header_check_c(const sp_host_api *host);
int streamplug_header_check_c(const sp_host_api *host) {
  return SP_HAS_FIELD(host, sp_host_api, rule_id);
}

/* The 1.2 additions: per-minor sizes, the arg_types length, the limits, the header minor. */
int streamplug_header_check_sizes(const sp_plugin_descriptor *d);
int streamplug_header_check_sizes(const sp_plugin_descriptor *d) {
  return (int)(SP_DESCRIPTOR_SIZE_1_0 + SP_DESCRIPTOR_SIZE_1_1 + SP_DESCRIPTOR_SIZE_1_2 + SP_FUNCTION_DEF_SIZE_1_0 +
               SP_SOURCE_DEF_SIZE_1_1 + SP_SINK_DEF_SIZE_1_1) +
         SP_ARG_TYPES_LENGTH(&check_functions[0]) + SP_MAX_NAME_LENGTH + SP_MAX_ARGS +
         (SP_HAS_FIELD(d, sp_plugin_descriptor, header_minor) ? (int)d->header_minor : 0);
}
