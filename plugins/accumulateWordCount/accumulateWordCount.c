/*
 * accumulateWordCount(col string, sep string literal): splits col by sep, adds the number of parts
 * to the rule's running total "allwordcount" and returns that total (int64). A null col leaves the
 * total alone and gives null. eKuiper's `accumulateWordCount` sample, as a streamplug C plugin:
 * the total lives in the host's per-rule state, so two rules count separately.
 */
#include <streamplug/plugin.h>
#include <string.h>

#define STATE_KEY "allwordcount"

static const sp_host_api *host;

/* Parts of text[0..len) split by sep, as Go's strings.Split counts them: an empty sep splits
 * into UTF-8 code points. */
static int64_t count_parts(const char *text, size_t len, const char *sep, size_t seplen) {
  int64_t parts = 1;
  size_t i = 0;
  if (seplen == 0) {
    parts = 0;
    for (i = 0; i < len; i++) {
      if (((unsigned char)text[i] & 0xC0u) != 0x80u) parts++;
    }
    return parts;
  }
  while (i + seplen <= len) {
    if (memcmp(text + i, sep, seplen) == 0) {
      parts++;
      i += seplen;
    } else {
      i++;
    }
  }
  return parts;
}

static sp_status accumulate_call(const sp_call *call) {
  const sp_column *col = &call->args[0];
  const sp_column *sep = &call->args[1];
  int64_t *out = (int64_t *)call->result->values;
  int64_t total = 0;
  const void *saved;
  size_t saved_len;
  size_t i;

  if (host->state_get(call->ctx, STATE_KEY, &saved, &saved_len)) {
    if (saved_len != sizeof total) {
      host->set_error(call->ctx, "accumulateWordCount: state \"allwordcount\" is not an int64; "
                                 "restart the rule to reset it");
      return SP_ERROR;
    }
    memcpy(&total, saved, sizeof total);
  }
  for (i = 0; i < call->nrows; i++) {
    if ((col->nulls && col->nulls[i]) || (sep->nulls && sep->nulls[i])) {
      call->result->nulls[i] = 1;
      continue;
    }
    total += count_parts(col->data + col->offsets[i], col->offsets[i + 1] - col->offsets[i],
                         sep->data + sep->offsets[i], sep->offsets[i + 1] - sep->offsets[i]);
    out[i] = total;
  }
  if (host->state_put(call->ctx, STATE_KEY, &total, sizeof total) != SP_OK) {
    host->set_error(call->ctx, "accumulateWordCount: the host refused to store state "
                               "\"allwordcount\"; check the host log");
    return SP_ERROR;
  }
  return SP_OK;
}

static sp_status accumulate_validate(sp_ctx *ctx, const sp_arg_info *args, size_t nargs) {
  if (nargs == 2 && args[1].is_literal && args[1].literal_text && args[1].literal_text[0] == '\0') {
    host->set_error(ctx, "accumulateWordCount: the separator is empty; expected a non-empty string "
                         "literal such as ','");
    return SP_ERROR;
  }
  return SP_OK;
}

static sp_status accumulate_init(const sp_host_api *api, sp_ctx *ctx, void **plugin_data) {
  (void)plugin_data;
  host = api;
  host->log(ctx, SP_LOG_INFO, "accumulateWordCount 1.0.0 ready: accumulateWordCount(col, sep)");
  return SP_OK;
}

static const uint32_t arg_types[] = {SP_TYPE_STRING, SP_TYPE_STRING};
static const uint32_t arg_flags[] = {0, SP_ARG_LITERAL};

static const sp_function_def functions[] = {
  SP_FUNCTION_DEF("accumulateWordCount", SP_FUNCTION_SCALAR, SP_FUNCTION_STATEFUL, 2, 2, arg_types,
                  arg_flags, SP_TYPE_INT64, accumulate_call, accumulate_validate, NULL),
};

static void describe(sp_plugin_descriptor *d) {
  d->init = accumulate_init;
  d->functions = functions;
  d->n_functions = sizeof functions / sizeof functions[0];
}

STREAMPLUG_PLUGIN("accumulateWordCount", "1.0.0", "function:accumulateWordCount", describe)
