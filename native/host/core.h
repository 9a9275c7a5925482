// The host's side of the plugin contract, free of Node: a loaded library, the per-instance
// context (`sp_ctx`), memory accounting and the routine table handed to plugins.
#ifndef STREAMPLUG_HOST_CORE_H
#define STREAMPLUG_HOST_CORE_H

#include <streamplug/plugin.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <unordered_map>

namespace streamplug {

// Bytes a plugin holds through host->alloc. Never freed: a block may be freed after its library
// was unloaded, and its header still points here.
struct MemoryAccount {
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> blocks{0};
};

struct Library;

}  // namespace streamplug

// The opaque context of plugin.h: one function instance in one rule, or the plugin itself (init).
struct sp_ctx {
  streamplug::Library *lib = nullptr;
  int function = -1;  // index into the descriptor's functions; -1 for the plugin-wide ctx
  std::string rule_id;
  std::string error;
  bool error_set = false;
  bool closed = false;
  std::unordered_map<std::string, std::string> state;
};

namespace streamplug {

// A failure with a stable code from src/errors.ts, raised by the core and thrown to JS by the addon.
struct Failure {
  std::string code;
  std::string message;
  bool failed() const { return !code.empty(); }
};

struct Library {
  std::string path;
  void *handle = nullptr;
  const sp_plugin_descriptor *desc = nullptr;
  std::string name;      // copied: valid after dlclose, for messages
  std::string manifest;  // text of the .note.streamplug note as mapped
  void *plugin_data = nullptr;
  bool initialized = false;
  MemoryAccount *memory = new MemoryAccount();
  sp_ctx plugin_ctx;
  std::set<sp_ctx *> live;  // instance ctxs not yet closed

  bool open() const { return handle != nullptr; }
};

// dlopen + entry point + descriptor and manifest validation. No plugin hook runs.
Failure OpenLibrary(const std::string &path, Library *lib);
// Runs the optional init hook. On failure the library stays open: the caller closes it.
Failure InitLibrary(Library *lib);
// Closes every live ctx (close hooks), runs deinit when init succeeded, dlcloses.
// Returns whether the file is still mapped afterwards (STB_GNU_UNIQUE, or another reference).
bool CloseLibrary(Library *lib, size_t *closed_instances);
// True when `path` is currently mapped into this process.
bool IsMapped(const std::string &path);

sp_ctx *NewContext(Library *lib, int function, const std::string &rule_id);
// Runs the function's close hook once and drops the state. Safe on a closed library.
void CloseContext(sp_ctx *ctx);

const sp_host_api *HostApi();

// Marks the thread as running a hook of `lib`, so routines called with a NULL ctx (log, alloc)
// are attributed to it. Also clears the ctx's error before the hook.
class HookScope {
 public:
  HookScope(Library *lib, sp_ctx *ctx);
  ~HookScope();
 private:
  Library *previous_;
};

// Where plugin log lines go; set by the addon. Called from any thread.
struct LogLine {
  std::string plugin;
  std::string rule;
  int level;
  std::string message;
};
void SetLogSink(std::function<void(LogLine *)> sink);

MemoryAccount *UnattributedMemory();

// host->result_set_string, implemented beside the call path that owns the result storage.
sp_status ResultSetString(sp_result *result, size_t row, const char *text, size_t length);

}  // namespace streamplug

#endif
