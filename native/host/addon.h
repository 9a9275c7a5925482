// The Node side of the host: JS classes over the core (one .cc per class) and error throwing.
#ifndef STREAMPLUG_HOST_ADDON_H
#define STREAMPLUG_HOST_ADDON_H

#include <napi.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "core.h"

namespace streamplug {

// Throws a StreamplugError made by the factory JS handed to setErrorFactory(), or a plain Error
// with a `code` property before that. Returns undefined for convenient `return Throw(...)`.
Napi::Value Throw(Napi::Env env, const std::string &code, const std::string &message);
// The same error object, not thrown (to reject a promise with).
Napi::Value MakeError(Napi::Env env, const std::string &code, const std::string &message);
// journalOpen(path) -> what the previous run left (journal_wrap.cc).
Napi::Value JournalOpenJs(const Napi::CallbackInfo &info);

// An instance ctx with shared ownership: JS instances and frames both keep it alive, and the
// library outlives every ctx made from it.
struct Instance {
  std::shared_ptr<Library> lib;
  sp_ctx *ctx = nullptr;
  Instance(std::shared_ptr<Library> l, int function, const std::string &rule);
  ~Instance();
  const sp_function_def &def() const { return lib->Function(ctx->function); }
  // A readable error for a failed hook: plugin, function, rule and the plugin's own reason.
  std::string FailureText(const char *hook, sp_status status) const;
};

class LibraryWrap : public Napi::ObjectWrap<LibraryWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit LibraryWrap(const Napi::CallbackInfo &info);
  static Napi::Value Open(const Napi::CallbackInfo &info);  // addon.open(path)
  // addon.openAsync(path, label): dlopen, constructors and the descriptor checks on a thread of
  // their own, so the JS thread (REST, /ping, the broker) keeps serving (async_load.cc).
  static Napi::Value OpenAsync(const Napi::CallbackInfo &info);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<Library> lib);

 private:
  Napi::Value Describe(const Napi::CallbackInfo &info);
  Napi::Value Init(const Napi::CallbackInfo &info);
  Napi::Value InitAsync(const Napi::CallbackInfo &info);  // init on its own thread (async_load.cc)
  Napi::Value NewInstance(const Napi::CallbackInfo &info);
  Napi::Value Validate(const Napi::CallbackInfo &info);
  Napi::Value Close(const Napi::CallbackInfo &info);
  Napi::Value Memory(const Napi::CallbackInfo &info);
  Napi::Value IsOpen(const Napi::CallbackInfo &info);
  std::shared_ptr<Library> lib_;
};

class FunctionInstanceWrap : public Napi::ObjectWrap<FunctionInstanceWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit FunctionInstanceWrap(const Napi::CallbackInfo &info);
  std::shared_ptr<Instance> instance;

 private:
  Napi::Value Call(const Napi::CallbackInfo &info);
  Napi::Value Frame(const Napi::CallbackInfo &info);
  Napi::Value ScalarEntry(const Napi::CallbackInfo &info);
  Napi::Value ExportState(const Napi::CallbackInfo &info);
  Napi::Value ImportState(const Napi::CallbackInfo &info);
  Napi::Value Close(const Napi::CallbackInfo &info);
};

struct FrameCore;  // frame_wrap.cc: buffers, prebuilt columns and the sp_call a frame reuses

// A frame object: typed-array views plus `run`/`timeNative`, plain Node-API functions whose data
// is the FrameCore (no ObjectWrap unwrap on the hot path).
class FrameWrap : public Napi::ObjectWrap<FrameWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit FrameWrap(const Napi::CallbackInfo &info);
  // Sets up buffers and prebuilt columns; returns false after throwing.
  bool Setup(Napi::Env env, std::shared_ptr<Instance> instance, size_t capacity,
             const std::vector<uint32_t> &arg_types, uint32_t result_type);

 private:
  Napi::Value Close(const Napi::CallbackInfo &info);
  std::shared_ptr<FrameCore> core_;
};

// Per-environment data: the constructors and the error factory.
struct AddonData {
  Napi::FunctionReference library_ctor;
  Napi::FunctionReference instance_ctor;
  Napi::FunctionReference frame_ctor;
  Napi::FunctionReference error_factory;
};

// channel_wrap.cc: openChannel(), the host end of an isolated worker's shared memory.
void InitChannel(Napi::Env env, Napi::Object exports);

size_t TypeWidth(uint32_t type);  // bytes per value of a fixed-width sp_type, 0 otherwise

// True when a null mask has any row set. Branch-free 64-byte blocks (the compiler vectorises the
// OR) with one test per block: ~30x faster than a byte loop, which compilers do not vectorise
// because of its early exit.
inline bool AnySet(const uint8_t *bytes, size_t n) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    uint64_t acc = 0;
    for (size_t k = 0; k < 64; k += 8) {
      uint64_t w;
      std::memcpy(&w, bytes + i + k, sizeof w);
      acc |= w;
    }
    if (acc != 0) return true;
  }
  uint8_t tail = 0;
  for (; i < n; ++i) tail |= bytes[i];
  return tail != 0;
}

}  // namespace streamplug

#endif
