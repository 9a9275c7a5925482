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
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;
  explicit LoadJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

void Settle(Napi::Env env, Napi::Function, LoadJob *job) {
  if (env != nullptr) {
    if (job->failure.failed()) {
      job->deferred.Reject(MakeError(env, job->failure.code, job->failure.message));
    } else if (job->open) {
      job->deferred.Resolve(LibraryWrap::Wrap(env, job->lib));
    } else {
      job->deferred.Resolve(env.Undefined());
    }
  }
  delete job;
}

// Runs `work` on a new detached thread and settles the job's promise on the JS thread.
template <class Work>
Napi::Value Start(Napi::Env env, LoadJob *job, Work work) {
  Napi::Promise promise = job->deferred.Promise();
  job->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo &) {}),
                                            "streamplug-load", 0, 1);
  // A load that never returns must not keep the process alive: the caller's timer does until then.
  job->tsfn.Unref(env);
  std::thread([job, work]() {
    work(job);
    Napi::ThreadSafeFunction tsfn = job->tsfn;
    if (tsfn.BlockingCall(job, Settle) != napi_ok) delete job;  // the environment is gone
    tsfn.Release();
  }).detach();
  return promise;
}

}  // namespace

Napi::Value LibraryWrap::OpenAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return Throw(env, "E_USAGE", "openAsync(path, label?): expected an absolute path string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const std::string label = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  auto *job = new LoadJob(env);
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
  auto *job = new LoadJob(env);
  job->lib = lib_;
  return Start(env, job, [](LoadJob *j) { j->failure = InitLibrary(j->lib.get()); });
}

}  // namespace streamplug
