// NativeFrame: the hot path for fixed-width signatures. Argument and result arrays are views over
// memory allocated once; run(n) crosses with one integer, fills in lengths and calls the plugin.
//
// Null masks: plugin.h promises `nulls == NULL` when no value is null. The frame zeroes every
// mask, and JS can write one only after argNulls[i] handed it over: argNulls is an array of lazy
// getters, and the first read of index i makes mask i's Uint8Array and marks it exposed. run(n)
// hands the plugin NULL for a mask never exposed without reading it; an exposed mask, which JS may
// have written anywhere since the last run, it checks over rows [0, n) with AnySet (64-byte blocks,
// vectorised: ~9 ns per 1 KiB) and passes NULL when clean, the mask itself otherwise. An argument
// marked constant (setConstant) has all rows alike, so only row 0 of its mask is read.
//
// Lifetime: the FrameCore owns the memory; the frame object, `run`, `timeNative`, the argNulls
// array and every ArrayBuffer each hold a reference, so a typed array or an extracted `run` never
// outlives it.
#include <time.h>

#include <cstdlib>
#include <cstring>

#include "addon.h"

namespace streamplug {

struct FrameCore {
  napi_env env = nullptr;
  std::shared_ptr<Instance> instance;  // reset by close(): run() then throws E_INSTANCE_CLOSED
  size_t capacity = 0;
  std::vector<sp_column> args;
  std::vector<uint8_t *> arg_nulls;
  std::vector<uint8_t> nulls_exposed;  // 1 once argNulls[i] was handed to JS: only then can it hold a 1
  sp_result result{};
  uint32_t group_offsets[2] = {0, 0};
  sp_call call{};
  std::vector<void *> blocks;  // every buffer the views and pointers point into
  int64_t external_bytes = 0;

  ~FrameCore() {
    for (void *block : blocks) std::free(block);
    int64_t ignored;
    if (external_bytes != 0) napi_adjust_external_memory(env, -external_bytes, &ignored);
  }
};

namespace {

using CoreRef = std::shared_ptr<FrameCore>;

// Finalizer of every holder: the reference travels as the finalize hint.
void ReleaseCore(napi_env, void *, void *hint) { delete static_cast<CoreRef *>(hint); }

// Zeroed, 64-byte aligned memory owned by the core; adds the bytes taken to *total.
void *Allocate(FrameCore *core, size_t bytes, int64_t *total) {
  const size_t rounded = (bytes + 63) & ~static_cast<size_t>(63);
  void *data = std::aligned_alloc(64, rounded);
  if (data == nullptr) return nullptr;
  std::memset(data, 0, rounded);
  core->blocks.push_back(data);
  *total += static_cast<int64_t>(rounded);
  return data;
}

// Core memory as an ArrayBuffer that keeps the core alive.
bool ExposeBuffer(napi_env env, const CoreRef &core, void *data, size_t bytes, napi_value *buffer) {
  auto *hold = new CoreRef(core);
  if (napi_create_external_arraybuffer(env, data, bytes, ReleaseCore, hold, buffer) != napi_ok) {
    delete hold;
    return false;
  }
  return true;
}

bool NewBuffer(napi_env env, const CoreRef &core, size_t bytes, void **data, napi_value *buffer, int64_t *total) {
  *data = Allocate(core.get(), bytes, total);
  return *data != nullptr && ExposeBuffer(env, core, *data, bytes, buffer);
}

napi_value TypedOver(napi_env env, uint32_t type, size_t n, napi_value buffer) {
  napi_typedarray_type kind = type == SP_TYPE_FLOAT64 ? napi_float64_array
                              : type == SP_TYPE_INT64 ? napi_bigint64_array
                                                      : napi_uint8_array;
  napi_value out = nullptr;
  napi_create_typedarray(env, kind, n, buffer, 0, &out);
  return out;
}

double NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Checks the frame can run `nrows_value` rows and points the prebuilt call at them.
bool Prepare(napi_env env, FrameCore *f, napi_value nrows_value, size_t *nrows) {
  Napi::Env e(env);
  if (!f->instance) {
    Throw(e, "E_INSTANCE_CLOSED", "this frame was closed; prepare a new one");
    return false;
  }
  const Instance &instance = *f->instance;
  if (!instance.lib->open()) {
    Throw(e, "E_PLUGIN_NOT_LOADED", "plugin " + instance.lib->name + " was unloaded; its frames are gone");
    return false;
  }
  if (instance.ctx->closed) {
    Throw(e, "E_INSTANCE_CLOSED", std::string("the instance of ") + instance.def().name + " behind this frame was closed");
    return false;
  }
  int64_t n = -1;
  if (napi_get_value_int64(env, nrows_value, &n) != napi_ok) n = -1;
  if (n < 0 || static_cast<size_t>(n) > f->capacity) {
    Throw(e, "E_BAD_REQUEST", "run(nrows): nrows must be 0.." + std::to_string(f->capacity) + " (the frame's capacity)");
    return false;
  }
  *nrows = static_cast<size_t>(n);
  for (size_t i = 0; i < f->args.size(); ++i) {
    sp_column &col = f->args[i];
    const uint8_t *mask = f->arg_nulls[i];
    // A mask JS never had is still zero. A constant argument's rows are all alike, null-ness
    // included: row 0 decides, and its mask stays out of the cache like its values do.
    const bool any = f->nulls_exposed[i] != 0 &&
                     (col.is_constant ? *nrows > 0 && mask[0] != 0 : AnySet(mask, *nrows));
    col.length = *nrows;
    col.nulls = any ? mask : nullptr;
  }
  f->call.nrows = *nrows;
  if (f->call.group_offsets != nullptr) {
    f->group_offsets[1] = static_cast<uint32_t>(*nrows);  // the whole frame is one group
    f->call.ngroups = 1;
  } else {
    f->call.ngroups = *nrows;
  }
  f->result.length = f->call.ngroups;
  return true;
}

// run(nrows)
napi_value Run(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value nrows_value;
  void *data;
  if (napi_get_cb_info(env, info, &argc, &nrows_value, nullptr, &data) != napi_ok) return nullptr;
  auto *f = static_cast<FrameCore *>(data);
  size_t nrows;
  if (!Prepare(env, f, nrows_value, &nrows)) return nullptr;
  std::memset(f->result.nulls, 0, f->result.length);
  const Instance &instance = *f->instance;
  sp_status status;
  status = RunHook(instance.lib.get(), instance.ctx, Hook::kCall, [&]() { return instance.def().call(&f->call); });
  if (status != SP_OK) Throw(Napi::Env(env), "E_FUNCTION_FAILED", instance.FailureText("call", status));
  return nullptr;
}

// timeNative(nrows, iterations): the floor a batch costs without crossing into JS.
napi_value TimeNative(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  auto *f = static_cast<FrameCore *>(data);
  size_t nrows;
  if (!Prepare(env, f, argv[0], &nrows)) return nullptr;
  int64_t iterations = 0;
  if (napi_get_value_int64(env, argv[1], &iterations) != napi_ok || iterations < 1) {
    Throw(Napi::Env(env), "E_BAD_REQUEST", "timeNative(nrows, iterations): iterations must be at least 1");
    return nullptr;
  }
  const Instance &instance = *f->instance;
  const sp_function_def &def = instance.def();
  sp_status status = SP_OK;
  double start, end;
  start = NowNs();
  status = RunHook(instance.lib.get(), instance.ctx, Hook::kCall, [&]() {
    sp_status s = SP_OK;
    for (int64_t i = 0; i < iterations && s == SP_OK; ++i) {
      std::memset(f->result.nulls, 0, f->result.length);  // as run() does: the same work per batch
      s = def.call(&f->call);
    }
    return s;
  });
  end = NowNs();
  if (status != SP_OK) {
    Throw(Napi::Env(env), "E_FUNCTION_FAILED", instance.FailureText("call", status));
    return nullptr;
  }
  napi_value out;
  napi_create_double(env, end - start, &out);
  return out;
}

// setConstant(argIndex, on): the caller promises every row of that argument holds the same value,
// so the plugin gets is_constant = 1 and may read row 0 only. Not checked: checking reads the whole
// column, the very traffic the flag saves.
napi_value SetConstant(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  auto *f = static_cast<FrameCore *>(data);
  int64_t index = -1;
  bool on = false;
  napi_valuetype on_type = napi_undefined;
  if (argc < 2 || napi_get_value_int64(env, argv[0], &index) != napi_ok) index = -1;
  if (argc >= 2) napi_typeof(env, argv[1], &on_type);
  if (index < 0 || static_cast<size_t>(index) >= f->args.size() || on_type != napi_boolean) {
    Throw(Napi::Env(env), "E_BAD_REQUEST", "setConstant(argIndex, on): argIndex must be 0.." +
                                               std::to_string(static_cast<int64_t>(f->args.size()) - 1) +
                                               " (the frame's arguments) and on a boolean");
    return nullptr;
  }
  napi_get_value_bool(env, argv[1], &on);
  f->args[static_cast<size_t>(index)].is_constant = on ? 1 : 0;
  return nullptr;
}

// A plain Node-API function over the core, holding a reference to it for as long as it lives.
napi_value CoreFunction(napi_env env, const char *name, napi_callback cb, const CoreRef &core) {
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, core.get(), &fn) != napi_ok) return nullptr;
  auto *hold = new CoreRef(core);
  if (napi_add_finalizer(env, fn, nullptr, ReleaseCore, hold, nullptr) != napi_ok) {
    delete hold;
    return nullptr;
  }
  return fn;
}

// Marks the argNulls arrays, so a getter taken off one (Object.getOwnPropertyDescriptor) and called
// on another object finds no core there instead of misreading that object's wrapped pointer.
const napi_type_tag kMasksTag = {0x73706e756c6c6d61ULL, 0x736b732d66726d31ULL};

void ReleaseWrappedCore(napi_env, void *data, void *) { delete static_cast<CoreRef *>(data); }

// Getter of argNulls[i] (i is the callback data) until its first read, on the argNulls array
// (`this`, which wraps a core reference): makes the mask's Uint8Array, marks the mask exposed so
// run() checks it from now on, and replaces itself with the array as a plain read-only element.
napi_value MaskGetter(napi_env env, napi_callback_info info) {
  napi_value self;
  void *data;
  size_t argc = 0;
  if (napi_get_cb_info(env, info, &argc, nullptr, &self, &data) != napi_ok) return nullptr;
  bool tagged = false;
  void *wrapped = nullptr;
  if (napi_check_object_type_tag(env, self, &kMasksTag, &tagged) != napi_ok || !tagged ||
      napi_unwrap(env, self, &wrapped) != napi_ok) {
    Throw(Napi::Env(env), "E_BAD_REQUEST", "an argNulls getter was called on something else than a frame's argNulls; read frame.argNulls[i]");
    return nullptr;
  }
  const CoreRef &core = *static_cast<CoreRef *>(wrapped);
  const auto index = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(data));
  napi_value view = nullptr;
  if (index >= core->args.size()) return nullptr;  // undefined, as for any missing element
  if (core->nulls_exposed[index] != 0) {
    napi_get_element(env, self, index, &view);  // a getter taken off earlier: the element is plain now
    return view;
  }
  const std::string key = std::to_string(index);
  napi_value buffer;
  if (!ExposeBuffer(env, core, core->arg_nulls[index], core->capacity, &buffer) ||
      (view = TypedOver(env, SP_TYPE_BOOL, core->capacity, buffer)) == nullptr) {
    Throw(Napi::Env(env), "E_BAD_REQUEST", "cannot make argNulls[" + key + "] (out of memory?); retry or use a smaller frame");
    return nullptr;
  }
  napi_property_descriptor element = {key.c_str(), nullptr, nullptr, nullptr, nullptr, view, napi_enumerable, nullptr};
  if (napi_define_properties(env, self, 1, &element) != napi_ok) return nullptr;  // JS never got the view
  core->nulls_exposed[index] = 1;
  return view;
}

// argNulls: an array of n lazy getters (MaskGetter) that holds a reference to the core.
napi_value LazyMasks(napi_env env, const CoreRef &core) {
  const size_t n = core->args.size();
  napi_value array;
  if (napi_create_array_with_length(env, n, &array) != napi_ok) return nullptr;
  std::vector<std::string> names(n);
  std::vector<napi_property_descriptor> getters(n);
  for (size_t i = 0; i < n; ++i) {
    names[i] = std::to_string(i);
    getters[i] = {names[i].c_str(), nullptr, nullptr, MaskGetter, nullptr, nullptr,
                  static_cast<napi_property_attributes>(napi_enumerable | napi_configurable),
                  reinterpret_cast<void *>(static_cast<uintptr_t>(i))};
  }
  if (n > 0 && napi_define_properties(env, array, n, getters.data()) != napi_ok) return nullptr;
  if (napi_type_tag_object(env, array, &kMasksTag) != napi_ok) return nullptr;
  auto *hold = new CoreRef(core);
  if (napi_wrap(env, array, hold, ReleaseWrappedCore, nullptr, nullptr) != napi_ok) {
    delete hold;
    return nullptr;
  }
  return array;
}

}  // namespace

Napi::Function FrameWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeFrame", {InstanceMethod<&FrameWrap::Close>("close")});
}

FrameWrap::FrameWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<FrameWrap>(info) {}

bool FrameWrap::Setup(Napi::Env env, std::shared_ptr<Instance> instance, size_t capacity,
                      const std::vector<uint32_t> &arg_types, uint32_t result_type) {
  const size_t result_width = TypeWidth(result_type);
  if (result_width == 0) {
    Throw(env, "E_ARG_TYPE", std::string("a frame needs a fixed-width result (bool, int64, float64); ") +
                                 instance->def().name + " returns type " + std::to_string(result_type) +
                                 ": use callBatch instead");
    return false;
  }
  for (size_t i = 0; i < arg_types.size(); ++i) {
    if (TypeWidth(arg_types[i]) == 0) {
      Throw(env, "E_ARG_TYPE", "a frame needs fixed-width arguments (bool, int64, float64); argument " +
                                   std::to_string(i) + " has type " + std::to_string(arg_types[i]) + ": use callBatch instead");
      return false;
    }
  }
  auto core = std::make_shared<FrameCore>();
  core->env = env;
  core->capacity = capacity;
  core->args.resize(arg_types.size());
  core->arg_nulls.resize(arg_types.size());
  core->nulls_exposed.assign(arg_types.size(), 0);
  const auto fail = [&env]() {
    Throw(env, "E_BAD_REQUEST", "cannot allocate the frame's buffers; use a smaller capacity");
    return false;
  };
  int64_t external = 0;
  Napi::Array args = Napi::Array::New(env, arg_types.size());
  for (size_t i = 0; i < arg_types.size(); ++i) {
    void *values, *nulls;
    napi_value values_buffer;
    if (!NewBuffer(env, core, capacity * TypeWidth(arg_types[i]), &values, &values_buffer, &external) ||
        (nulls = Allocate(core.get(), capacity, &external)) == nullptr) {
      return fail();
    }
    args.Set(static_cast<uint32_t>(i), Napi::Value(env, TypedOver(env, arg_types[i], capacity, values_buffer)));
    sp_column &col = core->args[i];
    std::memset(&col, 0, sizeof col);
    col.size = sizeof(sp_column);
    col.type = arg_types[i];
    col.values = values;
    core->arg_nulls[i] = static_cast<uint8_t *>(nulls);
  }
  void *result_values, *result_nulls;
  napi_value result_values_buffer, result_nulls_buffer;
  if (!NewBuffer(env, core, capacity * result_width, &result_values, &result_values_buffer, &external) ||
      !NewBuffer(env, core, capacity, &result_nulls, &result_nulls_buffer, &external)) {
    return fail();
  }
  // Tell V8 what the frame holds outside its heap (given back by ~FrameCore), so GC pressure sees it.
  int64_t ignored;
  if (napi_adjust_external_memory(env, external, &ignored) == napi_ok) core->external_bytes = external;

  core->instance = std::move(instance);
  core->result.size = sizeof(sp_result);
  core->result.type = result_type;
  core->result.values = result_values;
  core->result.nulls = static_cast<uint8_t *>(result_nulls);
  core->call.size = sizeof(sp_call);
  core->call.ctx = core->instance->ctx;
  core->call.nargs = core->args.size();
  core->call.args = core->args.data();
  core->call.result = &core->result;
  if (core->instance->def().kind == SP_FUNCTION_AGGREGATE) core->call.group_offsets = core->group_offsets;

  napi_value masks = LazyMasks(env, core);
  if (masks == nullptr) return fail();
  Napi::Object self = Value();
  self.Set("capacity", static_cast<double>(capacity));
  self.Set("args", args);
  self.Set("argNulls", Napi::Value(env, masks));
  self.Set("result", Napi::Value(env, TypedOver(env, result_type, capacity, result_values_buffer)));
  self.Set("resultNulls", Napi::Value(env, TypedOver(env, SP_TYPE_BOOL, capacity, result_nulls_buffer)));
  self.Set("run", Napi::Value(env, CoreFunction(env, "run", Run, core)));
  self.Set("timeNative", Napi::Value(env, CoreFunction(env, "timeNative", TimeNative, core)));
  self.Set("setConstant", Napi::Value(env, CoreFunction(env, "setConstant", SetConstant, core)));
  core_ = std::move(core);
  return !env.IsExceptionPending();
}

Napi::Value FrameWrap::Close(const Napi::CallbackInfo &info) {
  if (core_) core_->instance.reset();
  return info.Env().Undefined();
}

}  // namespace streamplug
