// The routine table plugins call (sp_host_api), and the per-ctx state behind it.
#include "core.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace streamplug {

// Declared (initial-exec, with the reason) in core.h beside HookScope, which sets it inline.
__thread Library *current_library __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

std::mutex log_mutex;
std::function<void(LogLine *)> log_sink;

MemoryAccount unattributed;

// Every block starts with this header so free() knows whom to credit, whatever thread frees it.
struct alignas(16) BlockHeader {
  MemoryAccount *account;
  size_t bytes;
};

Library *LibraryOf(sp_ctx *ctx) { return ctx != nullptr ? ctx->lib : current_library; }

void HostSetError(sp_ctx *ctx, const char *message);

// The first config error sticks (it fails validate/open); each is also the hook's error.
void ConfigFail(sp_ctx *ctx, const std::string &message) {
  if (ctx->config_error.empty()) ctx->config_error = message;
  HostSetError(ctx, message.c_str());
}

void HostLog(sp_ctx *ctx, int level, const char *message) {
  Library *lib = LibraryOf(ctx);
  auto *line = new LogLine{lib != nullptr ? lib->name : std::string("?"),
                           ctx != nullptr ? ctx->rule_id : std::string(), level,
                           message != nullptr ? message : ""};
  std::lock_guard<std::mutex> lock(log_mutex);
  if (log_sink) {
    log_sink(line);  // the sink owns the line from here
  } else {
    delete line;
  }
}

void HostSetError(sp_ctx *ctx, const char *message) {
  if (ctx == nullptr) return;
  // NULL is a plugin bug, but the rule still deserves a non-empty reason.
  ctx->error = message != nullptr ? message : "plugin gave no reason";
  ctx->error_set = true;
}

void *HostAlloc(size_t bytes) {
  if (bytes > SIZE_MAX - sizeof(BlockHeader)) return nullptr;
  auto *header = static_cast<BlockHeader *>(std::malloc(sizeof(BlockHeader) + bytes));
  if (header == nullptr) return nullptr;
  Library *lib = current_library;
  header->account = lib != nullptr ? lib->memory : &unattributed;
  header->bytes = bytes;
  header->account->bytes += static_cast<int64_t>(bytes);
  header->account->blocks += 1;
  header->account->holders += 1;
  return header + 1;
}

void HostFree(void *ptr) {
  if (ptr == nullptr) return;
  auto *header = static_cast<BlockHeader *>(ptr) - 1;
  header->account->bytes -= static_cast<int64_t>(header->bytes);
  header->account->blocks -= 1;
  header->account->Release();
  std::free(header);
}

int HostStateGet(sp_ctx *ctx, const char *key, const void **value, size_t *length) {
  if (ctx == nullptr || key == nullptr) return 0;
  auto it = ctx->state.find(key);
  if (it == ctx->state.end()) return 0;
  if (value != nullptr) *value = it->second.data();
  if (length != nullptr) *length = it->second.size();
  return 1;
}

sp_status HostStatePut(sp_ctx *ctx, const char *key, const void *value, size_t length) {
  if (ctx == nullptr || key == nullptr || (value == nullptr && length > 0)) {
    HostSetError(ctx, "state_put: key and value must not be NULL");
    return SP_ERROR;
  }
  if (std::strncmp(key, kReservedStatePrefix, std::strlen(kReservedStatePrefix)) == 0) {
    HostSetError(ctx, (std::string("state_put: key \"") + key + "\" is reserved to the host (prefix " +
                       kReservedStatePrefix + "); choose another key").c_str());
    return SP_ERROR;
  }
  ctx->state[key].assign(static_cast<const char *>(value), length);
  return SP_OK;
}

void HostStateDelete(sp_ctx *ctx, const char *key) {
  if (ctx != nullptr && key != nullptr) ctx->state.erase(key);
}

void *HostPluginData(sp_ctx *ctx) {
  Library *lib = LibraryOf(ctx);
  return lib != nullptr ? lib->plugin_data : nullptr;
}

const char *HostRuleId(sp_ctx *ctx) { return ctx != nullptr ? ctx->rule_id.c_str() : ""; }

// ---- contract 1.3: typed configuration ---------------------------------------------------------

// The instance's parsed config, read on first use; null for a ctx without one (functions).
const ConfigObject *ConfigOf(sp_ctx *ctx) {
  if (ctx == nullptr || ctx->config_text == nullptr) return nullptr;
  if (!ctx->config) {
    ctx->config = std::make_shared<ConfigObject>(ParseConfig(ctx->config_text->data(), ctx->config_text->size()));
    if (!ctx->config->error.empty()) ConfigFail(ctx, ctx->config->error);
  }
  return ctx->config.get();
}

// The value under `key`, or null when absent, JSON null, or the config is unreadable.
const ConfigValue *ConfigFind(sp_ctx *ctx, const char *key) {
  const ConfigObject *config = ConfigOf(ctx);
  if (config == nullptr || key == nullptr) return nullptr;
  auto it = config->keys.find(key);
  if (it == config->keys.end() || it->second.kind == ConfigValue::kNull) return nullptr;
  return &it->second;
}

// A wrong type: the message names the key, what the plugin asked for and what the config holds.
void ConfigWrongType(sp_ctx *ctx, const char *key, const char *expected, const ConfigValue &found) {
  std::string shown = found.raw.size() > 40 ? found.raw.substr(0, 40) + "…" : found.raw;
  std::string message = std::string("config key \"") + key + "\": expected " + expected + ", found " +
                        ConfigKindName(found) + " " + shown;
  if (found.kind == ConfigValue::kNumber && !found.integral && found.raw.find_first_of(".eE") == std::string::npos)
    message += " (outside int64)";
  ConfigFail(ctx, message + "; fix the property in the stream or action definition");
}

const char *HostConfigString(sp_ctx *ctx, const char *key, const char *fallback, size_t *length) {
  const ConfigValue *v = ConfigFind(ctx, key);
  if (v != nullptr && v->kind == ConfigValue::kString) {
    if (length != nullptr) *length = v->text.size();
    return v->text.c_str();
  }
  if (v != nullptr) ConfigWrongType(ctx, key, "a string", *v);
  if (length != nullptr) *length = fallback != nullptr ? std::strlen(fallback) : 0;
  return fallback;
}

int64_t HostConfigInt64(sp_ctx *ctx, const char *key, int64_t fallback) {
  const ConfigValue *v = ConfigFind(ctx, key);
  if (v != nullptr && v->kind == ConfigValue::kNumber && v->integral) return v->integer;
  if (v != nullptr) ConfigWrongType(ctx, key, "an integer (int64)", *v);
  return fallback;
}

double HostConfigDouble(sp_ctx *ctx, const char *key, double fallback) {
  const ConfigValue *v = ConfigFind(ctx, key);
  if (v != nullptr && v->kind == ConfigValue::kNumber) return v->number;
  if (v != nullptr) ConfigWrongType(ctx, key, "a number", *v);
  return fallback;
}

int HostConfigBool(sp_ctx *ctx, const char *key, int fallback) {
  const ConfigValue *v = ConfigFind(ctx, key);
  if (v != nullptr && v->kind == ConfigValue::kBool) return v->boolean ? 1 : 0;
  if (v != nullptr) ConfigWrongType(ctx, key, "a boolean (true or false)", *v);
  return fallback;
}

const char *HostConfigJson(sp_ctx *ctx, const char *key, size_t *length) {
  const ConfigValue *v = ConfigFind(ctx, key);
  if (length != nullptr) *length = v != nullptr ? v->raw.size() : 0;
  return v != nullptr ? v->raw.c_str() : nullptr;
}

const sp_host_api host_api = {
    static_cast<uint32_t>(sizeof(sp_host_api)),
    STREAMPLUG_CONTRACT_MAJOR,
    STREAMPLUG_CONTRACT_MINOR,
    HostLog,
    HostSetError,
    HostAlloc,
    HostFree,
    HostStateGet,
    HostStatePut,
    HostStateDelete,
    ResultSetString,
    HostPluginData,
    HostRuleId,
    IoSourcePush,
    IoRowBegin,
    IoRowInt64,
    IoRowFloat64,
    IoRowBool,
    IoRowString,
    IoRowNull,
    IoRowPush,
    IoRowDiscard,
    IoStopping,
    IoSetStatus,
    IoSourcePushMany,
    HostConfigString,
    HostConfigInt64,
    HostConfigDouble,
    HostConfigBool,
    HostConfigJson,
};

}  // namespace

const sp_host_api *HostApi() { return &host_api; }

MemoryAccount *UnattributedMemory() { return &unattributed; }

void SetLogSink(std::function<void(LogLine *)> sink) {
  std::lock_guard<std::mutex> lock(log_mutex);
  log_sink = std::move(sink);
}

std::string ThrownText(const Library *lib, Hook hook, const char *what) {
  const std::string name = !lib->name.empty() ? lib->name : lib->path.substr(lib->path.rfind('/') + 1);
  return "plugin " + name + " threw a C++ exception in hook " + HookName(hook) + ": " + (what != nullptr ? what : "");
}

void ReportThrown(Library *lib, sp_ctx *ctx, Hook hook, const char *what, bool log) {
  try {
    const std::string text = ThrownText(lib, hook, what);
    if (ctx != nullptr) {
      ctx->error = text;
      ctx->error_set = true;
    }
    if (log) HostLog(ctx, SP_LOG_ERROR, text.c_str());
  } catch (...) {
    // out of memory while reporting: the hook still fails with SP_ERROR
  }
}

void HookScope::ClearError(sp_ctx *ctx) {
  ctx->error.clear();
  ctx->error_set = false;
}

sp_ctx *NewContext(Library *lib, int function, const std::string &rule_id) {
  auto *ctx = new sp_ctx();
  ctx->lib = lib;
  ctx->function = function;
  ctx->rule_id = rule_id;
  ctx->journal_rule = JournalRule(rule_id);
  lib->live.insert(ctx);
  return ctx;
}

void CloseContext(sp_ctx *ctx) {
  if (ctx->closed) return;
  ctx->closed = true;
  Library *lib = ctx->lib;
  if (lib->open() && ctx->function >= 0) {
    const sp_function_def &def = lib->Function(ctx->function);
    if (def.close != nullptr) RunVoidHook(lib, ctx, Hook::kClose, [&]() { def.close(ctx); });
  }
  ctx->state.clear();
  lib->live.erase(ctx);
}

}  // namespace streamplug
