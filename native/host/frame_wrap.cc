// NativeFrame: the hot path for fixed-width signatures. Argument and result arrays are views over
// buffers allocated once; run(n) only fills in lengths and calls the plugin: no allocation per call.
#include <time.h>

#include <cstring>

#include "addon.h"

namespace streamplug {

namespace {

Napi::Value TypedOver(Napi::Env env, uint32_t type, size_t n, Napi::ArrayBuffer buffer) {
  switch (type) {
    case SP_TYPE_FLOAT64: return Napi::Float64Array::New(env, n, buffer, 0);
    case SP_TYPE_INT64: return Napi::TypedArrayOf<int64_t>::New(env, n, buffer, 0, napi_bigint64_array);
    default: return Napi::Uint8Array::New(env, n, buffer, 0);
  }
}

double NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

}  // namespace

Napi::Function FrameWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeFrame",
                     {InstanceMethod<&FrameWrap::Run>("run"), InstanceMethod<&FrameWrap::TimeNative>("timeNative"),
                      InstanceMethod<&FrameWrap::Close>("close")});
}

FrameWrap::FrameWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<FrameWrap>(info) {}

FrameWrap::~FrameWrap() { buffers_.Reset(); }

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
  instance_ = std::move(instance);
  capacity_ = capacity;
  Napi::Array keep = Napi::Array::New(env);
  Napi::Array args = Napi::Array::New(env, arg_types.size());
  Napi::Array arg_nulls = Napi::Array::New(env, arg_types.size());
  args_.resize(arg_types.size());
  arg_nulls_.resize(arg_types.size());
  for (size_t i = 0; i < arg_types.size(); ++i) {
    Napi::ArrayBuffer values = Napi::ArrayBuffer::New(env, capacity * TypeWidth(arg_types[i]));
    Napi::ArrayBuffer nulls = Napi::ArrayBuffer::New(env, capacity);
    keep.Set(keep.Length(), values);
    keep.Set(keep.Length(), nulls);
    args.Set(static_cast<uint32_t>(i), TypedOver(env, arg_types[i], capacity, values));
    arg_nulls.Set(static_cast<uint32_t>(i), Napi::Uint8Array::New(env, capacity, nulls, 0));
    sp_column &col = args_[i];
    std::memset(&col, 0, sizeof col);
    col.size = sizeof(sp_column);
    col.type = arg_types[i];
    col.values = values.Data();
    arg_nulls_[i] = static_cast<uint8_t *>(nulls.Data());
  }
  Napi::ArrayBuffer result_values = Napi::ArrayBuffer::New(env, capacity * result_width);
  Napi::ArrayBuffer result_nulls = Napi::ArrayBuffer::New(env, capacity);
  keep.Set(keep.Length(), result_values);
  keep.Set(keep.Length(), result_nulls);
  buffers_ = Napi::Persistent(keep);

  result_.size = sizeof(sp_result);
  result_.type = result_type;
  result_.values = result_values.Data();
  result_.nulls = static_cast<uint8_t *>(result_nulls.Data());
  call_.size = sizeof(sp_call);
  call_.ctx = instance_->ctx;
  call_.nargs = args_.size();
  call_.args = args_.data();
  call_.result = &result_;
  if (instance_->def().kind == SP_FUNCTION_AGGREGATE) call_.group_offsets = group_offsets_;

  Napi::Object self = Value();
  self.Set("capacity", static_cast<double>(capacity));
  self.Set("args", args);
  self.Set("argNulls", arg_nulls);
  self.Set("result", TypedOver(env, result_type, capacity, result_values));
  self.Set("resultNulls", Napi::Uint8Array::New(env, capacity, result_nulls, 0));
  return true;
}

bool FrameWrap::Prepare(Napi::Env env, const Napi::Value &nrows_value, size_t *nrows) {
  if (!instance_) {
    Throw(env, "E_INSTANCE_CLOSED", "this frame was closed; prepare a new one");
    return false;
  }
  if (!instance_->lib->open()) {
    Throw(env, "E_PLUGIN_NOT_LOADED", "plugin " + instance_->lib->name + " was unloaded; its frames are gone");
    return false;
  }
  if (instance_->ctx->closed) {
    Throw(env, "E_INSTANCE_CLOSED", std::string("the instance of ") + instance_->def().name + " behind this frame was closed");
    return false;
  }
  const int64_t n = nrows_value.IsNumber() ? nrows_value.As<Napi::Number>().Int64Value() : -1;
  if (n < 0 || static_cast<size_t>(n) > capacity_) {
    Throw(env, "E_BAD_REQUEST", "run(nrows): nrows must be 0.." + std::to_string(capacity_) + " (the frame's capacity)");
    return false;
  }
  *nrows = static_cast<size_t>(n);
  for (size_t i = 0; i < args_.size(); ++i) {
    args_[i].length = *nrows;
    // plugin.h promises NULL when no value is null, so plugins may skip null handling entirely.
    args_[i].nulls = AnySet(arg_nulls_[i], *nrows) ? arg_nulls_[i] : nullptr;
  }
  call_.nrows = *nrows;
  if (call_.group_offsets != nullptr) {
    group_offsets_[1] = static_cast<uint32_t>(*nrows);  // the whole frame is one group
    call_.ngroups = 1;
  } else {
    call_.ngroups = *nrows;
  }
  result_.length = call_.ngroups;
  return true;
}

Napi::Value FrameWrap::Run(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  size_t nrows;
  if (!Prepare(env, info[0], &nrows)) return env.Undefined();
  std::memset(result_.nulls, 0, result_.length);
  sp_status status;
  {
    HookScope scope(instance_->lib.get(), instance_->ctx);
    status = instance_->def().call(&call_);
  }
  if (status != SP_OK) return Throw(env, "E_FUNCTION_FAILED", instance_->FailureText("call", status));
  return env.Undefined();
}

// timeNative(nrows, iterations): the floor a batch costs without crossing into JS.
Napi::Value FrameWrap::TimeNative(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  size_t nrows;
  if (!Prepare(env, info[0], &nrows)) return env.Undefined();
  const int64_t iterations = info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : 0;
  if (iterations < 1) return Throw(env, "E_BAD_REQUEST", "timeNative(nrows, iterations): iterations must be at least 1");
  const sp_function_def &def = instance_->def();
  sp_status status = SP_OK;
  double start, end;
  {
    HookScope scope(instance_->lib.get(), instance_->ctx);
    start = NowNs();
    for (int64_t i = 0; i < iterations && status == SP_OK; ++i) {
      std::memset(result_.nulls, 0, result_.length);
      status = def.call(&call_);
    }
    end = NowNs();
  }
  if (status != SP_OK) return Throw(env, "E_FUNCTION_FAILED", instance_->FailureText("call", status));
  return Napi::Number::New(env, end - start);
}

Napi::Value FrameWrap::Close(const Napi::CallbackInfo &info) {
  instance_.reset();
  buffers_.Reset();
  return info.Env().Undefined();
}

}  // namespace streamplug
