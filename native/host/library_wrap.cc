// NativeLibrary: one dlopened plugin. open() validates without running plugin code beyond the
// entry point; init() runs the plugin's init; close() ends every instance and unloads.
#include <vector>

#include "addon.h"

namespace streamplug {

Napi::Function LibraryWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeLibrary",
                     {InstanceMethod<&LibraryWrap::Describe>("describe"), InstanceMethod<&LibraryWrap::Init>("init"),
                      InstanceMethod<&LibraryWrap::InitAsync>("initAsync"),
                      InstanceMethod<&LibraryWrap::NewInstance>("instance"),
                      InstanceMethod<&LibraryWrap::Validate>("validate"), InstanceMethod<&LibraryWrap::Close>("close"),
                      InstanceMethod<&LibraryWrap::Memory>("memory"), InstanceAccessor<&LibraryWrap::IsOpen>("isOpen")});
}

LibraryWrap::LibraryWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<LibraryWrap>(info) {}

Napi::Value LibraryWrap::Open(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return Throw(env, "E_USAGE", "open(path): expected an absolute path string");
  auto lib = std::make_shared<Library>();
  Failure failure = OpenLibrary(info[0].As<Napi::String>().Utf8Value(), lib.get());
  if (failure.failed()) {
    CloseLibrary(lib.get(), nullptr);  // never initialised: dlclose only
    return Throw(env, failure.code, failure.message);
  }
  return Wrap(env, lib);
}

Napi::Object LibraryWrap::Wrap(Napi::Env env, std::shared_ptr<Library> lib) {
  Napi::Object object = env.GetInstanceData<AddonData>()->library_ctor.New({});
  LibraryWrap::Unwrap(object)->lib_ = std::move(lib);
  return object;
}

static Napi::Array NumberArray(Napi::Env env, const uint32_t *values, size_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; ++i) a.Set(static_cast<uint32_t>(i), values != nullptr ? values[i] : 0u);
  return a;
}

Napi::Value LibraryWrap::Describe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!lib_->open()) return Throw(env, "E_PLUGIN_NOT_LOADED", "plugin " + lib_->name + " was unloaded; load it again to describe it");
  const sp_plugin_descriptor *d = lib_->desc;
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", d->name);
  o.Set("version", d->version);
  o.Set("contractMajor", d->contract_major);
  o.Set("contractMinor", d->contract_minor);
  o.Set("headerMinor", HeaderMinor(d));
  o.Set("compiler", d->build_compiler != nullptr ? d->build_compiler : "");
  o.Set("arch", d->build_arch != nullptr ? d->build_arch : "");
  o.Set("libc", d->build_libc != nullptr ? d->build_libc : "");
  o.Set("manifest", lib_->manifest);
  Napi::Array functions = Napi::Array::New(env, d->n_functions);
  for (size_t i = 0; i < d->n_functions; ++i) {
    const sp_function_def &f = lib_->Function(i);
    const size_t declared = f.max_args == 0 ? 0 : static_cast<size_t>(f.min_args > 1 ? f.min_args : 1);
    Napi::Object fo = Napi::Object::New(env);
    fo.Set("name", f.name);
    fo.Set("kind", f.kind);
    fo.Set("flags", f.flags);
    fo.Set("minArgs", f.min_args);
    fo.Set("maxArgs", f.max_args);
    fo.Set("argTypes", NumberArray(env, f.arg_types, declared));
    fo.Set("argFlags", NumberArray(env, f.arg_flags, declared));
    fo.Set("resultType", f.result_type);
    fo.Set("hasValidate", f.validate != nullptr);
    fo.Set("hasClose", f.close != nullptr);
    functions.Set(static_cast<uint32_t>(i), fo);
  }
  o.Set("functions", functions);
  return o;
}

Napi::Value LibraryWrap::Init(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!lib_->open()) return Throw(env, "E_PLUGIN_NOT_LOADED", "plugin " + lib_->name + " was unloaded; load it again");
  if (lib_->initialized) return Throw(env, "E_PLUGIN_LOADED", "plugin " + lib_->name + " is already initialised");
  Failure failure = InitLibrary(lib_.get());
  if (failure.failed()) return Throw(env, failure.code, failure.message);
  return env.Undefined();
}

Napi::Value LibraryWrap::NewInstance(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!lib_->open() || !lib_->initialized) {
    return Throw(env, "E_PLUGIN_NOT_LOADED", "plugin " + lib_->name + " is not loaded (unloaded, or init not run); load it first");
  }
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    return Throw(env, "E_USAGE", "instance(functionIndex, ruleId): expected a number and a string");
  }
  const int64_t index = info[0].As<Napi::Number>().Int64Value();
  if (index < 0 || static_cast<size_t>(index) >= lib_->desc->n_functions) {
    return Throw(env, "E_UNKNOWN_FUNCTION", "plugin " + lib_->name + " has no function #" + std::to_string(index));
  }
  Napi::Object object = env.GetInstanceData<AddonData>()->instance_ctor.New({});
  FunctionInstanceWrap::Unwrap(object)->instance =
      std::make_shared<Instance>(lib_, static_cast<int>(index), info[1].As<Napi::String>().Utf8Value());
  return object;
}

// validate(functionIndex, types: number[], literals: (string | null)[]): the function's validate
// hook, with a ctx of its own outside any rule. That ctx is not an instance: no close hook follows.
Napi::Value LibraryWrap::Validate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!lib_->open() || !lib_->initialized) {
    return Throw(env, "E_PLUGIN_NOT_LOADED", "plugin " + lib_->name + " is not loaded; load it first");
  }
  const int64_t index = info[0].As<Napi::Number>().Int64Value();
  if (index < 0 || static_cast<size_t>(index) >= lib_->desc->n_functions) {
    return Throw(env, "E_UNKNOWN_FUNCTION", "plugin " + lib_->name + " has no function #" + std::to_string(index));
  }
  const sp_function_def &def = lib_->Function(static_cast<size_t>(index));
  if (def.validate == nullptr) return env.Undefined();
  Napi::Array types = info[1].As<Napi::Array>();
  Napi::Array literals = info[2].As<Napi::Array>();
  const size_t n = types.Length();
  std::vector<std::string> texts(n);
  std::vector<sp_arg_info> args(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = static_cast<uint32_t>(i);
    Napi::Value literal = literals.Get(k);
    args[i].size = sizeof(sp_arg_info);
    args[i].type = types.Get(k).As<Napi::Number>().Uint32Value();
    args[i].is_literal = literal.IsString() ? 1 : 0;
    if (literal.IsString()) texts[i] = literal.As<Napi::String>().Utf8Value();
  }
  for (size_t i = 0; i < n; ++i) args[i].literal_text = args[i].is_literal ? texts[i].c_str() : nullptr;
  sp_ctx probe;
  probe.lib = lib_.get();
  probe.function = static_cast<int>(index);
  sp_status status;
  status = RunHook(lib_.get(), &probe, Hook::kValidate, [&]() { return def.validate(&probe, args.data(), n); });
  if (status != SP_OK) {
    const std::string reason = probe.error_set ? probe.error : "returned status " + std::to_string(static_cast<int>(status)) + " without calling set_error";
    return Throw(env, "E_VALIDATE_REFUSED", std::string("function ") + def.name + " (plugin " + lib_->name + ") validate failed: " + reason);
  }
  return env.Undefined();
}

Napi::Value LibraryWrap::Close(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  size_t closed = 0;
  const bool still_mapped = CloseLibrary(lib_.get(), &closed);
  Napi::Object o = Napi::Object::New(env);
  o.Set("closedInstances", static_cast<double>(closed));
  o.Set("stillMapped", still_mapped);
  return o;
}

Napi::Value LibraryWrap::Memory(const Napi::CallbackInfo &info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("bytes", static_cast<double>(lib_->memory->bytes.load()));
  o.Set("blocks", static_cast<double>(lib_->memory->blocks.load()));
  return o;
}

Napi::Value LibraryWrap::IsOpen(const Napi::CallbackInfo &info) {
  return Napi::Boolean::New(info.Env(), lib_->open() && lib_->initialized);
}

}  // namespace streamplug
