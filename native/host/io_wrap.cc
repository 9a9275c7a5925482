// JS classes over io.h: NativeSource and NativeSink, plus describeIo / validateIo / ioLive.
//
//   new NativeSource(libraryPath, index, ruleId, configJson, { capacity, overflow }, onWake)
//   new NativeSink(libraryPath, index, ruleId, configJson, { capacity, maxRetries, backoffMs, maxBackoffMs }, onWake)
//
// onWake() is called on the JS thread (coalesced) when a source has data, a sink made room, a
// status changed or the thread finished; JS then pulls: source.drain(max), sink.stats(), ...
#include "io_wrap.h"

#include <cstring>
#include <unordered_map>

#include "addon.h"
#include "io.h"

namespace streamplug {

namespace {

// Lines lent to JS by a source's drain, by the Buffer's data pointer (see SharedLines).
std::mutex &LentMutex() {
  static std::mutex m;
  return m;
}
std::unordered_map<const char *, std::weak_ptr<SharedLines>> &Lent() {
  static auto *lent = new std::unordered_map<const char *, std::weak_ptr<SharedLines>>();  // never destroyed: finalizers may run late
  return *lent;
}

// The lines behind a Buffer a source's drain made, when `data`/`length` is exactly that Buffer.
std::shared_ptr<const SharedLines> FindLent(const char *data, size_t length, size_t nrows) {
  std::lock_guard<std::mutex> lock(LentMutex());
  auto it = Lent().find(data);
  if (it == Lent().end()) return nullptr;
  std::shared_ptr<SharedLines> lines = it->second.lock();
  if (lines == nullptr || lines->ends.empty() || lines->ends.back() - lines->base() != length ||
      lines->ends.size() - lines->head != nrows) {
    return nullptr;
  }
  return lines;
}

const char *StateName(int state) {
  switch (state) {
    case SP_IO_CONNECTED: return "connected";
    case SP_IO_RECONNECTING: return "reconnecting";
    case SP_IO_ERROR: return "error";
    default: return "connecting";
  }
}

// The thread-safe function behind onWake. Raw Node-API: at environment teardown node-addon-api
// would turn a failed call into a fatal error.
struct WakeFn {
  napi_threadsafe_function tsfn = nullptr;
  bool released = false;
};

void CallWake(napi_env env, napi_value fn, void *context, void *) {
  auto *holder = static_cast<std::shared_ptr<IoBase> *>(context);
  (*holder)->WakeTaken();
  if (env == nullptr || fn == nullptr) return;
  napi_value undefined, result;
  napi_get_undefined(env, &undefined);
  if (napi_call_function(env, undefined, fn, 0, nullptr, &result) == napi_pending_exception) {
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
  }
}

void FinalizeWake(napi_env, void *data, void *) { delete static_cast<std::shared_ptr<IoBase> *>(data); }

bool MakeWake(Napi::Env env, Napi::Value fn, std::shared_ptr<IoBase> io, WakeFn *out) {
  if (!fn.IsFunction()) {
    Throw(env, "E_USAGE", "onWake must be a function");
    return false;
  }
  auto *holder = new std::shared_ptr<IoBase>(io);
  napi_value name;
  napi_create_string_utf8(env, "streamplug-io-wake", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, fn, nullptr, name, 0, 1, holder, FinalizeWake, holder, CallWake, &out->tsfn) !=
      napi_ok) {
    delete holder;
    Throw(env, "E_INTERNAL", "could not create the wake function of a source/sink");
    return false;
  }
  napi_threadsafe_function tsfn = out->tsfn;
  io->SetWake([tsfn]() { napi_call_threadsafe_function(tsfn, nullptr, napi_tsfn_nonblocking); });
  return true;
}

void ReleaseWake(Napi::Env env, IoBase *io, WakeFn *w) {
  if (w->released || w->tsfn == nullptr) return;
  io->DetachWake();  // after this no thread calls the tsfn
  napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
  w->released = true;
}

std::string StringArg(const Napi::Value &v) { return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(); }

int64_t NumberOption(const Napi::Object &o, const char *key, int64_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : fallback;
}

// Resolves (path, kind, index) to an open, initialised library and a valid table index.
std::shared_ptr<Library> ResolveIo(Napi::Env env, const Napi::CallbackInfo &info, int kind, int *index) {
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    Throw(env, "E_USAGE", "expected (libraryPath: string, index: number, ...)");
    return nullptr;
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  std::shared_ptr<Library> lib = FindLibrary(path);
  if (lib == nullptr || !lib->open() || !lib->initialized) {
    Throw(env, "E_PLUGIN_NOT_LOADED", path + " is not loaded (or init did not run); load the plugin first");
    return nullptr;
  }
  const int64_t i = info[1].As<Napi::Number>().Int64Value();
  const size_t n = kind == 1 ? NumSources(lib->desc) : NumSinks(lib->desc);
  if (i < 0 || static_cast<size_t>(i) >= n) {
    Throw(env, "E_NOT_FOUND", "plugin " + lib->name + " has no " + (kind == 1 ? "source" : "sink") + " #" + std::to_string(i));
    return nullptr;
  }
  *index = static_cast<int>(i);
  return lib;
}

Napi::Object Stats(Napi::Env env, IoBase *io, size_t depth) {
  IoCounters &c = io->counters;
  Napi::Object o = Napi::Object::New(env);
  o.Set("in", static_cast<double>(c.in.load()));
  o.Set("out", static_cast<double>(c.out.load()));
  o.Set("dropped", static_cast<double>(c.dropped.load()));
  o.Set("errors", static_cast<double>(c.errors.load()));
  o.Set("retries", static_cast<double>(c.retries.load()));
  o.Set("depth", static_cast<double>(depth));
  o.Set("lastLatencyMs", static_cast<double>(c.last_latency_ns.load()) / 1e6);
  o.Set("maxLatencyMs", static_cast<double>(c.max_latency_ns.load()) / 1e6);
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    o.Set("state", StateName(c.state));
    o.Set("message", c.status_message);
    o.Set("lastError", c.last_error);
  }
  o.Set("failure", io->failure());
  o.Set("opened", io->opened());
  o.Set("finished", io->finished());
  return o;
}

// ---- NativeSource ------------------------------------------------------------------------------

class SourceWrap : public Napi::ObjectWrap<SourceWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeSource",
                       {InstanceMethod<&SourceWrap::Drain>("drain"), InstanceMethod<&SourceWrap::StatsJs>("stats"),
                        InstanceMethod<&SourceWrap::Stop>("stop"), InstanceMethod<&SourceWrap::Dispose>("dispose")});
  }

  explicit SourceWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<SourceWrap>(info) {
    Napi::Env env = info.Env();
    int index = 0;
    std::shared_ptr<Library> lib = ResolveIo(env, info, 1, &index);
    if (lib == nullptr) return;
    if (info.Length() < 6 || !info[4].IsObject()) {
      Throw(env, "E_USAGE", "new NativeSource(path, index, ruleId, config, options, onWake)");
      return;
    }
    Napi::Object opts = info[4].As<Napi::Object>();
    const std::string overflow = StringArg(opts.Get("overflow"));
    Overflow policy = Overflow::kBlock;
    if (overflow == "drop-oldest") policy = Overflow::kDropOldest;
    else if (overflow == "drop-newest") policy = Overflow::kDropNewest;
    else if (!overflow.empty() && overflow != "block") {
      Throw(env, "E_CONNECTOR_CONFIG", "overflow is '" + overflow + "', expected block, drop-oldest or drop-newest");
      return;
    }
    const int64_t capacity = NumberOption(opts, "capacity", 1024);
    if (capacity < 1) {
      Throw(env, "E_CONNECTOR_CONFIG", "queue capacity is " + std::to_string(capacity) + ", expected at least 1");
      return;
    }
    const bool lines = opts.Get("lines").ToBoolean().Value();
    const int64_t batch = std::max<int64_t>(1, NumberOption(opts, "batch", 1024));
    source_ = std::make_shared<Source>(lib, index, StringArg(info[2]), StringArg(info[3]), static_cast<size_t>(capacity), policy,
                                       lines, static_cast<size_t>(batch));
    if (!MakeWake(env, info[5], source_, &wake_)) {
      source_.reset();
      return;
    }
    source_->Start(source_);
  }

  ~SourceWrap() override {
    // Collected without stop(): stop it so its thread ends; the tsfn holder keeps it alive.
    if (source_ != nullptr) {
      source_->Stop();
      if (!wake_.released && wake_.tsfn != nullptr) {
        source_->DetachWake();
        napi_release_threadsafe_function(wake_.tsfn, napi_tsfn_release);
      }
    }
  }

 private:
  // drain(max) -> { segments, left }: segments in queue order;
  //   raw messages  { kind: 0, bytes: Buffer "[m0,m1,...]", length, starts, ends } (message i = bytes[starts[i], ends[i]));
  //   rows          { kind: 1, rows: object[] };
  //   JSON lines    { kind: 2, bytes: Buffer "m0\nm1\n...", count }: canonical JSON objects, handed
  //                 over without a copy (the buffer owns the queue's storage).
  Napi::Value Drain(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (source_ == nullptr) return env.Null();
    const size_t max = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 1024;
    segments_.clear();
    const size_t left = source_->Drain(&segments_, max == 0 ? 1 : max);
    Napi::Array segments = Napi::Array::New(env, segments_.size());
    for (size_t s = 0; s < segments_.size(); ++s) {
      SourceSegment &g = segments_[s];
      const size_t n = g.size();
      Napi::Object seg = Napi::Object::New(env);
      seg.Set("kind", g.kind);
      if (g.kind == kJsonLine) {
        const size_t base = g.start(g.head);
        const size_t length = g.ends.back() - base;
        seg.Set("bytes", LendLines(env, std::move(g), base, length));
        seg.Set("count", static_cast<double>(n));
      } else if (g.kind == kRawMessage) {
        size_t total = 2;
        for (size_t k = g.head; k < g.ends.size(); ++k) total += g.ends[k] - g.start(k) + 1;
        Napi::Buffer<char> bytes = Napi::Buffer<char>::New(env, total);
        Napi::Uint32Array starts = Napi::Uint32Array::New(env, n);
        Napi::Uint32Array ends = Napi::Uint32Array::New(env, n);
        char *p = bytes.Data();
        size_t at = 0;
        p[at++] = '[';
        for (size_t k = g.head; k < g.ends.size(); ++k) {
          if (k > g.head) p[at++] = ',';
          const size_t from = g.start(k), len = g.ends[k] - from;
          starts[k - g.head] = static_cast<uint32_t>(at);
          std::memcpy(p + at, g.data.data() + from, len);
          at += len;
          ends[k - g.head] = static_cast<uint32_t>(at);
        }
        p[at++] = ']';
        seg.Set("bytes", bytes);
        seg.Set("length", static_cast<double>(at));
        seg.Set("starts", starts);
        seg.Set("ends", ends);
      } else {
        Napi::Array rows = Napi::Array::New(env, n);
        std::unordered_map<std::string, napi_value> keys;
        for (size_t k = g.head; k < g.ends.size(); ++k) {
          const size_t from = g.start(k);
          rows.Set(static_cast<uint32_t>(k - g.head), DecodeRow(env, g.data.data() + from, g.ends[k] - from, &keys));
        }
        seg.Set("rows", rows);
      }
      segments.Set(static_cast<uint32_t>(s), seg);
    }
    segments_.clear();
    Napi::Object o = Napi::Object::New(env);
    o.Set("segments", segments);
    o.Set("left", static_cast<double>(left));
    return o;
  }

  // A Buffer over the segment's lines, without a copy; registered so a sink can share them.
  static Napi::Value LendLines(Napi::Env env, SourceSegment &&g, size_t base, size_t length) {
    auto lines = std::make_shared<SharedLines>();
    lines->data = std::move(g.data);
    lines->ends = std::move(g.ends);
    lines->head = g.head;
    char *start = &lines->data[0] + base;
    auto *hint = new std::shared_ptr<SharedLines>(lines);
    // Tell V8 what the buffer holds, so a fast producer makes the GC collect spent batches.
    const int64_t held = static_cast<int64_t>(lines->data.capacity() + lines->ends.capacity() * 4);
    Napi::MemoryManagement::AdjustExternalMemory(env, held);
    {
      std::lock_guard<std::mutex> lock(LentMutex());
      Lent()[start] = lines;
    }
    return Napi::Buffer<char>::New(env, start, length, [held](Napi::Env e, char *data, std::shared_ptr<SharedLines> *h) {
      {
        std::lock_guard<std::mutex> lock(LentMutex());
        Lent().erase(data);
      }
      Napi::MemoryManagement::AdjustExternalMemory(e, -held);
      delete h;
    }, hint);
  }

  static napi_value DecodeRow(Napi::Env env, const char *bytes, size_t size, std::unordered_map<std::string, napi_value> *keys) {
    napi_value row;
    napi_create_object(env, &row);
    const char *p = bytes;
    const char *end = p + size;
    while (p + 3 <= end) {
      const uint8_t type = static_cast<uint8_t>(*p);
      uint16_t nlen;
      std::memcpy(&nlen, p + 1, 2);
      p += 3;
      if (p + nlen > end) break;
      std::string name(p, nlen);
      p += nlen;
      napi_value key, value = nullptr;
      auto it = keys->find(name);
      if (it != keys->end()) {
        key = it->second;
      } else {
        napi_create_string_utf8(env, name.data(), name.size(), &key);
        (*keys)[name] = key;
      }
      switch (type) {
        case 0: napi_get_null(env, &value); break;
        case 1: napi_get_boolean(env, p < end && *p != 0, &value); p += 1; break;
        case 2: {
          int64_t v = 0;
          if (p + 8 <= end) std::memcpy(&v, p, 8);
          p += 8;
          if (v >= -(int64_t(1) << 53) && v <= (int64_t(1) << 53)) napi_create_double(env, static_cast<double>(v), &value);
          else napi_create_bigint_int64(env, v, &value);
          break;
        }
        case 3: {
          double v = 0;
          if (p + 8 <= end) std::memcpy(&v, p, 8);
          p += 8;
          napi_create_double(env, v, &value);
          break;
        }
        case 4: {
          uint32_t len = 0;
          if (p + 4 <= end) std::memcpy(&len, p, 4);
          p += 4;
          if (p + len > end) len = static_cast<uint32_t>(end - p);
          napi_create_string_utf8(env, p, len, &value);
          p += len;
          break;
        }
        default: p = end; break;
      }
      if (value != nullptr) napi_set_property(env, row, key, value);
    }
    return row;
  }

  Napi::Value StatsJs(const Napi::CallbackInfo &info) {
    if (source_ == nullptr) return info.Env().Null();
    return Stats(info.Env(), source_.get(), source_->Depth());
  }

  Napi::Value Stop(const Napi::CallbackInfo &info) {
    if (source_ != nullptr) source_->Stop();
    return info.Env().Undefined();
  }

  // No more wakes: after the source finished and was drained, or when abandoning it.
  Napi::Value Dispose(const Napi::CallbackInfo &info) {
    if (source_ != nullptr) {
      source_->Stop();
      ReleaseWake(info.Env(), source_.get(), &wake_);
    }
    return info.Env().Undefined();
  }

  std::shared_ptr<Source> source_;
  WakeFn wake_;
  std::vector<SourceSegment> segments_;
};

// ---- NativeSink --------------------------------------------------------------------------------

class SinkWrap : public Napi::ObjectWrap<SinkWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeSink",
                       {InstanceMethod<&SinkWrap::PushEncoded>("pushEncoded"),
                        InstanceMethod<&SinkWrap::PushColumns>("pushColumns"), InstanceMethod<&SinkWrap::StatsJs>("stats"),
                        InstanceMethod<&SinkWrap::Stop>("stop"), InstanceMethod<&SinkWrap::Abandon>("abandon"),
                        InstanceMethod<&SinkWrap::Dispose>("dispose"), InstanceAccessor<&SinkWrap::Encoded>("encoded")});
  }

  explicit SinkWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<SinkWrap>(info) {
    Napi::Env env = info.Env();
    int index = 0;
    std::shared_ptr<Library> lib = ResolveIo(env, info, 2, &index);
    if (lib == nullptr) return;
    if (info.Length() < 6 || !info[4].IsObject()) {
      Throw(env, "E_USAGE", "new NativeSink(path, index, ruleId, config, options, onWake)");
      return;
    }
    Napi::Object opts = info[4].As<Napi::Object>();
    SinkOptions o;
    o.capacity = static_cast<size_t>(std::max<int64_t>(1, NumberOption(opts, "capacity", 16)));
    o.max_retries = NumberOption(opts, "maxRetries", 3);
    o.backoff_ms = std::max<int64_t>(1, NumberOption(opts, "backoffMs", 100));
    o.max_backoff_ms = std::max<int64_t>(o.backoff_ms, NumberOption(opts, "maxBackoffMs", 5000));
    sink_ = std::make_shared<Sink>(lib, index, StringArg(info[2]), StringArg(info[3]), o);
    if (!MakeWake(env, info[5], sink_, &wake_)) {
      sink_.reset();
      return;
    }
    sink_->Start(sink_);
  }

  ~SinkWrap() override {
    if (sink_ != nullptr) {
      sink_->Stop();
      if (!wake_.released && wake_.tsfn != nullptr) {
        sink_->DetachWake();
        napi_release_threadsafe_function(wake_.tsfn, napi_tsfn_release);
      }
    }
  }

 private:
  Napi::Value Result(Napi::Env env, std::unique_ptr<SinkBatch> &batch) {
    bool fatal = false;
    const bool taken = sink_->Push(batch, &fatal);
    return Napi::Number::New(env, taken ? 0 : fatal ? 2 : 1);
  }

  // pushEncoded(text, nrows) -> 0 taken, 1 queue full (wait for a wake), 2 stopped for good.
  // `text` (a string, or a Buffer/Uint8Array of UTF-8) is nrows JSON objects, each followed by "\n".
  Napi::Value PushEncoded(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (sink_ == nullptr) return Napi::Number::New(env, 2);
    if (info.Length() < 2 || !(info[0].IsString() || info[0].IsTypedArray()) || !info[1].IsNumber()) {
      return Throw(env, "E_USAGE", "pushEncoded(text: string | Uint8Array, nrows: number)");
    }
    auto batch = std::make_unique<SinkBatch>();
    size_t length = 0;
    if (info[0].IsString()) {
      napi_get_value_string_utf8(env, info[0], nullptr, 0, &length);
      batch->data.resize(length + 1);
      napi_get_value_string_utf8(env, info[0], &batch->data[0], length + 1, &length);
      batch->data.resize(length);
    } else {
      Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
      if (ta.TypedArrayType() != napi_uint8_array) return Throw(env, "E_USAGE", "pushEncoded: expected a Uint8Array or Buffer");
      length = ta.ByteLength();
      const char *bytes = static_cast<const char *>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      const size_t nrows = info[1].As<Napi::Number>().Uint32Value();
      // A source's batch passed on whole: share its storage, its line ends are known.
      if ((batch->shared = FindLent(bytes, length, nrows)) != nullptr) {
        batch->nrows = nrows;
        return Result(env, batch);
      }
      batch->data.assign(bytes, length);
    }
    batch->nrows = info[1].As<Napi::Number>().Uint32Value();
    batch->offsets.reserve(batch->nrows + 1);
    batch->offsets.push_back(0);
    const char *base = batch->data.data();
    const char *p = base;
    const char *end = base + length;
    while (p < end) {
      const void *nl = std::memchr(p, '\n', static_cast<size_t>(end - p));
      if (nl == nullptr) break;
      p = static_cast<const char *>(nl) + 1;
      batch->offsets.push_back(static_cast<uint32_t>(p - base));
    }
    if (batch->offsets.size() != batch->nrows + 1 || p != end) {
      return Throw(env, "E_INTERNAL", "pushEncoded: text has " + std::to_string(batch->offsets.size() - 1) +
                                          " newline-terminated rows, expected " + std::to_string(batch->nrows));
    }
    return Result(env, batch);
  }

  // pushColumns(nrows, names, types, values, nulls): typed columns (sp_type codes; values are
  // Float64Array / BigInt64Array / Uint8Array / string[]; nulls Uint8Array or undefined).
  Napi::Value PushColumns(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (sink_ == nullptr) return Napi::Number::New(env, 2);
    if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsArray() || !info[2].IsArray() || !info[3].IsArray() ||
        !info[4].IsArray()) {
      return Throw(env, "E_USAGE", "pushColumns(nrows, names, types, values, nulls)");
    }
    auto batch = std::make_unique<SinkBatch>();
    const size_t nrows = info[0].As<Napi::Number>().Uint32Value();
    Napi::Array names = info[1].As<Napi::Array>(), types = info[2].As<Napi::Array>();
    Napi::Array values = info[3].As<Napi::Array>(), nulls = info[4].As<Napi::Array>();
    const uint32_t ncols = names.Length();
    batch->nrows = nrows;
    // storage per column: [0] values or string data, [1] nulls; never reallocated after filling.
    batch->storage.resize(static_cast<size_t>(ncols) * 2);
    batch->string_offsets.resize(ncols);
    std::vector<uint32_t> col_types(ncols);
    std::vector<bool> has_nulls(ncols, false);
    for (uint32_t c = 0; c < ncols; ++c) {
      batch->names.push_back(names.Get(c).As<Napi::String>().Utf8Value());
      const uint32_t type = types.Get(c).As<Napi::Number>().Uint32Value();
      col_types[c] = type;
      Napi::Value v = values.Get(c);
      std::string &store = batch->storage[c * 2];
      if (type == SP_TYPE_STRING || type == SP_TYPE_BYTES) {
        Napi::Array strings = v.As<Napi::Array>();
        auto &offs = batch->string_offsets[c];
        offs.assign(nrows + 1, 0);
        for (uint32_t r = 0; r < nrows; ++r) {
          Napi::Value s = strings.Get(r);
          if (s.IsString()) store += s.As<Napi::String>().Utf8Value();
          offs[r + 1] = static_cast<uint32_t>(store.size());
        }
      } else {
        const size_t width = TypeWidth(type);
        if (width == 0 || !v.IsTypedArray()) return Throw(env, "E_USAGE", "pushColumns: column " + batch->names.back() + " has no typed values");
        Napi::TypedArray ta = v.As<Napi::TypedArray>();
        const size_t bytes = std::min(ta.ByteLength(), nrows * width);
        const char *src = static_cast<const char *>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
        store.assign(src, bytes);
        store.resize(nrows * width, '\0');
      }
      Napi::Value n = nulls.Get(c);
      if (n.IsTypedArray()) {
        Napi::Uint8Array mask = n.As<Napi::Uint8Array>();
        batch->storage[c * 2 + 1].assign(reinterpret_cast<const char *>(mask.Data()), std::min(mask.ElementLength(), nrows));
        batch->storage[c * 2 + 1].resize(nrows, '\0');
        has_nulls[c] = true;
      }
    }
    for (uint32_t c = 0; c < ncols; ++c) {
      sp_column col{};
      col.size = sizeof(sp_column);
      col.type = col_types[c];
      col.length = nrows;
      if (col.type == SP_TYPE_STRING || col.type == SP_TYPE_BYTES) {
        col.data = batch->storage[c * 2].data();
        col.offsets = batch->string_offsets[c].data();
      } else {
        col.values = batch->storage[c * 2].data();
      }
      col.nulls = has_nulls[c] ? reinterpret_cast<const uint8_t *>(batch->storage[c * 2 + 1].data()) : nullptr;
      batch->columns.push_back(col);
    }
    return Result(env, batch);
  }

  Napi::Value StatsJs(const Napi::CallbackInfo &info) {
    if (sink_ == nullptr) return info.Env().Null();
    return Stats(info.Env(), sink_.get(), sink_->Depth());
  }

  Napi::Value Stop(const Napi::CallbackInfo &info) {
    if (sink_ != nullptr) sink_->Stop();
    return info.Env().Undefined();
  }

  Napi::Value Abandon(const Napi::CallbackInfo &info) {
    if (sink_ != nullptr) sink_->Abandon();
    return info.Env().Undefined();
  }

  Napi::Value Dispose(const Napi::CallbackInfo &info) {
    if (sink_ != nullptr) {
      sink_->Stop();
      ReleaseWake(info.Env(), sink_.get(), &wake_);
    }
    return info.Env().Undefined();
  }

  Napi::Value Encoded(const Napi::CallbackInfo &info) {
    return Napi::Boolean::New(info.Env(), sink_ != nullptr && (sink_->def().flags & SP_SINK_ENCODED) != 0);
  }

  std::shared_ptr<Sink> sink_;
  WakeFn wake_;
};

// describeIo(path) -> { sources: [...], sinks: [...] } of an open library.
Napi::Value DescribeIo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const std::string path = info.Length() > 0 ? StringArg(info[0]) : "";
  std::shared_ptr<Library> lib = FindLibrary(path);
  if (lib == nullptr || !lib->open()) return Throw(env, "E_PLUGIN_NOT_LOADED", path + " is not open; load the plugin first");
  const sp_plugin_descriptor *d = lib->desc;
  Napi::Array sources = Napi::Array::New(env, NumSources(d));
  for (size_t i = 0; i < NumSources(d); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", lib->Source(i).name);
    o.Set("flags", lib->Source(i).flags);
    o.Set("hasValidate", lib->Source(i).validate != nullptr);
    o.Set("hasRun", lib->Source(i).run != nullptr);
    sources.Set(static_cast<uint32_t>(i), o);
  }
  Napi::Array sinks = Napi::Array::New(env, NumSinks(d));
  for (size_t i = 0; i < NumSinks(d); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", lib->Sink(i).name);
    o.Set("flags", lib->Sink(i).flags);
    o.Set("hasValidate", lib->Sink(i).validate != nullptr);
    sinks.Set(static_cast<uint32_t>(i), o);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("sources", sources);
  o.Set("sinks", sinks);
  return o;
}

// validateIo(path, 'source' | 'sink', index, config): the validate hook, on the host thread.
Napi::Value ValidateIo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber()) {
    return Throw(env, "E_USAGE", "validateIo(path, 'source' | 'sink', index, config)");
  }
  const int kind = StringArg(info[1]) == "source" ? 1 : 2;
  const std::string path = StringArg(info[0]);
  std::shared_ptr<Library> lib = FindLibrary(path);
  if (lib == nullptr || !lib->open() || !lib->initialized) return Throw(env, "E_PLUGIN_NOT_LOADED", path + " is not loaded");
  const int64_t i = info[2].As<Napi::Number>().Int64Value();
  const size_t n = kind == 1 ? NumSources(lib->desc) : NumSinks(lib->desc);
  if (i < 0 || static_cast<size_t>(i) >= n) return Throw(env, "E_NOT_FOUND", "no such source/sink #" + std::to_string(i));
  const std::string config = StringArg(info[3]);
  std::string message;
  if (!ValidateIoConfig(lib.get(), kind, static_cast<size_t>(i), config, &message)) return Throw(env, "E_CONNECTOR_CONFIG", message);
  return env.Undefined();
}

// canonicalJson(text: string | Uint8Array) -> boolean: the check a source's messages get (tests).
Napi::Value CanonicalJson(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string text;
  if (info.Length() > 0 && info[0].IsString()) {
    text = info[0].As<Napi::String>().Utf8Value();
  } else if (info.Length() > 0 && info[0].IsTypedArray()) {
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    text.assign(static_cast<const char *>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), ta.ByteLength());
  } else {
    return Throw(env, "E_USAGE", "canonicalJson(text: string | Uint8Array)");
  }
  return Napi::Boolean::New(env, CanonicalJsonObject(text.data(), text.size()));
}

// ioLive() -> { sources, sinks, threads, queuedItems, sinkBatches, lentLines }: what every source
// and sink instance of the process holds (io.h, IoLive); all 0 once each was stopped and collected.
Napi::Value IoLiveJs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  IoLive &live = LiveIo();
  Napi::Object o = Napi::Object::New(env);
  o.Set("sources", static_cast<double>(live.sources.load()));
  o.Set("sinks", static_cast<double>(live.sinks.load()));
  o.Set("threads", static_cast<double>(live.threads.load()));
  o.Set("queuedItems", static_cast<double>(live.queued_items.load()));
  o.Set("sinkBatches", static_cast<double>(live.sink_batches.load()));
  o.Set("lentLines", static_cast<double>(live.lent_lines.load()));
  return o;
}

}  // namespace

void InitIo(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeSource", SourceWrap::Define(env));
  exports.Set("NativeSink", SinkWrap::Define(env));
  exports.Set("describeIo", Napi::Function::New(env, DescribeIo, "describeIo"));
  exports.Set("validateIo", Napi::Function::New(env, ValidateIo, "validateIo"));
  exports.Set("canonicalJson", Napi::Function::New(env, CanonicalJson, "canonicalJson"));
  exports.Set("ioLive", Napi::Function::New(env, IoLiveJs, "ioLive"));
}

}  // namespace streamplug
