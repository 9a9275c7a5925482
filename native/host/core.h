// The host's side of the plugin contract, free of Node: a loaded library, the per-instance
// context (`sp_ctx`), memory accounting and the routine table handed to plugins.
#ifndef STREAMPLUG_HOST_CORE_H
#define STREAMPLUG_HOST_CORE_H

#include <streamplug/plugin.h>

#include "config.h"
#include "tables.h"

#include <atomic>
#include <exception>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "journal.h"

namespace streamplug {

// Bytes a plugin holds through host->alloc. Outlives its library while blocks remain: a block may
// be freed after its library was unloaded, and its header still points here.
struct MemoryAccount {
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> blocks{0};
  // The library plus one per live block: whoever lets go last (library or block) deletes it.
  std::atomic<int64_t> holders{1};
  void Release() {
    if (holders.fetch_sub(1) == 1) delete this;
  }
};

struct Library;

}  // namespace streamplug

// The opaque context of plugin.h: one function instance in one rule, or the plugin itself (init).
struct sp_ctx {
  streamplug::Library *lib = nullptr;
  int function = -1;  // index into the descriptor's functions; -1 for the plugin-wide ctx
  std::string rule_id;
  uint32_t journal_rule = 0;  // rule_id interned in the crash journal (journal.h)
  std::string error;
  bool error_set = false;
  bool closed = false;
  std::unordered_map<std::string, std::string> state;
  // Sources and sinks (io.h): the instance behind this ctx. Function ctxs keep the defaults.
  int io_kind = 0;  // 0 function/plugin, 1 source, 2 sink
  void *io = nullptr;
  // Contract 1.3 config_*: the instance's config text (owned by the instance or the validate
  // call), parsed on the first config_* call; the first type error, which fails validate/open.
  const std::string *config_text = nullptr;
  std::shared_ptr<streamplug::ConfigObject> config;
  std::string config_error;
};

namespace streamplug {

// A failure with a stable code from src/errors.ts, raised by the core and thrown to JS by the addon.
struct Failure {
  std::string code;
  std::string message;
  bool failed() const { return !code.empty(); }
};

struct Library : std::enable_shared_from_this<Library> {
  std::string path;
  void *handle = nullptr;
  const sp_plugin_descriptor *desc = nullptr;
  std::string name;      // copied: valid after dlclose, for messages
  std::string manifest;  // text of the .note.streamplug note as mapped
  void *plugin_data = nullptr;
  bool initialized = false;
  uint16_t journal_id = 0;  // this file in the crash journal's plugin table
  MemoryAccount *memory = new MemoryAccount();
  sp_ctx plugin_ctx;
  std::set<sp_ctx *> live;  // instance ctxs not yet closed
  // Source/sink threads still alive (io.cc). While any is, CloseLibrary keeps the code mapped:
  // a hook abandoned after a close timeout may still be running in it.
  std::atomic<int> io_busy{0};

  // Entry sizes of the descriptor's tables as the plugin declared them (entry 0's `size`), set by
  // OpenLibrary once validated. Every table access goes through the accessors below.
  size_t function_stride = sizeof(sp_function_def);
  size_t source_stride = sizeof(sp_source_def);
  size_t sink_stride = sizeof(sp_sink_def);

  const sp_function_def &Function(size_t i) const { return TableEntry(desc->functions, function_stride, i); }
  const sp_source_def &Source(size_t i) const { return TableEntry(desc->sources, source_stride, i); }
  const sp_sink_def &Sink(size_t i) const { return TableEntry(desc->sinks, sink_stride, i); }

  bool open() const { return handle != nullptr; }
  ~Library() { memory->Release(); }
};

// Source and sink tables of a descriptor: empty for a 1.0 descriptor, whose size stops before them.
inline size_t NumSources(const sp_plugin_descriptor *d) {
  return d != nullptr && SP_HAS_FIELD(d, sp_plugin_descriptor, sources) ? d->n_sources : 0;
}
inline size_t NumSinks(const sp_plugin_descriptor *d) {
  return d != nullptr && SP_HAS_FIELD(d, sp_plugin_descriptor, sinks) ? d->n_sinks : 0;
}

// Libraries opened by OpenLibrary and not yet closed, by path: how the source/sink classes reach
// a library the JS side holds (LibraryWrap keeps it in a shared_ptr). Null when absent.
std::shared_ptr<Library> FindLibrary(const std::string &path);

// dlopen + entry point + descriptor and manifest validation. No plugin hook runs.
// `label` names the file in the crash journal until the descriptor is read (the install name).
Failure OpenLibrary(const std::string &path, Library *lib, const std::string &label = "");
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

// The library whose hook this thread is running (HookScope), for routines called with a NULL ctx.
// initial-exec: the addon is dlopen'ed, so the default (global-dynamic) model costs a
// __tls_get_addr call per access. One pointer fits the static TLS surplus glibc keeps for
// dlopen'ed libraries. __thread, not thread_local: a C++ extern thread_local is reached through
// a TLS wrapper call in other files, __thread (constant-initialised only) directly. Defined in
// host_api.cc.
extern __thread Library *current_library __attribute__((tls_model("initial-exec")));

// Marks the thread as running `hook` of `lib`: in the crash journal (one store), and for routines
// called with a NULL ctx (log, alloc), which are attributed to it. Also clears the ctx's error
// before the hook. Inline: it brackets every plugin call, the scalar path included, where two
// out-of-line calls showed.
class HookScope {
 public:
  HookScope(Library *lib, sp_ctx *ctx, Hook hook)
      : journal_(lib->journal_id, hook, ctx != nullptr ? ctx->journal_rule : 0), previous_(current_library) {
    current_library = lib;
    // Every reader of ctx->error checks error_set first: the common clean case writes nothing.
    if (ctx != nullptr && ctx->error_set) ClearError(ctx);
  }
  ~HookScope() { current_library = previous_; }
  HookScope(const HookScope &) = delete;
  HookScope &operator=(const HookScope &) = delete;

 private:
  static void ClearError(sp_ctx *ctx);  // out of line: rare, and std::string code is large
  JournalScope journal_;
  Library *previous_;
};

// A C++ exception escaped a hook: the text every report of it uses, and where it goes. With a ctx
// the hook fails with SP_ERROR and this as its error; without one (deinit) it is logged.
std::string ThrownText(const Library *lib, Hook hook, const char *what);
void ReportThrown(Library *lib, sp_ctx *ctx, Hook hook, const char *what, bool log);

// Runs a hook returning sp_status inside a HookScope, catching C++ exceptions as a last resort
// (hooks must not throw; plugin.h). A try block costs nothing until something throws.
template <class F>
inline sp_status RunHook(Library *lib, sp_ctx *ctx, Hook hook, F &&f, bool log = false) noexcept {
  HookScope scope(lib, ctx, hook);
  try {
    return f();
  } catch (const std::exception &e) {
    ReportThrown(lib, ctx, hook, e.what(), log || ctx == nullptr);
  } catch (...) {
    ReportThrown(lib, ctx, hook, "an exception not derived from std::exception", log || ctx == nullptr);
  }
  return SP_ERROR;
}

// The same for hooks returning nothing (close, deinit, a source's run): false when one threw.
template <class F>
inline bool RunVoidHook(Library *lib, sp_ctx *ctx, Hook hook, F &&f) noexcept {
  return RunHook(
             lib, ctx, hook,
             [&]() {
               f();
               return SP_OK;
             },
             true) == SP_OK;
}

// Where plugin log lines go; set by the addon. Called from any thread.
struct LogLine {
  std::string plugin;
  std::string rule;
  int level;
  std::string message;
};
void SetLogSink(std::function<void(LogLine *)> sink);

MemoryAccount *UnattributedMemory();

// Contract 1.1 routines (source_push, row_*, stopping, set_status, source_push_many), implemented in io.cc.
sp_status IoSourcePush(sp_ctx *ctx, const void *data, size_t length);
sp_status IoSourcePushMany(sp_ctx *ctx, const char *data, const uint32_t *offsets, size_t count, size_t *accepted);
sp_row *IoRowBegin(sp_ctx *ctx);
void IoRowInt64(sp_row *row, const char *field, int64_t value);
void IoRowFloat64(sp_row *row, const char *field, double value);
void IoRowBool(sp_row *row, const char *field, int value);
void IoRowString(sp_row *row, const char *field, const char *text, size_t length);
void IoRowNull(sp_row *row, const char *field);
sp_status IoRowPush(sp_row *row);
void IoRowDiscard(sp_row *row);
int IoStopping(sp_ctx *ctx);
void IoSetStatus(sp_ctx *ctx, int state, const char *message);

// host->result_set_string, implemented beside the call path that owns the result storage.
sp_status ResultSetString(sp_result *result, size_t row, const char *text, size_t length);

}  // namespace streamplug

#endif
