#include "state_version.h"

#include <climits>
#include <cstdlib>

namespace streamplug {

std::string StateStamp(const Library &lib) {
  const uint32_t version = StateVersion(lib.desc);
  return version != 0 ? std::to_string(version) : std::string();
}

StateImport ImportVersionedState(Library *lib, sp_ctx *ctx, StateMap state) {
  StateImport r;
  auto stamp = state.find(kStateVersionKey);
  if (stamp != state.end()) {
    char *end = nullptr;
    const unsigned long parsed = std::strtoul(stamp->second.c_str(), &end, 10);
    if (stamp->second.empty() || end == nullptr || *end != '\0' || parsed > UINT32_MAX) {
      r.error = std::string("importState: ") + kStateVersionKey + " is '" + stamp->second +
                "', expected a decimal state version; drop the checkpoint";
      return r;
    }
    r.from = static_cast<uint32_t>(parsed);
    state.erase(stamp);
  }
  r.to = StateVersion(lib->desc);
  if (r.from == r.to || state.empty()) {  // same version, or nothing to carry over
    ctx->state = std::move(state);
    r.outcome = "restored";
    return r;
  }
  const char *function = ctx->function >= 0 ? lib->Function(ctx->function).name : "?";
  const std::string who = std::string("function ") + function + " (plugin " + lib->name +
                          (ctx->rule_id.empty() ? "" : ", rule " + ctx->rule_id) + ")";
  const auto migrate = MigrateState(lib->desc);
  const std::string from = std::to_string(r.from), to = std::to_string(r.to);
  if (migrate == nullptr) {
    ctx->state.clear();
    r.outcome = "dropped";
    r.message = who + ": checkpoint state of version " + from + " dropped: the plugin declares state version " + to +
                " and has no migrate_state hook; the function starts with no state";
  } else {
    ctx->state = std::move(state);
    const uint32_t f = r.from, t = r.to;
    const sp_status status = RunHook(lib, ctx, Hook::kMigrateState, [&]() { return migrate(ctx, function, f, t); });
    if (status == SP_OK) {
      r.outcome = "migrated";
      r.message = who + ": checkpoint state migrated from version " + from + " to " + to;
    } else {
      ctx->state.clear();
      r.outcome = "dropped";
      r.message = who + ": checkpoint state of version " + from + " dropped: migrate_state to version " + to + " failed: " +
                  (ctx->error_set ? ctx->error : std::string("returned an error without calling set_error")) +
                  "; the function starts with no state";
    }
  }
  HostApi()->log(ctx, r.outcome == "migrated" ? SP_LOG_INFO : SP_LOG_WARN, r.message.c_str());
  return r;
}

}  // namespace streamplug
