// Loading off the JavaScript thread: dlopen (and the plugin's constructors) and init run on a
// thread of their own, so a plugin that sleeps or loops there never freezes REST, /ping or the
// embedded broker. A dedicated thread, not the libuv pool: a load that never returns would keep a
// pool thread forever, and the pool also serves the file system. The JS side gives up after
// loadTimeoutMs (src/plugins/native-plugin.ts); such a thread is abandoned, never killed.
#include <thread>

#include "addon.h"

namespace streamplug {

namespace {

struct LoadJob {
  std::shared_ptr<Library> lib;
  Failure failure;
  bool open = false;  // openAsync (resolves with a NativeLibrary) or initAsync (resolves undefined)
  napi_deferred deferred = nullptr;
  Napi::ThreadSafeFunction tsfn;
};

// On the JS thread. Raw Node-API with every status checked: at environment teardown these calls
// fail, and node-addon-api would turn such a failure into a fatal error (C++ exceptions are off).
void Settle(Napi::Env env, Napi::Function, LoadJob *job) {
  if (env != nullptr) {
    napi_value value = nullptr;
    if (job->failure.failed()) {
      value = MakeError(env, job->failure.code, job->failure.message);
    } else if (job->open) {
      value = LibraryWrap::Wrap(env, job->lib);
    } else {
      napi_get_undefined(env, &value);
    }
    if (env.IsExceptionPending()) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    if (value != nullptr) {
      if (job->failure.failed()) {
        napi_reject_deferred(env, job->deferred, value);
      } else {
        napi_resolve_deferred(env, job->deferred, value);
      }
    }
  }
  delete job;
}

// Runs `work` on a new detached thread and settles the job's promise on the JS thread. The pending
// load keeps the process alive, like any I/O in flight; a host that stops exits regardless.
template <class Work>
Napi::Value Start(Napi::Env env, LoadJob *job, Work work) {
  napi_value promise;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    delete job;
    return Throw(env, "E_INTERNAL", "cannot create a promise for the load");
  }
  job->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo &) {}),
                                            "streamplug-load", 0, 1);
  std::thread([job, work]() {
    work(job);
    Napi::ThreadSafeFunction tsfn = job->tsfn;
    if (tsfn.BlockingCall(job, Settle) != napi_ok) delete job;  // the environment is gone
    tsfn.Release();
  }).detach();
  return Napi::Value(env, promise);
}

}  // namespace

Napi::Value LibraryWrap::OpenAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return Throw(env, "E_USAGE", "openAsync(path, label?): expected an absolute path string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const std::string label = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  auto *job = new LoadJob();
  job->lib = std::make_shared<Library>();
  job->open = true;
  return Start(env, job, [path, label](LoadJob *j) {
    j->failure = OpenLibrary(path, j->lib.get(), label);
    if (j->failure.failed()) CloseLibrary(j->lib.get(), nullptr);  // never initialised: dlclose only
  });
}

Napi::Value LibraryWrap::InitAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!lib_->open()) return Throw(env, "E_PLUGIN_NOT_LOADED", "plugin " + lib_->name + " was unloaded; load it again");
  if (lib_->initialized) return Throw(env, "E_PLUGIN_LOADED", "plugin " + lib_->name + " is already initialised");
  auto *job = new LoadJob();
  job->lib = lib_;
  return Start(env, job, [](LoadJob *j) { j->failure = InitLibrary(j->lib.get()); });
}

}  // namespace streamplug
