// streamplug_worker: runs one plugin in a process of its own (isolation "process").
//
//   streamplug_worker PLUGIN.so --parent PID [--memory-limit BYTES] [--tag TAG]
//
// fd 3 is the shared-memory channel (native/isolated/channel.h), stdin the lifeline (EOF: the host
// is gone, exit), stdout one JSON line per event (the ready description, then plugin log lines),
// stderr the plugin's own output. The plugin is opened and validated by the same code as in the
// host (library.cc, host_api.cc, io.cc compiled in): the same checks, the same messages.
//
// The worker trusts the host's offsets only as far as the mapping reaches: every column is
// bounds-checked against the arena before a plugin sees it.
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../host/state_version.h"
#include "../host/core.h"
#include "../host/io.h"
#include "../isolated/channel.h"

namespace streamplug {

// host->result_set_string for the worker: one string per row, packed into the arena after the call.
struct ResultStore {
  std::vector<std::string> rows;
};

sp_status ResultSetString(sp_result *result, size_t row, const char *text, size_t length) {
  if (result == nullptr || result->host_reserved == nullptr || row >= result->length || (text == nullptr && length > 0)) {
    return SP_ERROR;
  }
  static_cast<ResultStore *>(result->host_reserved)->rows[row].assign(text != nullptr ? text : "", length);
  return SP_OK;
}

}  // namespace streamplug

namespace {

using namespace streamplug;
namespace iso = streamplug::isolated;

uint8_t *base = nullptr;
size_t arena_bytes = 0;
std::shared_ptr<Library> lib;
std::unordered_map<uint32_t, sp_ctx *> instances;
ResultStore pending;  // a string result waiting for kOpFetchResult
bool pending_valid = false;

uint32_t *Slot(uint32_t i) { return reinterpret_cast<uint32_t *>(base) + i; }
uint32_t Load(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
void Store(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string Json(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// One JSON line on stdout. Non-blocking: while the host is blocked waiting for a call, a full pipe
// must not block the plugin (and the call) too; a line that does not fit is dropped.
void Emit(const std::string &line) {
  const std::string text = line + "\n";
  const char *p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = write(1, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // pipe full (host busy) or gone: the line is lost, the plugin goes on
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void Respond(uint32_t status, const std::string &message = std::string(), uint32_t r0 = 0, uint32_t r1 = 0) {
  const size_t n = message.size() < iso::kMessageCapacity ? message.size() : iso::kMessageCapacity;
  std::memcpy(base + iso::kMessageOffset, message.data(), n);
  Store(Slot(iso::kSlotMessageLength), static_cast<uint32_t>(n));
  Store(Slot(iso::kSlotR0), r0);
  Store(Slot(iso::kSlotR1), r1);
  Store(Slot(iso::kSlotStatus), status);
}

bool InArena(uint64_t offset, uint64_t bytes) { return offset >= iso::kHeaderBytes && offset + bytes <= arena_bytes; }

size_t Width(uint32_t type) {
  switch (type) {
    case SP_TYPE_BOOL: return 1;
    case SP_TYPE_INT64:
    case SP_TYPE_FLOAT64: return 8;
    default: return 0;
  }
}

bool AnyByteSet(const uint8_t *p, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != 0) return true;
  }
  for (; i < n; ++i) {
    if (p[i] != 0) return true;
  }
  return false;
}

std::string FailureText(sp_ctx *ctx, const char *hook, sp_status status) {
  const sp_function_def &def = lib->Function(ctx->function);
  std::string reason = ctx->error_set ? ctx->error
                                      : "returned status " + std::to_string(static_cast<int>(status)) + " without calling set_error";
  std::string rule = ctx->rule_id.empty() ? "" : ", rule " + ctx->rule_id;
  return std::string("function ") + def.name + " (plugin " + lib->name + rule + ") " + hook + " failed: " + reason;
}

// Packs the string result into the out area: [nout+1 offsets][data]. False: not enough room.
bool PackStrings(const ResultStore &store, uint32_t out, uint32_t capacity, uint32_t *needed) {
  uint64_t total = 0;
  for (const auto &row : store.rows) total += row.size();
  const uint64_t need = 4 * (store.rows.size() + 1) + total;
  *needed = need > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<uint32_t>(need);
  if (need > capacity || !InArena(out, need)) return false;
  auto *offsets = reinterpret_cast<uint32_t *>(base + out);
  char *data = reinterpret_cast<char *>(offsets + store.rows.size() + 1);
  uint32_t at = 0;
  offsets[0] = 0;
  for (size_t i = 0; i < store.rows.size(); ++i) {
    std::memcpy(data + at, store.rows[i].data(), store.rows[i].size());
    at += static_cast<uint32_t>(store.rows[i].size());
    offsets[i + 1] = at;
  }
  return true;
}

void DoCall(uint32_t id, uint32_t block_offset, uint32_t nrows) {
  auto it = instances.find(id);
  if (it == instances.end()) return Respond(iso::kStatusBadRequest, "no instance #" + std::to_string(id) + " in this worker");
  sp_ctx *ctx = it->second;
  if (!InArena(block_offset, sizeof(iso::CallBlock))) return Respond(iso::kStatusBadRequest, "call block outside the arena");
  const auto *block = reinterpret_cast<const iso::CallBlock *>(base + block_offset);
  const uint32_t nargs = block->nargs;
  if (nargs > 1024 || !InArena(block_offset, sizeof(iso::CallBlock) + sizeof(iso::ColumnRef) * nargs)) {
    return Respond(iso::kStatusBadRequest, "call block with " + std::to_string(nargs) + " arguments runs past the arena");
  }
  const sp_function_def &def = lib->Function(ctx->function);
  std::vector<sp_column> args(nargs);
  for (uint32_t i = 0; i < nargs; ++i) {
    const iso::ColumnRef &ref = block->args[i];
    sp_column &col = args[i];
    std::memset(&col, 0, sizeof col);
    col.size = sizeof(sp_column);
    col.type = ref.type;
    col.length = nrows;
    col.is_constant = ref.is_constant;
    const size_t width = Width(ref.type);
    if (width > 0) {
      if (!InArena(ref.values, static_cast<uint64_t>(width) * nrows)) return Respond(iso::kStatusBadRequest, "argument values outside the arena");
      col.values = base + ref.values;
    } else if (ref.type == SP_TYPE_STRING || ref.type == SP_TYPE_BYTES) {
      if (!InArena(ref.offsets, 4ull * (nrows + 1))) return Respond(iso::kStatusBadRequest, "argument offsets outside the arena");
      const auto *off = reinterpret_cast<const uint32_t *>(base + ref.offsets);
      for (uint32_t r = 0; r < nrows; ++r) {
        if (off[r] > off[r + 1]) return Respond(iso::kStatusBadRequest, "argument offsets decrease at row " + std::to_string(r));
      }
      if (!InArena(ref.data, off[nrows])) return Respond(iso::kStatusBadRequest, "argument data outside the arena");
      col.offsets = off;
      col.data = reinterpret_cast<const char *>(base + ref.data);
    } else {
      return Respond(iso::kStatusBadRequest, "argument type " + std::to_string(ref.type) + " is not a column type");
    }
    if (ref.nulls != 0) {
      if (!InArena(ref.nulls, nrows)) return Respond(iso::kStatusBadRequest, "argument nulls outside the arena");
      const uint8_t *mask = base + ref.nulls;
      // plugin.h: nulls is NULL when no value is null.
      if (AnyByteSet(mask, ref.is_constant && nrows > 0 ? 1 : nrows)) col.nulls = mask;
    }
  }
  uint32_t one_group[2] = {0, nrows};
  size_t ngroups = nrows;
  const uint32_t *groups = nullptr;
  if (def.kind == SP_FUNCTION_AGGREGATE) {
    if (block->group_offsets != 0) {
      ngroups = block->ngroups;
      if (!InArena(block->group_offsets, 4ull * (ngroups + 1))) return Respond(iso::kStatusBadRequest, "group offsets outside the arena");
      groups = reinterpret_cast<const uint32_t *>(base + block->group_offsets);
      if (groups[0] != 0 || groups[ngroups] != nrows) return Respond(iso::kStatusBadRequest, "group offsets must run from 0 to nrows");
      for (size_t g = 0; g < ngroups; ++g) {
        if (groups[g] > groups[g + 1]) return Respond(iso::kStatusBadRequest, "group offsets decrease");
      }
    } else {
      ngroups = 1;  // a frame of an aggregate: all rows are one group
      groups = one_group;
    }
  }
  const size_t width = Width(block->result_type);
  const bool strings = block->result_type == SP_TYPE_STRING || block->result_type == SP_TYPE_BYTES;
  if (width == 0 && !strings) return Respond(iso::kStatusBadRequest, "result type is not a column type");
  if (!InArena(block->result_nulls, ngroups) || (width > 0 && !InArena(block->result_values, width * ngroups))) {
    return Respond(iso::kStatusBadRequest, "result columns outside the arena");
  }
  ResultStore store;
  sp_result result{};
  result.size = sizeof(sp_result);
  result.type = block->result_type;
  result.length = ngroups;
  result.nulls = base + block->result_nulls;
  std::memset(result.nulls, 0, ngroups);
  if (strings) {
    store.rows.resize(ngroups);
    result.host_reserved = &store;
  } else {
    result.values = base + block->result_values;
  }
  sp_call call{};
  call.size = sizeof(sp_call);
  call.ctx = ctx;
  call.nargs = nargs;
  call.args = args.data();
  call.nrows = nrows;
  call.ngroups = ngroups;
  call.group_offsets = groups;
  call.result = &result;
  // As in the host: a C++ exception escaping the hook fails the call (SP_ERROR, named), no abort.
  const sp_status status = RunHook(lib.get(), ctx, Hook::kCall, [&]() { return def.call(&call); });
  if (status != SP_OK) return Respond(iso::kStatusPluginError, FailureText(ctx, "call", status));
  if (!strings) return Respond(iso::kStatusOk);
  uint32_t needed = 0;
  if (!PackStrings(store, block->out, block->out_capacity, &needed)) {
    pending = std::move(store);
    pending_valid = true;
    return Respond(iso::kStatusNeedSpace, std::string(), needed);
  }
  Respond(iso::kStatusOk, std::string(), needed);
}

void DoValidate(uint32_t function, uint32_t offset, uint32_t length) {
  if (function >= lib->desc->n_functions) return Respond(iso::kStatusBadRequest, "no function #" + std::to_string(function));
  const sp_function_def &def = lib->Function(function);
  if (def.validate == nullptr) return Respond(iso::kStatusOk);
  if (!InArena(offset, length) || length < 4) return Respond(iso::kStatusBadRequest, "validate payload outside the arena");
  const uint8_t *p = base + offset, *end = p + length;
  uint32_t n;
  std::memcpy(&n, p, 4);
  p += 4;
  std::vector<std::string> texts(n);
  std::vector<sp_arg_info> infos(n);
  for (uint32_t i = 0; i < n; ++i) {
    if (p + 12 > end) return Respond(iso::kStatusBadRequest, "validate payload truncated");
    uint32_t head[3];
    std::memcpy(head, p, 12);
    p += 12;
    if (p + head[2] > end) return Respond(iso::kStatusBadRequest, "validate payload truncated");
    infos[i].size = sizeof(sp_arg_info);
    infos[i].type = head[0];
    infos[i].is_literal = head[1];
    texts[i].assign(reinterpret_cast<const char *>(p), head[2]);
    p += (head[2] + 3) & ~3u;
  }
  for (uint32_t i = 0; i < n; ++i) infos[i].literal_text = infos[i].is_literal ? texts[i].c_str() : nullptr;
  sp_ctx probe;
  probe.lib = lib.get();
  probe.function = static_cast<int>(function);
  const sp_status status = RunHook(lib.get(), &probe, Hook::kValidate, [&]() { return def.validate(&probe, infos.data(), n); });
  if (status != SP_OK) {
    const std::string reason = probe.error_set ? probe.error : "returned status " + std::to_string(static_cast<int>(status)) + " without calling set_error";
    return Respond(iso::kStatusPluginError, std::string("function ") + def.name + " (plugin " + lib->name + ") validate failed: " + reason);
  }
  Respond(iso::kStatusOk);
}

void Put32(std::string *out, uint32_t v) { out->append(reinterpret_cast<const char *>(&v), 4); }
void Pad4(std::string *out) { out->resize((out->size() + 3) & ~static_cast<size_t>(3)); }

void DoExportState(uint32_t id, uint32_t out, uint32_t capacity) {
  auto it = instances.find(id);
  if (it == instances.end()) return Respond(iso::kStatusBadRequest, "no instance #" + std::to_string(id));
  std::string blob;
  // Contract 1.3: the same version stamp the in-process addon adds (state_version.cc).
  StateMap state = it->second->state;
  const std::string stamp = StateStamp(*it->second->lib);
  if (!stamp.empty() && !state.empty()) state[kStateVersionKey] = stamp;
  Put32(&blob, static_cast<uint32_t>(state.size()));
  for (const auto &kv : state) {
    Put32(&blob, static_cast<uint32_t>(kv.first.size()));
    blob += kv.first;
    Pad4(&blob);
    Put32(&blob, static_cast<uint32_t>(kv.second.size()));
    blob += kv.second;
    Pad4(&blob);
  }
  if (blob.size() > capacity || !InArena(out, blob.size())) return Respond(iso::kStatusNeedSpace, std::string(), static_cast<uint32_t>(blob.size()));
  std::memcpy(base + out, blob.data(), blob.size());
  Respond(iso::kStatusOk, std::string(), static_cast<uint32_t>(blob.size()));
}

void DoImportState(uint32_t id, uint32_t offset, uint32_t length) {
  auto it = instances.find(id);
  if (it == instances.end()) return Respond(iso::kStatusBadRequest, "no instance #" + std::to_string(id));
  if (!InArena(offset, length) || length < 4) return Respond(iso::kStatusBadRequest, "state payload outside the arena");
  const uint8_t *p = base + offset, *end = p + length;
  uint32_t n;
  std::memcpy(&n, p, 4);
  p += 4;
  std::unordered_map<std::string, std::string> state;
  for (uint32_t i = 0; i < n; ++i) {
    std::string parts[2];
    for (auto &part : parts) {
      uint32_t len;
      if (p + 4 > end) return Respond(iso::kStatusBadRequest, "state payload truncated");
      std::memcpy(&len, p, 4);
      p += 4;
      if (p + len > end) return Respond(iso::kStatusBadRequest, "state payload truncated");
      part.assign(reinterpret_cast<const char *>(p), len);
      p += (len + 3) & ~3u;
    }
    state[parts[0]] = parts[1];
  }
  // Contract 1.3: restored, migrated by migrate_state, or dropped with a log line (both versions).
  const StateImport r = ImportVersionedState(it->second->lib, it->second, std::move(state));
  if (!r.error.empty()) return Respond(iso::kStatusBadRequest, r.error);
  Respond(iso::kStatusOk);
}


// ---- Sources and sinks: io.cc's Source and Sink run here as in the host; the host pulls ----------

std::unordered_map<uint32_t, std::shared_ptr<Source>> sources;
std::unordered_map<uint32_t, std::shared_ptr<Sink>> sinks;
std::unordered_map<uint32_t, std::vector<SourceSegment>> drained;  // drained, waiting for a larger out area

bool HasIo(uint32_t id) { return sources.count(id) > 0 || sinks.count(id) > 0; }

const char *StateName(int state) {
  switch (state) {
    case SP_IO_CONNECTED: return "connected";
    case SP_IO_RECONNECTING: return "reconnecting";
    case SP_IO_ERROR: return "error";
    default: return "connecting";
  }
}

// The counters as native-io.ts's IoStats, JSON; long texts are cut so the whole fits the message slot.
std::string StatsJson(IoBase *io, size_t depth) {
  IoCounters &c = io->counters;
  auto cut = [](const std::string &t) { return Json(t.size() > 900 ? t.substr(0, 900) : t); };
  std::string state, message, last;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    state = StateName(c.state);
    message = c.status_message;
    last = c.last_error;
  }
  return "{\"in\":" + std::to_string(c.in.load()) + ",\"out\":" + std::to_string(c.out.load()) +
         ",\"dropped\":" + std::to_string(c.dropped.load()) + ",\"errors\":" + std::to_string(c.errors.load()) +
         ",\"retries\":" + std::to_string(c.retries.load()) + ",\"depth\":" + std::to_string(depth) +
         ",\"lastLatencyMs\":" + std::to_string(static_cast<double>(c.last_latency_ns.load()) / 1e6) +
         ",\"maxLatencyMs\":" + std::to_string(static_cast<double>(c.max_latency_ns.load()) / 1e6) +
         ",\"state\":\"" + state + "\",\"message\":" + cut(message) + ",\"lastError\":" + cut(last) +
         ",\"failure\":" + cut(io->failure()) + ",\"opened\":" + (io->opened() ? "true" : "false") +
         ",\"finished\":" + (io->finished() ? "true" : "false") + "}";
}

void RespondIo(uint32_t status, Source *src, uint32_t r0 = 0, uint32_t r1 = 0) { Respond(status, StatsJson(src, src->Depth()), r0, r1); }
void RespondIo(uint32_t status, Sink *snk, uint32_t r0 = 0, uint32_t r1 = 0) { Respond(status, StatsJson(snk, snk->Depth()), r0, r1); }

// A wake for the host: one stdout line per pending wake (io.cc coalesces them until the host drains).
std::function<void()> WakeLine(uint32_t id) {
  return [id]() { Emit("{\"type\":\"wake\",\"id\":" + std::to_string(id) + "}"); };
}

void DoIoOpen(uint32_t id, uint32_t kind_index, uint32_t offset, uint32_t length) {
  const uint32_t kind = kind_index & 0xFF, index = kind_index >> 8;
  if (HasIo(id)) return Respond(iso::kStatusBadRequest, "io instance #" + std::to_string(id) + " exists already");
  if (!InArena(offset, length) || length < 24) return Respond(iso::kStatusBadRequest, "io open payload outside the arena");
  uint32_t head[6];
  std::memcpy(head, base + offset, 24);
  if (24ull + head[0] + head[1] > length) return Respond(iso::kStatusBadRequest, "io open payload truncated");
  const std::string rule(reinterpret_cast<const char *>(base + offset + 24), head[0]);
  std::string config(reinterpret_cast<const char *>(base + offset + 24 + head[0]), head[1]);
  if (kind == 1) {
    if (index >= NumSources(lib->desc)) return Respond(iso::kStatusBadRequest, "no source #" + std::to_string(index));
    const Overflow policy = head[3] == 1 ? Overflow::kDropOldest : head[3] == 2 ? Overflow::kDropNewest : Overflow::kBlock;
    auto src = std::make_shared<Source>(lib, static_cast<int>(index), rule, std::move(config), head[2] == 0 ? 1 : head[2], policy,
                                        head[4] != 0, head[5] == 0 ? 1 : head[5]);
    src->SetWake(WakeLine(id));
    sources[id] = src;
    src->Start(src);
    return RespondIo(iso::kStatusOk, src.get());
  }
  if (kind == 2) {
    if (index >= NumSinks(lib->desc)) return Respond(iso::kStatusBadRequest, "no sink #" + std::to_string(index));
    SinkOptions o;
    o.capacity = head[2] == 0 ? 1 : head[2];
    o.max_retries = static_cast<int32_t>(head[3]);
    o.backoff_ms = head[4] == 0 ? 1 : head[4];
    o.max_backoff_ms = head[5] < head[4] ? head[4] : head[5];
    auto snk = std::make_shared<Sink>(lib, static_cast<int>(index), rule, std::move(config), o);
    snk->SetWake(WakeLine(id));
    sinks[id] = snk;
    snk->Start(snk);
    return RespondIo(iso::kStatusOk, snk.get());
  }
  Respond(iso::kStatusBadRequest, "io kind " + std::to_string(kind) + " is neither 1 (source) nor 2 (sink)");
}

size_t Pad(size_t n) { return (n + 3) & ~static_cast<size_t>(3); }

// Bytes the DrainBlock of `segs` takes.
size_t DrainBytes(const std::vector<SourceSegment> &segs) {
  size_t n = 4;
  for (const auto &g : segs) {
    size_t data = g.ends.empty() ? 0 : g.ends.back() - g.start(g.head);
    if (g.kind == kRawMessage) data += g.size() + 1;  // "[", commas, "]"
    n += 12 + 4 * g.size() + Pad(data);
  }
  return n;
}

void DoSourceDrain(uint32_t id, uint32_t out, uint32_t capacity, uint32_t max) {
  auto it = sources.find(id);
  if (it == sources.end()) return Respond(iso::kStatusBadRequest, "no source instance #" + std::to_string(id));
  Source *src = it->second.get();
  src->WakeTaken();  // pushes from now on wake the host again
  std::vector<SourceSegment> &segs = drained[id];
  size_t left = src->Depth();
  if (segs.empty()) left = src->Drain(&segs, max == 0 ? 1 : max);
  const size_t need = DrainBytes(segs);
  if (need > capacity || !InArena(out, need)) return RespondIo(iso::kStatusNeedSpace, src, static_cast<uint32_t>(need), static_cast<uint32_t>(left));
  uint8_t *p = base + out;
  auto put = [&p](uint32_t v) {
    std::memcpy(p, &v, 4);
    p += 4;
  };
  put(static_cast<uint32_t>(segs.size()));
  for (const auto &g : segs) {
    const size_t n = g.size(), from = g.start(g.head);
    put(g.kind);
    put(static_cast<uint32_t>(n));
    uint8_t *len_at = p;
    put(0);
    uint8_t *ends = p;
    p += 4 * n;
    uint8_t *data = p;
    uint32_t at = 0;
    if (g.kind == kRawMessage) data[at++] = '[';
    for (size_t k = g.head; k < g.ends.size(); ++k) {
      if (g.kind == kRawMessage && k > g.head) data[at++] = ',';
      const size_t s = g.start(k), len = g.ends[k] - s;
      std::memcpy(data + at, g.data.data() + s, len);
      at += static_cast<uint32_t>(len);
      std::memcpy(ends + 4 * (k - g.head), &at, 4);
    }
    if (g.kind == kRawMessage) data[at++] = ']';
    (void)from;
    std::memcpy(len_at, &at, 4);
    p = data + Pad(at);
  }
  segs.clear();
  RespondIo(iso::kStatusOk, src, static_cast<uint32_t>(p - (base + out)), static_cast<uint32_t>(left));
}

// A batch from the arena into a SinkBatch the sink's thread owns (the arena is reused at once).
void DoSinkPush(uint32_t id, uint32_t offset, uint32_t length, uint32_t nrows, bool lines) {
  auto it = sinks.find(id);
  if (it == sinks.end()) return Respond(iso::kStatusBadRequest, "no sink instance #" + std::to_string(id));
  Sink *snk = it->second.get();
  snk->WakeTaken();  // the host is looking: the sink's next event (room, the end) wakes it again
  if (!InArena(offset, length)) return Respond(iso::kStatusBadRequest, "sink batch outside the arena");
  auto batch = std::make_unique<SinkBatch>();
  batch->nrows = nrows;
  const char *bytes = reinterpret_cast<const char *>(base + offset);
  if (lines) {
    batch->data.assign(bytes, length);
    batch->offsets.reserve(nrows + 1);
    batch->offsets.push_back(0);
    for (const char *q = bytes, *end = bytes + length; q < end;) {
      const void *nl = std::memchr(q, '\n', static_cast<size_t>(end - q));
      if (nl == nullptr) break;
      q = static_cast<const char *>(nl) + 1;
      batch->offsets.push_back(static_cast<uint32_t>(q - bytes));
    }
    if (batch->offsets.size() != nrows + 1 || (length > 0 && bytes[length - 1] != '\n')) {
      return Respond(iso::kStatusBadRequest, "sink batch has " + std::to_string(batch->offsets.size() - 1) + " newline-terminated rows, expected " + std::to_string(nrows));
    }
  } else {
    const uint8_t *p = base + offset, *end = p + length;
    auto get = [&](uint32_t *v) {
      if (p + 4 > end) return false;
      std::memcpy(v, p, 4);
      p += 4;
      return true;
    };
    uint32_t ncols = 0;
    if (!get(&ncols) || ncols > 65536) return Respond(iso::kStatusBadRequest, "sink columns truncated");
    batch->storage.resize(static_cast<size_t>(ncols) * 2);
    batch->string_offsets.resize(ncols);
    std::vector<uint32_t> types(ncols), has_nulls(ncols);
    for (uint32_t c = 0; c < ncols; ++c) {
      uint32_t name_len = 0;
      if (!get(&types[c]) || !get(&has_nulls[c]) || !get(&name_len) || p + Pad(name_len) > end) return Respond(iso::kStatusBadRequest, "sink columns truncated");
      batch->names.emplace_back(reinterpret_cast<const char *>(p), name_len);
      p += Pad(name_len);
      const size_t width = Width(types[c]);
      if (width > 0) {
        if (p + Pad(width * nrows) > end) return Respond(iso::kStatusBadRequest, "sink column values truncated");
        batch->storage[c * 2].assign(reinterpret_cast<const char *>(p), width * nrows);
        p += Pad(width * nrows);
      } else if (types[c] == SP_TYPE_STRING || types[c] == SP_TYPE_BYTES) {
        if (p + 4ull * (nrows + 1) > end) return Respond(iso::kStatusBadRequest, "sink column offsets truncated");
        auto &offs = batch->string_offsets[c];
        offs.resize(nrows + 1);
        std::memcpy(offs.data(), p, 4ull * (nrows + 1));
        p += 4ull * (nrows + 1);
        for (uint32_t r = 0; r < nrows; ++r) {
          if (offs[r] > offs[r + 1]) return Respond(iso::kStatusBadRequest, "sink column offsets decrease");
        }
        if (offs[0] != 0 || p + Pad(offs[nrows]) > end) return Respond(iso::kStatusBadRequest, "sink column data truncated");
        batch->storage[c * 2].assign(reinterpret_cast<const char *>(p), offs[nrows]);
        p += Pad(offs[nrows]);
      } else {
        return Respond(iso::kStatusBadRequest, "sink column type " + std::to_string(types[c]) + " is not a column type");
      }
      if (has_nulls[c]) {
        if (p + Pad(nrows) > end) return Respond(iso::kStatusBadRequest, "sink column nulls truncated");
        batch->storage[c * 2 + 1].assign(reinterpret_cast<const char *>(p), nrows);
        p += Pad(nrows);
      }
    }
    for (uint32_t c = 0; c < ncols; ++c) {
      sp_column col{};
      col.size = sizeof(sp_column);
      col.type = types[c];
      col.length = nrows;
      if (Width(types[c]) == 0) {
        col.data = batch->storage[c * 2].data();
        col.offsets = batch->string_offsets[c].data();
      } else {
        col.values = batch->storage[c * 2].data();
      }
      col.nulls = has_nulls[c] ? reinterpret_cast<const uint8_t *>(batch->storage[c * 2 + 1].data()) : nullptr;
      batch->columns.push_back(col);
    }
  }
  bool fatal = false;
  const bool taken = snk->Push(batch, &fatal);
  RespondIo(iso::kStatusOk, snk, taken ? 0 : fatal ? 2 : 1);
}

// The validate hook of source/sink `index` with `config`: as validateIo in io_wrap.cc, same message.
void DoIoValidate(uint32_t kind_index, uint32_t offset, uint32_t length) {
  const uint32_t kind = kind_index & 0xFF, index = kind_index >> 8;
  if (!InArena(offset, length)) return Respond(iso::kStatusBadRequest, "validate config outside the arena");
  const size_t n = kind == 1 ? NumSources(lib->desc) : NumSinks(lib->desc);
  if (index >= n) return Respond(iso::kStatusBadRequest, "no such source/sink #" + std::to_string(index));
  const std::string config(reinterpret_cast<const char *>(base + offset), length);
  std::string message;
  if (!ValidateIoConfig(lib.get(), static_cast<int>(kind), index, config, &message)) return Respond(iso::kStatusPluginError, message);
  Respond(iso::kStatusOk);
}

void DoIo(uint32_t op, uint32_t id) {
  auto src = sources.find(id);
  auto snk = sinks.find(id);
  if (src == sources.end() && snk == sinks.end()) return Respond(iso::kStatusBadRequest, "no io instance #" + std::to_string(id));
  // Keeps the instance alive past a dispose (its thread holds its own reference until it returns).
  std::shared_ptr<Source> source = src != sources.end() ? src->second : nullptr;
  std::shared_ptr<Sink> sink = snk != sinks.end() ? snk->second : nullptr;
  // The host is looking: the next event wakes it again (as the addon's wake handler does in-process).
  (source ? static_cast<IoBase *>(source.get()) : sink.get())->WakeTaken();
  if (op == iso::kOpIoStop || op == iso::kOpIoDispose) {
    if (source) source->Stop();
    if (sink) sink->Stop();
  } else if (op == iso::kOpIoAbandon && sink) {
    sink->Abandon();
  }
  if (op == iso::kOpIoDispose) {
    (source ? static_cast<IoBase *>(source.get()) : sink.get())->DetachWake();
    sources.erase(id);
    sinks.erase(id);
    drained.erase(id);
  }
  if (source) return RespondIo(iso::kStatusOk, source.get());
  RespondIo(iso::kStatusOk, sink.get());
}

// `seen`: req_seq as read before the ready line went out; the host's first request comes after it.
void Serve(uint32_t seen) {
  const int64_t spin_ns = std::getenv("STREAMPLUG_ISOLATED_SPIN_NS") ? std::atoll(std::getenv("STREAMPLUG_ISOLATED_SPIN_NS")) : 0;
  for (;;) {
    uint32_t seq;
    const int64_t start = NowNs();
    while ((seq = Load(Slot(iso::kSlotReqSeq))) == seen && NowNs() - start < spin_ns) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
    while (seq == seen) {
      Store(Slot(iso::kSlotWorkerSleeping), 1);
      if ((seq = Load(Slot(iso::kSlotReqSeq))) != seen) break;
      syscall(SYS_futex, Slot(iso::kSlotReqSeq), FUTEX_WAIT, seen, nullptr, nullptr, 0);
      seq = Load(Slot(iso::kSlotReqSeq));
    }
    Store(Slot(iso::kSlotWorkerSleeping), 0);
    seen = seq;
    const uint32_t op = Load(Slot(iso::kSlotOp)), id = Load(Slot(iso::kSlotId));
    const uint32_t a0 = Load(Slot(iso::kSlotArg0)), a1 = Load(Slot(iso::kSlotArg1)), a2 = Load(Slot(iso::kSlotArg2));
    bool exit_after = false;
    switch (op) {
      case iso::kOpInstantiate: {
        if (a0 >= lib->desc->n_functions || !InArena(a1, a2)) {
          Respond(iso::kStatusBadRequest, "instantiate: bad function index or rule id");
          break;
        }
        auto old = instances.find(id);
        if (old != instances.end()) {
          CloseContext(old->second);
          delete old->second;
        }
        instances[id] = NewContext(lib.get(), static_cast<int>(a0), std::string(reinterpret_cast<const char *>(base + a1), a2));
        Respond(iso::kStatusOk);
        break;
      }
      case iso::kOpClose: {
        auto it = instances.find(id);
        if (it != instances.end()) {
          CloseContext(it->second);
          delete it->second;
          instances.erase(it);
        }
        Respond(iso::kStatusOk);
        break;
      }
      case iso::kOpValidate: DoValidate(a0, a1, a2); break;
      case iso::kOpCall: DoCall(id, a0, a1); break;
      case iso::kOpExportState: DoExportState(id, a0, a1); break;
      case iso::kOpImportState: DoImportState(id, a0, a1); break;
      case iso::kOpFetchResult: {
        uint32_t needed = 0;
        if (!pending_valid) {
          Respond(iso::kStatusBadRequest, "no result is waiting to be fetched");
        } else if (!PackStrings(pending, a0, a1, &needed)) {
          Respond(iso::kStatusNeedSpace, std::string(), needed);
        } else {
          pending = ResultStore();
          pending_valid = false;
          Respond(iso::kStatusOk, std::string(), needed);
        }
        break;
      }
      case iso::kOpPing: Respond(iso::kStatusOk); break;
      case iso::kOpIoOpen: DoIoOpen(id, a0, a1, a2); break;
      case iso::kOpSourceDrain: DoSourceDrain(id, a0, a1, a2); break;
      case iso::kOpSinkPush: DoSinkPush(id, a0, a1, a2, Load(Slot(iso::kSlotArg3)) != 0); break;
      case iso::kOpIoValidate: DoIoValidate(a0, a1, a2); break;
      case iso::kOpIoStats:
      case iso::kOpIoStop:
      case iso::kOpIoAbandon:
      case iso::kOpIoDispose: DoIo(op, id); break;
      case iso::kOpShutdown: {
        // Sources and sinks first: their threads stop (close hooks run there); then the library.
        for (auto &kv : sources) kv.second->Stop();
        for (auto &kv : sinks) kv.second->Stop();
        for (int i = 0; i < 200 && lib->io_busy.load() > 0; ++i) usleep(10000);
        CloseLibrary(lib.get(), nullptr);  // close hooks of every live ctx, then deinit
        for (auto &kv : instances) delete kv.second;
        instances.clear();
        Respond(iso::kStatusOk);
        exit_after = true;
        break;
      }
      default: Respond(iso::kStatusBadRequest, "unknown op " + std::to_string(op));
    }
    Store(Slot(iso::kSlotRespSeq), seq);
    if (Load(Slot(iso::kSlotHostSleeping)) != 0) syscall(SYS_futex, Slot(iso::kSlotRespSeq), FUTEX_WAKE, 1, nullptr, nullptr, 0);
    if (exit_after) _exit(0);
  }
}

void Describe() {
  const sp_plugin_descriptor *d = lib->desc;
  std::string fs = "[";
  for (size_t i = 0; i < d->n_functions; ++i) {
    const sp_function_def &f = lib->Function(i);
    const int declared = f.min_args > 1 ? f.min_args : 1;
    std::string types = "[", flags = "[";
    for (int k = 0; k < declared && f.max_args != 0; ++k) {
      types += (k ? "," : "") + std::to_string(f.arg_types[k]);
      flags += (k ? "," : "") + std::to_string(f.arg_flags != nullptr ? f.arg_flags[k] : 0);
    }
    fs += (i ? "," : "") + std::string("{\"name\":") + Json(f.name) + ",\"kind\":" + std::to_string(f.kind) +
          ",\"flags\":" + std::to_string(f.flags) + ",\"minArgs\":" + std::to_string(f.min_args) +
          ",\"maxArgs\":" + std::to_string(f.max_args) + ",\"argTypes\":" + types + "],\"argFlags\":" + flags +
          "],\"resultType\":" + std::to_string(f.result_type) + ",\"hasValidate\":" + (f.validate ? "true" : "false") +
          ",\"hasClose\":" + (f.close ? "true" : "false") + "}";
  }
  fs += "]";
  std::string sources = "[", sinks = "[";
  std::string io_sources = "[", io_sinks = "[";
  for (size_t i = 0; i < NumSources(d); ++i) {
    const sp_source_def &s = lib->Source(i);
    sources += (i ? "," : "") + Json(s.name);
    io_sources += std::string(i ? "," : "") + "{\"name\":" + Json(s.name) + ",\"flags\":" + std::to_string(s.flags) +
                  ",\"hasValidate\":" + (s.validate ? "true" : "false") + ",\"hasRun\":" + (s.run ? "true" : "false") + "}";
  }
  for (size_t i = 0; i < NumSinks(d); ++i) {
    const sp_sink_def &k = lib->Sink(i);
    sinks += (i ? "," : "") + Json(k.name);
    io_sinks += std::string(i ? "," : "") + "{\"name\":" + Json(k.name) + ",\"flags\":" + std::to_string(k.flags) +
                ",\"hasValidate\":" + (k.validate ? "true" : "false") + "}";
  }
  Emit("{\"type\":\"ready\",\"pid\":" + std::to_string(getpid()) + ",\"name\":" + Json(d->name) +
       ",\"version\":" + Json(d->version) + ",\"contractMajor\":" + std::to_string(d->contract_major) +
       ",\"contractMinor\":" + std::to_string(d->contract_minor) + ",\"compiler\":" + Json(d->build_compiler ? d->build_compiler : "") +
       ",\"arch\":" + Json(d->build_arch ? d->build_arch : "") + ",\"libc\":" + Json(d->build_libc ? d->build_libc : "") +
       ",\"manifest\":" + Json(lib->manifest) + ",\"functions\":" + fs + ",\"sources\":" + sources + "],\"sinks\":" + sinks +
       "],\"io\":{\"sources\":" + io_sources + "],\"sinks\":" + io_sinks + "]}}");
}

[[noreturn]] void Refuse(const std::string &code, const std::string &message, int status) {
  Emit("{\"type\":\"error\",\"code\":" + Json(code) + ",\"message\":" + Json(message) + "}");
  _exit(status);
}

}  // namespace

int main(int argc, char **argv) {
  std::string plugin, tag;
  long parent = 0;
  unsigned long long memory_limit = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--parent" && i + 1 < argc) parent = std::atol(argv[++i]);
    else if (a == "--memory-limit" && i + 1 < argc) memory_limit = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--tag" && i + 1 < argc) tag = argv[++i];
    else if (plugin.empty() && a[0] != '-') plugin = a;
    else Refuse("E_USAGE", "streamplug_worker: unexpected argument " + a + "; usage: streamplug_worker PLUGIN.so --parent PID [--memory-limit BYTES] [--tag TAG]", 2);
  }
  if (plugin.empty() || parent <= 0) Refuse("E_USAGE", "usage: streamplug_worker PLUGIN.so --parent PID [--memory-limit BYTES] [--tag TAG]", 2);
  // Die with the host. The host forks workers from its JS thread, which lives as long as it does,
  // so PDEATHSIG (tied to the forking thread) means "the host died". A host that died before this
  // line leaves us re-parented: check, since the signal would then never come.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != static_cast<pid_t>(parent)) _exit(0);
  // And the lifeline: stdin is a pipe whose other end only the host holds; EOF means it is gone.
  std::thread([] {
    char buf[64];
    for (;;) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EINTR)) _exit(0);
    }
  }).detach();
  // Nonblocking stdout: see Emit.
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);

  struct stat st;
  if (fstat(3, &st) != 0 || st.st_size < static_cast<off_t>(iso::kHeaderBytes)) Refuse("E_ISOLATION", "fd 3 is not the host's channel", 1);
  arena_bytes = static_cast<size_t>(st.st_size);
  void *m = mmap(nullptr, arena_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, 3, 0);
  if (m == MAP_FAILED) Refuse("E_ISOLATION", std::string("mmap of the channel failed: ") + std::strerror(errno), 1);
  base = static_cast<uint8_t *>(m);
  if (Load(Slot(iso::kSlotMagic)) != iso::kMagic || Load(Slot(iso::kSlotVersion)) != iso::kVersion) {
    Refuse("E_ISOLATION", "the channel's layout version differs from this worker's; rebuild the addon and the worker together (npm run build:addon)", 1);
  }
  // After the mapping, so the limit bounds what the plugin allocates, not the channel we need.
  if (memory_limit > 0) {
    rlimit rl{static_cast<rlim_t>(memory_limit), static_cast<rlim_t>(memory_limit)};
    if (setrlimit(RLIMIT_AS, &rl) != 0) Refuse("E_ISOLATION", std::string("setrlimit(RLIMIT_AS) failed: ") + std::strerror(errno), 1);
  }

  SetLogSink([](LogLine *line) {
    Emit("{\"type\":\"log\",\"plugin\":" + Json(line->plugin) + ",\"rule\":" + Json(line->rule) +
         ",\"level\":" + std::to_string(line->level) + ",\"message\":" + Json(line->message) + "}");
    delete line;
  });

  lib = std::make_shared<Library>();
  Failure f = OpenLibrary(plugin, lib.get());
  if (f.failed()) Refuse(f.code, f.message, 1);
  f = InitLibrary(lib.get());
  if (f.failed()) Refuse(f.code, f.message, 1);
  const uint32_t seen = Load(Slot(iso::kSlotReqSeq));  // before "ready": requests start after it
  Describe();
  Serve(seen);
}
