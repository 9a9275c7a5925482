// NativeInstance: one function in one rule (its own sp_ctx and state). validate() at rule
// creation, call() per batch with columns marshalled by src/plugins, frame() for the hot path.
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "addon.h"
#include "state_version.h"

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
                      InstanceMethod<&FunctionInstanceWrap::Frame>("frame"),
                      InstanceMethod<&FunctionInstanceWrap::ScalarEntry>("scalarEntry"),
                      InstanceMethod<&FunctionInstanceWrap::ExportState>("exportState"),
                      InstanceMethod<&FunctionInstanceWrap::ImportState>("importState"),
                      InstanceMethod<&FunctionInstanceWrap::Close>("close")});
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
  status = RunHook(instance->lib.get(), instance->ctx, Hook::kCall, [&]() { return def.call(&call); });
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
  if (capacity < 1 || capacity > UINT32_MAX) {
    return Throw(env, "E_BAD_REQUEST", "frame capacity must be 1.." + std::to_string(UINT32_MAX) + ", got " + std::to_string(capacity));
  }
  Napi::Object object = env.GetInstanceData<AddonData>()->frame_ctor.New({});
  if (!FrameWrap::Unwrap(object)->Setup(env, instance, static_cast<size_t>(capacity), arg_types,
                                        info[2].As<Napi::Number>().Uint32Value())) {
    return env.Undefined();
  }
  return object;
}

// ---- The scalar entry: FunctionInstance.call(...args) as one plain Node-API function ----------
//
// JS scalars go straight into 1-row sp_columns on the stack and the result straight back to a JS
// value: nothing is allocated for fixed-width calls. Whatever the fast path does not handle exactly
// as the generic path would (wrong arity or type, lossy integers, an unloaded plugin or closed
// instance, more than kFastArgs arguments) is handed to the generic JS call, the single source of
// the errors and coercions it reports.
namespace {

constexpr size_t kFastArgs = 8;
const uint32_t kOneGroup[2] = {0, 1};
const char kEmpty[1] = {0};

union Value64 {
  double f;
  int64_t i;
  uint8_t b;
};

// Plain data, so the per-call array costs nothing to set up; string text lives in `Texts`.
struct ScalarArg {
  Value64 value;
  uint8_t null;
  uint32_t offsets[2];
};

// UTF-8 copies of string arguments, made only when a call has some.
struct Texts {
  std::vector<std::string> items;
  std::string &Next() {
    if (items.capacity() == 0) items.reserve(kFastArgs);  // no reallocation: columns point inside
    items.emplace_back();
    return items.back();
  }
};

struct ScalarEntryData {
  std::shared_ptr<Instance> instance;
  napi_ref self = nullptr;     // weak: the JS FunctionInstance the generic call runs on
  napi_ref generic = nullptr;  // strong: the generic call (a prototype method: no cycle)
  // Read once from the descriptor (static in the library, valid while it is open) so a call
  // chases no pointers: the instance keeps lib and ctx alive.
  Library *lib = nullptr;
  sp_ctx *ctx = nullptr;
  const sp_function_def *def = nullptr;
  size_t min_args = 0, max_args = 0;  // max_args: SIZE_MAX when variadic
  uint32_t declared[kFastArgs] = {};
  // The call, its columns and its result, filled once: a call writes only what changes. Safe to
  // share: nothing in a call runs JavaScript, so a call never re-enters its own entry.
  sp_column cols[kFastArgs];
  ScalarArg vals[kFastArgs];
  Value64 out_value;
  uint8_t out_null = 0;
  sp_result result{};
  sp_call call{};
};

void DeleteScalarEntry(napi_env env, void *data, void *) {
  auto *entry = static_cast<ScalarEntryData *>(data);
  napi_delete_reference(env, entry->self);
  napi_delete_reference(env, entry->generic);
  delete entry;
}

// The declared type of argument i as src/plugins/signature.ts argType() reads it.
uint32_t DeclaredType(const sp_function_def &def, size_t i) {
  const size_t declared = def.max_args == 0 ? 0 : static_cast<size_t>(def.min_args > 1 ? def.min_args : 1);
  if (declared == 0 || def.arg_types == nullptr) return SP_TYPE_ANY;
  return def.arg_types[i < declared ? i : declared - 1];
}

void SetBytes(sp_column *col, ScalarArg *a, const char *data, size_t length) {
  a->offsets[0] = 0;
  a->offsets[1] = static_cast<uint32_t>(length);
  col->offsets = a->offsets;
  col->data = data;
}

// columnOf() + coerceArgs() for one value; false when only the generic path gets it right.
// `col` arrives with size, length, values (&a->value) and is_constant set.
bool Convert(napi_env env, napi_value v, uint32_t declared, sp_column *col, ScalarArg *a, Texts *texts) {
  col->offsets = nullptr;
  col->data = nullptr;
  col->nulls = nullptr;
  // A declared fixed-width type first: one Node-API call, no napi_typeof, for the usual value.
  if (declared == SP_TYPE_FLOAT64 && napi_get_value_double(env, v, &a->value.f) == napi_ok) {
    col->type = SP_TYPE_FLOAT64;
    return true;
  }
  if (declared == SP_TYPE_INT64) {
    bool lossless;
    const napi_status got = napi_get_value_bigint_int64(env, v, &a->value.i, &lossless);
    if (got == napi_ok) {
      col->type = SP_TYPE_INT64;
      return lossless;  // as the bigint case below: a lossy one is the generic path's to report
    }
  }
  if (declared == SP_TYPE_BOOL) {
    bool b;
    if (napi_get_value_bool(env, v, &b) == napi_ok) {
      col->type = SP_TYPE_BOOL;
      a->value.i = 0;
      a->value.b = b ? 1 : 0;
      return true;
    }
  }
  a->value.i = 0;
  a->null = 0;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  switch (t) {
    case napi_null:
      col->type = declared == SP_TYPE_ANY ? static_cast<uint32_t>(SP_TYPE_FLOAT64) : declared;
      a->null = 1;
      col->nulls = &a->null;
      if (col->type == SP_TYPE_STRING || col->type == SP_TYPE_BYTES) SetBytes(col, a, kEmpty, 0);
      return true;
    case napi_number: {
      double d;
      napi_get_value_double(env, v, &d);
      if (declared == SP_TYPE_INT64) {
        // Only integers int64 holds exactly; BigInt(x) of anything else is the generic path's call.
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != static_cast<double>(static_cast<int64_t>(d))) return false;
        col->type = SP_TYPE_INT64;
        a->value.i = static_cast<int64_t>(d);
        return true;
      }
      if (declared != SP_TYPE_ANY && declared != SP_TYPE_FLOAT64) return false;
      col->type = SP_TYPE_FLOAT64;
      a->value.f = d;
      return true;
    }
    case napi_bigint: {
      int64_t x;
      bool lossless;
      if (napi_get_value_bigint_int64(env, v, &x, &lossless) != napi_ok || !lossless) return false;
      if (declared == SP_TYPE_FLOAT64) {
        col->type = SP_TYPE_FLOAT64;
        a->value.f = static_cast<double>(x);
        return true;
      }
      if (declared != SP_TYPE_ANY && declared != SP_TYPE_INT64) return false;
      col->type = SP_TYPE_INT64;
      a->value.i = x;
      return true;
    }
    case napi_boolean: {
      if (declared != SP_TYPE_ANY && declared != SP_TYPE_BOOL) return false;
      bool b;
      napi_get_value_bool(env, v, &b);
      col->type = SP_TYPE_BOOL;
      a->value.b = b ? 1 : 0;
      return true;
    }
    case napi_string: {
      if (declared != SP_TYPE_ANY && declared != SP_TYPE_STRING) return false;
      size_t length;
      if (napi_get_value_string_utf8(env, v, nullptr, 0, &length) != napi_ok || length > UINT32_MAX) return false;
      std::string &text = texts->Next();
      text.resize(length);
      if (napi_get_value_string_utf8(env, v, &text[0], length + 1, &length) != napi_ok) return false;
      col->type = SP_TYPE_STRING;
      SetBytes(col, a, text.data(), length);
      return true;
    }
    case napi_object: {
      if (declared != SP_TYPE_ANY && declared != SP_TYPE_BYTES) return false;
      View view;
      if (!TypedView(env, v, napi_uint8_array, &view) || view.length > UINT32_MAX) return false;
      col->type = SP_TYPE_BYTES;
      SetBytes(col, a, view.data != nullptr ? static_cast<const char *>(view.data) : kEmpty, view.length);
      return true;
    }
    default:
      return false;
  }
}

// The generic JS call with every argument, on the JS instance.
napi_value CallGeneric(napi_env env, napi_callback_info info, ScalarEntryData *entry) {
  size_t argc = 0;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, nullptr);
  std::vector<napi_value> argv(argc);
  napi_get_cb_info(env, info, &argc, argv.data(), nullptr, nullptr);
  napi_value self = nullptr, generic = nullptr, out = nullptr;
  napi_get_reference_value(env, entry->self, &self);
  napi_get_reference_value(env, entry->generic, &generic);
  if (self == nullptr || generic == nullptr) {
    Throw(Napi::Env(env), "E_INSTANCE_CLOSED", "this function instance is gone; instantiate the function again");
    return nullptr;
  }
  napi_call_function(env, self, generic, argc, argv.data(), &out);
  return out;
}

napi_value ScalarCall(napi_env env, napi_callback_info info) {
  size_t argc = kFastArgs;
  napi_value argv[kFastArgs];
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) return nullptr;
  auto *entry = static_cast<ScalarEntryData *>(data);
  if (!entry->lib->open() || entry->ctx->closed || argc > kFastArgs || argc < entry->min_args || argc > entry->max_args) {
    return CallGeneric(env, info, entry);
  }
  const sp_function_def &def = *entry->def;
  sp_column *cols = entry->cols;
  Texts texts;
  for (size_t i = 0; i < argc; ++i) {
    if (!Convert(env, argv[i], entry->declared[i], &cols[i], &entry->vals[i], &texts)) return CallGeneric(env, info, entry);
  }
  uint32_t result_type = def.result_type;
  if (result_type == SP_TYPE_LIKE_ARG0) {
    if (argc == 0) return CallGeneric(env, info, entry);
    result_type = cols[0].type;
  }
  const bool fixed_width = result_type == SP_TYPE_FLOAT64 || result_type == SP_TYPE_INT64 || result_type == SP_TYPE_BOOL;

  Value64 &out_value = entry->out_value;
  uint8_t &out_null = entry->out_null;
  out_value.i = 0;
  out_null = 0;
  ResultStore store;
  sp_result &result = entry->result;
  result.type = result_type;
  if (fixed_width) {
    result.values = &out_value;
    result.host_reserved = nullptr;
  } else {
    store.rows.resize(1);
    result.values = nullptr;
    result.host_reserved = &store;
  }
  entry->call.nargs = argc;
  sp_status status;
  status = RunHook(entry->lib, entry->ctx, Hook::kCall, [&]() { return def.call(&entry->call); });
  result.host_reserved = nullptr;  // `store` ends here
  if (status != SP_OK) {
    Throw(Napi::Env(env), "E_FUNCTION_FAILED", entry->instance->FailureText("call", status));
    return nullptr;
  }

  napi_value out = nullptr;
  if (out_null != 0) {
    napi_get_null(env, &out);
    return out;
  }
  switch (result_type) {
    case SP_TYPE_FLOAT64: napi_create_double(env, out_value.f, &out); break;
    case SP_TYPE_INT64: napi_create_bigint_int64(env, out_value.i, &out); break;
    case SP_TYPE_BOOL: napi_get_boolean(env, out_value.b != 0, &out); break;
    case SP_TYPE_STRING: {
      const std::string &s = store.rows[0];
      napi_create_string_utf8(env, s.data(), s.size(), &out);
      break;
    }
    default: {
      const std::string &s = store.rows[0];
      napi_create_buffer_copy(env, s.size(), s.data(), nullptr, &out);
      break;
    }
  }
  return out;
}

}  // namespace

// scalarEntry(self, generic) -> (...args) => value: the fast FunctionInstance.call for `self`.
// `generic` runs (on `self`) whatever the fast path hands over; `self` is held weakly so the
// function, usually stored on `self`, makes no cycle.
Napi::Value FunctionInstanceWrap::ScalarEntry(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    return Throw(env, "E_USAGE", "scalarEntry(self, generic): expected an object and a function");
  }
  if (!Usable(env, *instance)) return env.Undefined();
  auto *entry = new ScalarEntryData();
  entry->instance = instance;
  entry->lib = instance->lib.get();
  entry->ctx = instance->ctx;
  entry->def = &instance->def();
  entry->min_args = static_cast<size_t>(entry->def->min_args);
  entry->max_args = entry->def->max_args < 0 ? SIZE_MAX : static_cast<size_t>(entry->def->max_args);
  for (size_t i = 0; i < kFastArgs; ++i) {
    entry->declared[i] = DeclaredType(*entry->def, i);
    sp_column &col = entry->cols[i];
    std::memset(&col, 0, sizeof col);
    col.size = sizeof(sp_column);
    col.length = 1;
    col.values = &entry->vals[i].value;
  }
  entry->result.size = sizeof(sp_result);
  entry->result.length = 1;
  entry->result.nulls = &entry->out_null;
  entry->call.size = sizeof(sp_call);
  entry->call.ctx = entry->ctx;
  entry->call.args = entry->cols;
  entry->call.nrows = 1;
  entry->call.ngroups = 1;
  entry->call.group_offsets = entry->def->kind == SP_FUNCTION_AGGREGATE ? kOneGroup : nullptr;
  entry->call.result = &entry->result;
  napi_value fn = nullptr;
  if (napi_create_reference(env, info[0], 0, &entry->self) != napi_ok ||
      napi_create_reference(env, info[1], 1, &entry->generic) != napi_ok ||
      napi_create_function(env, "call", NAPI_AUTO_LENGTH, ScalarCall, entry, &fn) != napi_ok ||
      napi_add_finalizer(env, fn, entry, DeleteScalarEntry, nullptr, nullptr) != napi_ok) {
    if (entry->self != nullptr) napi_delete_reference(env, entry->self);
    if (entry->generic != nullptr) napi_delete_reference(env, entry->generic);
    delete entry;
    return Throw(env, "E_USAGE", "scalarEntry: cannot create the call function");
  }
  return Napi::Value(env, fn);
}

// exportState() -> { key: Uint8Array }: a copy of what the plugin keeps with state_put, for a checkpoint.
Napi::Value FunctionInstanceWrap::ExportState(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Usable(env, *instance)) return env.Undefined();
  Napi::Object out = Napi::Object::New(env);
  for (const auto &[key, value] : instance->ctx->state) {
    Napi::Uint8Array bytes = Napi::Uint8Array::New(env, value.size());
    if (!value.empty()) std::memcpy(bytes.Data(), value.data(), value.size());
    out.Set(key, bytes);
  }
  // Contract 1.3: the state's version stamp (state_version.cc), so another build can tell.
  const std::string stamp = StateStamp(*instance->lib);
  if (!stamp.empty() && !instance->ctx->state.empty()) {
    Napi::Uint8Array bytes = Napi::Uint8Array::New(env, stamp.size());
    std::memcpy(bytes.Data(), stamp.data(), stamp.size());
    out.Set(kStateVersionKey, bytes);
  }
  return out;
}

// importState({ key: Uint8Array }): replaces the whole state, as the plugin would find it after
// the state_put calls that made the checkpoint. Checked before anything is replaced.
Napi::Value FunctionInstanceWrap::ImportState(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Usable(env, *instance)) return env.Undefined();
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray()) {
    return Throw(env, "E_BAD_REQUEST", "importState expects an object of key -> Uint8Array, as exportState returns");
  }
  Napi::Object in = info[0].As<Napi::Object>();
  Napi::Array keys = in.GetPropertyNames();
  std::unordered_map<std::string, std::string> state;
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string key = keys.Get(i).ToString().Utf8Value();
    View v;
    if (key.find('\0') != std::string::npos || !TypedView(env, in.Get(key), napi_uint8_array, &v)) {
      return Throw(env, "E_BAD_REQUEST", "importState: state key " + key + " must map to a Uint8Array (and hold no NUL); pass what exportState returned");
    }
    state[key].assign(static_cast<const char *>(v.data), v.length);
  }
  // Contract 1.3 state versioning (state_version.cc): restored, migrated or dropped.
  const StateImport r = ImportVersionedState(instance->lib.get(), instance->ctx, std::move(state));
  if (!r.error.empty()) return Throw(env, "E_BAD_REQUEST", r.error);
  Napi::Object outcome = Napi::Object::New(env);
  outcome.Set("outcome", r.outcome);
  outcome.Set("from", r.from);
  outcome.Set("to", r.to);
  if (!r.message.empty()) outcome.Set("message", r.message);
  return outcome;
}

Napi::Value FunctionInstanceWrap::Close(const Napi::CallbackInfo &info) {
  CloseContext(instance->ctx);
  return info.Env().Undefined();
}

}  // namespace streamplug
