// Module entry: wires the classes, the error factory and the plugin log sink.
#include "addon.h"
#include "io_wrap.h"
#include "manifest.h"

namespace streamplug {

size_t TypeWidth(uint32_t type) {
  switch (type) {
    case SP_TYPE_BOOL: return 1;
    case SP_TYPE_INT64: return 8;
    case SP_TYPE_FLOAT64: return 8;
    default: return 0;
  }
}

Napi::Value Throw(Napi::Env env, const std::string &code, const std::string &message) {
  if (env.IsExceptionPending()) return env.Undefined();
  Napi::Value error = MakeError(env, code, message);
  if (env.IsExceptionPending()) return env.Undefined();
  napi_throw(env, error);
  return env.Undefined();
}

Napi::Value MakeError(Napi::Env env, const std::string &code, const std::string &message) {
  auto *data = env.GetInstanceData<AddonData>();
  Napi::Value error;
  if (data != nullptr && !data->error_factory.IsEmpty()) {
    error = data->error_factory.Call({Napi::String::New(env, code), Napi::String::New(env, message)});
    if (env.IsExceptionPending()) return env.Undefined();
  }
  if (error.IsEmpty() || !error.IsObject()) {
    Napi::Error plain = Napi::Error::New(env, message);
    plain.Set("code", Napi::String::New(env, code));
    error = plain.Value();
  }
  return error;
}

namespace {

Napi::ThreadSafeFunction log_tsfn;
bool log_tsfn_set = false;

void DeliverLog(Napi::Env env, Napi::Function fn, LogLine *line) {
  // Raw calls: at environment teardown a call into JS fails, and node-addon-api would turn that
  // failure into a fatal error with C++ exceptions disabled. A lost log line is fine then.
  if (env != nullptr && fn != nullptr) {
    napi_value o, v, undefined, result;
    if (napi_create_object(env, &o) == napi_ok) {
      napi_create_string_utf8(env, line->plugin.data(), line->plugin.size(), &v);
      napi_set_named_property(env, o, "plugin", v);
      napi_create_string_utf8(env, line->rule.data(), line->rule.size(), &v);
      napi_set_named_property(env, o, "rule", v);
      napi_create_int32(env, line->level, &v);
      napi_set_named_property(env, o, "level", v);
      napi_create_string_utf8(env, line->message.data(), line->message.size(), &v);
      napi_set_named_property(env, o, "message", v);
      napi_get_undefined(env, &undefined);
      if (napi_call_function(env, undefined, fn, 1, &o, &result) == napi_pending_exception) {
        napi_value error;
        napi_get_and_clear_last_exception(env, &error);  // a throwing sink must not crash the host
      }
    }
  }
  delete line;
}

void StopLog() {
  SetLogSink(nullptr);
  if (log_tsfn_set) {
    log_tsfn.Release();
    log_tsfn_set = false;
  }
}

// setLogSink(fn): plugin log lines, from any thread, reach fn on the JS thread, in order.
Napi::Value SetLogSinkJs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  StopLog();
  if (info.Length() < 1 || !info[0].IsFunction()) return env.Undefined();
  log_tsfn = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "streamplug-plugin-log", 0, 1);
  log_tsfn.Unref(env);  // plugin logs never keep the process alive
  log_tsfn_set = true;
  SetLogSink([](LogLine *line) {
    if (log_tsfn.NonBlockingCall(line, DeliverLog) != napi_ok) delete line;
  });
  return env.Undefined();
}

Napi::Value SetErrorFactory(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    return Throw(env, "E_USAGE", "setErrorFactory(fn): expected a function (code, message) => Error");
  }
  env.GetInstanceData<AddonData>()->error_factory = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Value HostInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("contractMajor", STREAMPLUG_CONTRACT_MAJOR);
  o.Set("contractMinor", STREAMPLUG_CONTRACT_MINOR);
  o.Set("entryName", STREAMPLUG_ENTRY_NAME);
  return o;
}

Napi::Value UnattributedMemoryJs(const Napi::CallbackInfo &info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("bytes", static_cast<double>(UnattributedMemory()->bytes.load()));
  o.Set("blocks", static_cast<double>(UnattributedMemory()->blocks.load()));
  return o;
}

Napi::Value IsMappedJs(const Napi::CallbackInfo &info) {
  if (info.Length() < 1 || !info[0].IsString()) return Throw(info.Env(), "E_USAGE", "isMapped(path): expected a path string");
  return Napi::Boolean::New(info.Env(), IsMapped(info[0].As<Napi::String>().Utf8Value()));
}

}  // namespace

// parseManifest(bytes: Buffer) -> { fields } | { error }: the loader's manifest parser, so the
// check's parser and this one run the same test vectors (test/fixtures/manifest-vectors.json).
Napi::Value ParseManifestJs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) return Throw(env, "E_USAGE", "parseManifest(bytes): expected a Buffer");
  auto bytes = info[0].As<Napi::Buffer<char>>();
  ParsedManifest m = ParseManifestText(bytes.Data(), bytes.Length());
  Napi::Object out = Napi::Object::New(env);
  if (!m.ok()) {
    out.Set("error", m.error);
    return out;
  }
  Napi::Object fields = Napi::Object::New(env);
  for (const auto &kv : m.fields) fields.Set(kv.first, kv.second);
  out.Set("fields", fields);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto *data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  data->library_ctor = Napi::Persistent(LibraryWrap::Define(env));
  data->instance_ctor = Napi::Persistent(FunctionInstanceWrap::Define(env));
  data->frame_ctor = Napi::Persistent(FrameWrap::Define(env));
  env.AddCleanupHook(StopLog);
  exports.Set("open", Napi::Function::New(env, LibraryWrap::Open, "open"));
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory, "setErrorFactory"));
  exports.Set("setLogSink", Napi::Function::New(env, SetLogSinkJs, "setLogSink"));
  exports.Set("hostInfo", Napi::Function::New(env, HostInfo, "hostInfo"));
  exports.Set("unattributedMemory", Napi::Function::New(env, UnattributedMemoryJs, "unattributedMemory"));
  exports.Set("isMapped", Napi::Function::New(env, IsMappedJs, "isMapped"));
  exports.Set("openAsync", Napi::Function::New(env, LibraryWrap::OpenAsync, "openAsync"));
  exports.Set("journalOpen", Napi::Function::New(env, JournalOpenJs, "journalOpen"));
  exports.Set("parseManifest", Napi::Function::New(env, ParseManifestJs, "parseManifest"));
  InitIo(env, exports);
  InitChannel(env, exports);  // channel_wrap.cc: isolated workers
  return exports;
}

}  // namespace streamplug

static Napi::Object InitStreamplugHost(Napi::Env env, Napi::Object exports) { return streamplug::Init(env, exports); }

NODE_API_MODULE(streamplug_host, InitStreamplugHost)
