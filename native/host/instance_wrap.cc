// NativeInstance: one function in one rule (its own sp_ctx and state). validate() at rule
// creation, call() per batch with columns marshalled by src/plugins, frame() for the hot path.
#include <cstring>
#include <vector>

#include "addon.h"

namespace streamplug {

Instance::Instance(std::shared_ptr<Library> l, int function, const std::string &rule) : lib(std::move(l)) {
  ctx = NewContext(lib.get(), function, rule);
}

Instance::~Instance() {
  CloseContext(ctx);  // runs the close hook if the instance was dropped without close()
  delete ctx;
}

std::string Instance::FailureText(const char *hook, sp_status status) const {
  std::string reason = ctx->error_set ? ctx->error
                                      : "returned status " + std::to_string(static_cast<int>(status)) +
                                            " without calling set_error";
  std::string rule = ctx->rule_id.empty() ? "" : ", rule " + ctx->rule_id;
  return std::string("function ") + def().name + " (plugin " + lib->name + rule + ") " + hook + " failed: " + reason;
}

// Storage behind result_set_string: one string per row, copied to JS after the call.
struct ResultStore {
  std::vector<std::string> rows;
};

sp_status ResultSetString(sp_result *result, size_t row, const char *text, size_t length) {
  if (result == nullptr || result->host_reserved == nullptr || row >= result->length ||
      (text == nullptr && length > 0)) {
    return SP_ERROR;
  }
  static_cast<ResultStore *>(result->host_reserved)->rows[row].assign(text != nullptr ? text : "", length);
  return SP_OK;
}

namespace {

struct View {
  void *data = nullptr;
  size_t length = 0;
  napi_typedarray_type type = napi_int8_array;
};

// One napi call per array: node-addon-api's wrappers query the same info several times.
bool TypedView(napi_env env, napi_value value, napi_typedarray_type expected, View *out) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return false;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &out->type, &out->length, &out->data, &buffer, &offset) != napi_ok) return false;
  return out->type == expected;
}

napi_typedarray_type ArrayTypeOf(uint32_t sp) {
  switch (sp) {
    case SP_TYPE_INT64: return napi_bigint64_array;
    case SP_TYPE_FLOAT64: return napi_float64_array;
    default: return napi_uint8_array;
  }
}

const char *TypeName(uint32_t t) {
  switch (t) {
    case SP_TYPE_BOOL: return "bool (Uint8Array)";
    case SP_TYPE_INT64: return "int64 (BigInt64Array)";
    case SP_TYPE_FLOAT64: return "float64 (Float64Array)";
    case SP_TYPE_STRING: return "string";
    case SP_TYPE_BYTES: return "bytes";
    default: return "?";
  }
}

// Reads one [type, values, offsets, data, nulls, constant] tuple into `col`. Returns false after throwing.
bool ReadColumn(Napi::Env env, Napi::Value tuple_value, size_t index, size_t nrows, sp_column *col) {
  const std::string where = "argument " + std::to_string(index) + ": ";
  if (!tuple_value.IsArray()) {
    Throw(env, "E_BAD_REQUEST", where + "expected a [type, values, offsets, data, nulls, constant] tuple");
    return false;
  }
  Napi::Array tuple = tuple_value.As<Napi::Array>();
  std::memset(col, 0, sizeof *col);
  col->size = sizeof(sp_column);
  col->type = tuple.Get(0u).As<Napi::Number>().Uint32Value();
  col->length = nrows;
  col->is_constant = tuple.Get(5u).ToBoolean() ? 1 : 0;
  View v;
  if (TypeWidth(col->type) > 0) {
    if (!TypedView(env, tuple.Get(1u), ArrayTypeOf(col->type), &v) || v.length < nrows) {
      Throw(env, "E_ARG_TYPE", where + "expected " + TypeName(col->type) + " values with at least " +
                                   std::to_string(nrows) + " elements");
      return false;
    }
    col->values = v.data;
  } else if (col->type == SP_TYPE_STRING || col->type == SP_TYPE_BYTES) {
    View offsets, data;
    if (!TypedView(env, tuple.Get(2u), napi_uint32_array, &offsets) || offsets.length < nrows + 1 ||
        !TypedView(env, tuple.Get(3u), napi_uint8_array, &data)) {
      Throw(env, "E_ARG_TYPE", where + "expected Uint32Array offsets (nrows+1) and Uint8Array data");
      return false;
    }
    const auto *off = static_cast<const uint32_t *>(offsets.data);
    // The plugin reads data[offsets[i] .. offsets[i+1]): bad offsets would read outside the buffer.
    for (size_t i = 0; i < nrows; ++i) {
      if (off[i] > off[i + 1]) {
        Throw(env, "E_BAD_REQUEST", where + "offsets decrease at row " + std::to_string(i));
        return false;
      }
    }
    if (off[nrows] > data.length) {
      Throw(env, "E_BAD_REQUEST", where + "offsets end at " + std::to_string(off[nrows]) + ", past the " +
                                      std::to_string(data.length) + " data bytes");
      return false;
    }
    col->offsets = off;
    col->data = static_cast<const char *>(data.data);
  } else {
    Throw(env, "E_ARG_TYPE", where + "type " + std::to_string(col->type) + " is not a column type (1..5)");
    return false;
  }
  Napi::Value nulls = tuple.Get(4u);
  if (!nulls.IsUndefined() && !nulls.IsNull()) {
    if (!TypedView(env, nulls, napi_uint8_array, &v) || v.length < nrows) {
      Throw(env, "E_ARG_TYPE", where + "nulls must be a Uint8Array of at least " + std::to_string(nrows) + " bytes");
      return false;
    }
    col->nulls = static_cast<const uint8_t *>(v.data);
  }
  return true;
}

}  // namespace

Napi::Function FunctionInstanceWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeInstance",
                     {InstanceMethod<&FunctionInstanceWrap::Call>("call"),
                      InstanceMethod<&FunctionInstanceWrap::Frame>("frame"), InstanceMethod<&FunctionInstanceWrap::Close>("close")});
}

FunctionInstanceWrap::FunctionInstanceWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<FunctionInstanceWrap>(info) {}

// Throws and returns false unless the instance can run a hook.
static bool Usable(Napi::Env env, const Instance &instance) {
  if (!instance.lib->open()) {
    Throw(env, "E_PLUGIN_NOT_LOADED", "plugin " + instance.lib->name + " was unloaded; its function instances are gone");
    return false;
  }
  if (instance.ctx->closed) {
    Throw(env, "E_INSTANCE_CLOSED", std::string("this instance of ") + instance.def().name +
                                        " was closed; instantiate the function again");
    return false;
  }
  return true;
}

// call(args: tuple[], nrows, groupOffsets: Uint32Array | null, resultType) -> { values, nulls? }
Napi::Value FunctionInstanceWrap::Call(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Usable(env, *instance)) return env.Undefined();
  const sp_function_def &def = instance->def();
  Napi::Array arg_values = info[0].As<Napi::Array>();
  const size_t nrows = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  const uint32_t result_type = info[3].As<Napi::Number>().Uint32Value();

  std::vector<sp_column> args(arg_values.Length());
  for (size_t i = 0; i < args.size(); ++i) {
    if (!ReadColumn(env, arg_values.Get(static_cast<uint32_t>(i)), i, nrows, &args[i])) return env.Undefined();
  }
  size_t nout = nrows;
  const uint32_t *groups = nullptr;
  if (!info[2].IsNull() && !info[2].IsUndefined()) {
    View g;
    if (!TypedView(env, info[2], napi_uint32_array, &g) || g.length < 1) {
      return Throw(env, "E_BAD_REQUEST", "groupOffsets must be a Uint32Array of ngroups+1 entries");
    }
    groups = static_cast<const uint32_t *>(g.data);
    nout = g.length - 1;
    if (groups[0] != 0 || groups[nout] != nrows) {
      return Throw(env, "E_BAD_REQUEST", "groupOffsets must start at 0 and end at nrows (" + std::to_string(nrows) + ")");
    }
    for (size_t i = 0; i < nout; ++i) {
      if (groups[i] > groups[i + 1]) return Throw(env, "E_BAD_REQUEST", "groupOffsets decrease at group " + std::to_string(i));
    }
  }

  const size_t width = TypeWidth(result_type);
  if (width == 0 && result_type != SP_TYPE_STRING && result_type != SP_TYPE_BYTES) {
    return Throw(env, "E_ARG_TYPE", "result type " + std::to_string(result_type) + " is not a column type (1..5)");
  }
  Napi::ArrayBuffer values_buffer = Napi::ArrayBuffer::New(env, width * nout);
  Napi::Uint8Array nulls = Napi::Uint8Array::New(env, nout);  // zero-filled
  ResultStore store;
  sp_result result{};
  result.size = sizeof(sp_result);
  result.type = result_type;
  result.length = nout;
  result.nulls = nulls.Data();
  if (width > 0) {
    result.values = values_buffer.Data();
  } else {
    store.rows.resize(nout);
    result.host_reserved = &store;
  }

  sp_call call{};
  call.size = sizeof(sp_call);
  call.ctx = instance->ctx;
  call.nargs = args.size();
  call.args = args.data();
  call.nrows = nrows;
  call.ngroups = nout;
  call.group_offsets = groups;
  call.result = &result;
  sp_status status;
  {
    HookScope scope(instance->lib.get(), instance->ctx);
    status = def.call(&call);
  }
  if (status != SP_OK) return Throw(env, "E_FUNCTION_FAILED", instance->FailureText("call", status));

  Napi::Object out = Napi::Object::New(env);
  if (result_type == SP_TYPE_FLOAT64) {
    out.Set("values", Napi::Float64Array::New(env, nout, values_buffer, 0));
  } else if (result_type == SP_TYPE_INT64) {
    out.Set("values", Napi::TypedArrayOf<int64_t>::New(env, nout, values_buffer, 0, napi_bigint64_array));
  } else if (result_type == SP_TYPE_BOOL) {
    out.Set("values", Napi::Uint8Array::New(env, nout, values_buffer, 0));
  } else {
    Napi::Array rows = Napi::Array::New(env, nout);
    for (size_t i = 0; i < nout; ++i) {
      const std::string &s = store.rows[i];
      rows.Set(static_cast<uint32_t>(i), result_type == SP_TYPE_STRING
                                             ? Napi::Value(Napi::String::New(env, s))
                                             : Napi::Value(Napi::Buffer<uint8_t>::Copy(
                                                   env, reinterpret_cast<const uint8_t *>(s.data()), s.size())));
    }
    out.Set("values", rows);
  }
  if (AnySet(result.nulls, nout)) out.Set("nulls", nulls);
  return out;
}

// frame(capacity, argTypes: number[], resultType) -> NativeFrame
Napi::Value FunctionInstanceWrap::Frame(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Usable(env, *instance)) return env.Undefined();
  const int64_t capacity = info[0].As<Napi::Number>().Int64Value();
  Napi::Array types = info[1].As<Napi::Array>();
  std::vector<uint32_t> arg_types(types.Length());
  for (uint32_t i = 0; i < types.Length(); ++i) arg_types[i] = types.Get(i).As<Napi::Number>().Uint32Value();
  if (capacity < 1) return Throw(env, "E_BAD_REQUEST", "frame capacity must be at least 1, got " + std::to_string(capacity));
  Napi::Object object = env.GetInstanceData<AddonData>()->frame_ctor.New({});
  if (!FrameWrap::Unwrap(object)->Setup(env, instance, static_cast<size_t>(capacity), arg_types,
                                        info[2].As<Napi::Number>().Uint32Value())) {
    return env.Undefined();
  }
  return object;
}

Napi::Value FunctionInstanceWrap::Close(const Napi::CallbackInfo &info) {
  CloseContext(instance->ctx);
  return info.Env().Undefined();
}

}  // namespace streamplug
