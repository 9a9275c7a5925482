// Contract 1.3 state versioning, shared by the in-process addon (instance_wrap.cc) and the isolated
// worker (native/worker): the stamp an exported state carries, and what an import of another
// version does (restore, migrate_state, or drop with a log line naming both versions).
#ifndef STREAMPLUG_HOST_STATE_VERSION_H
#define STREAMPLUG_HOST_STATE_VERSION_H

#include <cstdint>
#include <string>
#include <unordered_map>

#include "core.h"

namespace streamplug {

using StateMap = std::unordered_map<std::string, std::string>;

// The value an exported non-empty state carries under kStateVersionKey: the plugin's state_version
// in decimal, or "" for state_version 0 (its keys are exported alone, as before 1.3).
std::string StateStamp(const Library &lib);

struct StateImport {
  std::string error;    // a malformed stamp: nothing was changed (E_BAD_REQUEST)
  std::string outcome;  // "restored", "migrated" or "dropped"
  uint32_t from = 0;
  uint32_t to = 0;
  std::string message;  // logged under the plugin's name when not "restored"
};

// Replaces ctx's state with `state`, honouring the stamp against the plugin's state_version.
// Runs migrate_state (host thread, or the worker's) when the versions differ and the plugin has one.
StateImport ImportVersionedState(Library *lib, sp_ctx *ctx, StateMap state);

}  // namespace streamplug

#endif
