// Sources and sinks: queues, threads, retry and the contract 1.1 host routines (see io.h).
#include "io.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace streamplug {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

IoLive &LiveIo() {
  static auto *live = new IoLive();  // never destroyed: detached threads may outlive static teardown
  return *live;
}

void IoCounters::Error(const std::string &message) {
  errors.fetch_add(1);
  std::lock_guard<std::mutex> lock(mutex);
  last_error = message;
}

void IoCounters::Status(int s, const std::string &message) {
  std::lock_guard<std::mutex> lock(mutex);
  state = s;
  status_message = message;
}

void IoCounters::Latency(int64_t ns) {
  last_latency_ns.store(ns);
  int64_t max = max_latency_ns.load();
  while (ns > max && !max_latency_ns.compare_exchange_weak(max, ns)) {
  }
}

// ---- IoBase ------------------------------------------------------------------------------------

IoBase::IoBase(std::shared_ptr<Library> lib, int index, int kind, const std::string &rule, std::string config)
    : lib_(std::move(lib)), index_(index), ctx_(new sp_ctx()), config_(std::move(config)) {
  ctx_->lib = lib_.get();
  ctx_->function = -1;
  ctx_->rule_id = rule;
  ctx_->journal_rule = JournalRule(rule);
  ctx_->io_kind = kind;
  ctx_->io = this;
  ctx_->config_text = &config_;  // config_* read it (contract 1.3); config_ lives as long as ctx_
}

IoBase::~IoBase() { delete ctx_; }

void IoBase::SetWake(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(wake_mutex_);
  wake_ = std::move(wake);
}

void IoBase::DetachWake() { SetWake(nullptr); }

void IoBase::Wake() {
  // A plain load first: producers pushing while a wake is pending do not write the shared line.
  if (wake_pending_.load(std::memory_order_relaxed) || wake_pending_.exchange(true)) return;  // one wake in flight is enough: JS drains everything
  std::lock_guard<std::mutex> lock(wake_mutex_);
  if (wake_) wake_();
}

void IoBase::SetFailure(const std::string &message) {
  {
    std::lock_guard<std::mutex> lock(counters.mutex);
    failure_ = message;
  }
  counters.Error(message);
  counters.Status(SP_IO_ERROR, message);
}

std::string IoBase::failure() {
  std::lock_guard<std::mutex> lock(counters.mutex);
  return failure_;
}

std::string IoBase::HookError(const char *hook, sp_status status) {
  const char *kind = ctx_->io_kind == 1 ? "source" : "sink";
  const char *name = ctx_->io_kind == 1 ? lib_->Source(index_).name : lib_->Sink(index_).name;
  // A config_* type error names the key: it wins over whatever the hook said after it.
  std::string reason = !ctx_->config_error.empty() ? ctx_->config_error
                       : ctx_->error_set           ? ctx_->error
                                                   : "returned status " + std::to_string(static_cast<int>(status)) +
                                                         " without calling set_error";
  return std::string(kind) + " " + name + " (plugin " + lib_->name + (ctx_->rule_id.empty() ? "" : ", rule " + ctx_->rule_id) +
         ") " + hook + " failed: " + reason;
}

void IoBase::Finish() {
  finished_.store(true);
  wake_pending_.store(false);  // the final state must reach JS even if a wake is pending
  Wake();
  lib_->io_busy.fetch_sub(1);
}

bool ValidateIoConfig(Library *lib, int kind, size_t index, const std::string &config, std::string *message) {
  auto validate = kind == 1 ? lib->Source(index).validate : lib->Sink(index).validate;
  const char *name = kind == 1 ? lib->Source(index).name : lib->Sink(index).name;
  if (validate == nullptr) return true;
  sp_ctx probe;
  probe.lib = lib;
  probe.io_kind = kind;  // io stays NULL: push/set_status are no-ops during validate
  probe.config_text = &config;
  const sp_status status = RunHook(lib, &probe, Hook::kValidate, [&]() { return validate(&probe, config.data(), config.size()); });
  if (status == SP_OK && probe.config_error.empty()) return true;
  const std::string reason = !probe.config_error.empty() ? probe.config_error
                             : probe.error_set           ? probe.error
                                                         : "refused without calling set_error";
  *message = std::string(kind == 1 ? "source " : "sink ") + name + " (plugin " + lib->name + ") refused its configuration: " + reason;
  return false;
}

// ---- Source ------------------------------------------------------------------------------------

Source::Source(std::shared_ptr<Library> lib, int index, const std::string &rule, std::string config, size_t capacity,
               Overflow overflow, bool lines, size_t segment_items)
    : IoBase(std::move(lib), index, 1, rule, std::move(config)), capacity_(capacity == 0 ? 1 : capacity),
      overflow_(overflow), lines_(lines), segment_items_(segment_items == 0 ? 1 : segment_items) {
  LiveIo().sources.fetch_add(1);
}

Source::~Source() {
  LiveIo().queued_items.fetch_sub(static_cast<int64_t>(count_.load()));
  LiveIo().sources.fetch_sub(1);
}

// Runs a source's or sink's lifecycle on a thread of its own, with the library marked busy (Run
// clears it). Detached: `run` holds the instance alive, and a finished thread's resources go at
// once instead of waiting for the JS object to be collected.
static void RunDetached(Library &lib, std::function<void()> run) {
  lib.io_busy.fetch_add(1);
  LiveIo().threads.fetch_add(1);
  std::thread([run = std::move(run)]() {
    run();
    LiveIo().threads.fetch_sub(1);
  }).detach();
}

void Source::Start(std::shared_ptr<Source> self) { RunDetached(*lib_, [self]() { self->Run(); }); }

void Source::Run() {
  const sp_source_def &d = def();
  void *instance = nullptr;
  sp_status status;
  status = RunHook(lib_.get(), ctx_, Hook::kSourceOpen, [&]() { return d.open(ctx_, config_.data(), config_.size(), &instance); });
  if (status == SP_OK && !ctx_->config_error.empty()) {
    // The hook went on after a config_* type error: the instance exists, so close it, then fail.
    RunVoidHook(lib_.get(), ctx_, Hook::kSourceClose, [&]() { d.close(ctx_, instance); });
    status = SP_ERROR;
  }
  if (status != SP_OK) {
    SetFailure(HookError("open", status));
  } else {
    opened_.store(true);
    {
      std::lock_guard<std::mutex> lock(counters.mutex);
      if (counters.state == SP_IO_CONNECTING) counters.state = SP_IO_CONNECTED;
    }
    Wake();
    if (d.run != nullptr && !stopping_.load()) {
      RunVoidHook(lib_.get(), ctx_, Hook::kSourceRun, [&]() { d.run(ctx_, instance); });
    }
    {
      std::unique_lock<std::mutex> lock(mutex_);
      stop_cv_.wait(lock, [this] { return stopping_.load(); });
    }
    RunVoidHook(lib_.get(), ctx_, Hook::kSourceClose, [&]() { d.close(ctx_, instance); });
  }
  Finish();
}

void Source::DropOldest() {
  SourceSegment &front = queue_.front();
  ++front.head;
  if (front.size() == 0) queue_.pop_front();
  count_.store(count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  LiveIo().queued_items.fetch_sub(1);
}

void Source::Append(uint8_t kind, const char *data, size_t length) {
  const size_t stored = length + (kind == kJsonLine ? 1 : 0);
  SourceSegment *tail = queue_.empty() ? nullptr : &queue_.back();
  // A new segment for another kind, a full one, or one whose offsets would overflow 32 bits.
  if (tail == nullptr || tail->kind != kind || tail->ends.size() >= segment_items_ ||
      tail->data.size() + stored > 0xFFFFFFFFu) {
    queue_.emplace_back();
    tail = &queue_.back();
    tail->kind = kind;
    tail->enqueued_ns = NowNs();
    tail->data.reserve(std::min<size_t>(16 * stored, 64 << 10));
    tail->ends.reserve(std::min<size_t>(segment_items_, 64));
  }
  tail->data.append(data, length);
  if (kind == kJsonLine) tail->data.push_back('\n');
  tail->ends.push_back(static_cast<uint32_t>(tail->data.size()));
  Counted(1);
}

void Source::Counted(size_t n) {
  // One writer at a time (mutex_ held): plain stores, no locked read-modify-write.
  count_.store(count_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  counters.in.store(counters.in.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  LiveIo().queued_items.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
}

void Source::AppendStaged(const uint8_t *kinds, const char *stage, const uint64_t *ends, size_t from, size_t to) {
  for (size_t i = from; i < to;) {
    const uint8_t kind = kinds[i];
    const uint64_t base = i == 0 ? 0 : ends[i - 1];
    SourceSegment *tail = queue_.empty() ? nullptr : &queue_.back();
    // A new segment for another kind, a full one, or one whose offsets would overflow 32 bits.
    if (tail == nullptr || tail->kind != kind || tail->ends.size() >= segment_items_ ||
        tail->data.size() + (ends[i] - base) > 0xFFFFFFFFu) {
      queue_.emplace_back();
      tail = &queue_.back();
      tail->kind = kind;
      tail->enqueued_ns = NowNs();
      // Grown by doubling as runs arrive (large blocks grow in place: realloc remaps them).
      tail->data.reserve(std::min<size_t>(std::max<uint64_t>(16 * (ends[i] - base), ends[to - 1] - base), 64 << 10));
      tail->ends.reserve(std::min<size_t>(segment_items_, 64));
    }
    // The run: items of this kind that fit the segment's item count and 32-bit offsets.
    const size_t offset = tail->data.size();
    const size_t limit = i + std::min(to - i, segment_items_ - tail->ends.size());
    size_t j = i;
    while (j < limit && kinds[j] == kind && offset + (ends[j] - base) <= 0xFFFFFFFFu) ++j;
    tail->data.append(stage + base, static_cast<size_t>(ends[j - 1] - base));
    const size_t first = tail->ends.size();
    tail->ends.resize(first + (j - i));
    uint32_t *out = tail->ends.data() + first;
    for (size_t k = i; k < j; ++k) *out++ = static_cast<uint32_t>(offset + (ends[k] - base));
    i = j;
  }
  Counted(to - from);
}

sp_status Source::Push(uint8_t kind, const char *data, size_t length) {
  // The check runs on the producer's thread, before the lock: it costs the JS thread nothing.
  if (kind == kRawMessage && lines_ && CanonicalJsonObject(data, length)) kind = kJsonLine;
  const size_t stored = length + (kind == kJsonLine ? 1 : 0);
  if (stored > 0xFFFFFFFFu) return SP_ERROR;
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_.load()) return SP_ERROR;
  while (count_ >= capacity_) {
    if (overflow_ == Overflow::kDropNewest) {
      counters.dropped.fetch_add(1);
      return SP_OK;
    }
    if (overflow_ == Overflow::kDropOldest) {
      DropOldest();
      counters.dropped.fetch_add(1);
      break;
    }
    not_full_.wait(lock);
    if (stopping_.load()) return SP_ERROR;
  }
  Append(kind, data, length);
  lock.unlock();
  Wake();
  return SP_OK;
}

sp_status Source::PushMany(const char *data, const uint32_t *offsets, size_t count, size_t *accepted) {
  size_t done = 0;
  if (accepted != nullptr) *accepted = 0;
  if (count == 0) return stopping_.load() ? SP_ERROR : SP_OK;
  // On the producer's thread and outside the lock (like Push): each message's kind, and the bytes
  // as the queue stores them. Kept per thread so a producer pushing block after block allocates once.
  thread_local std::vector<uint8_t> kinds;
  thread_local std::vector<uint64_t> ends;
  thread_local std::string stage;
  kinds.resize(count);
  ends.resize(count);
  for (size_t i = 0; i < count; ++i) {
    if (offsets[i + 1] < offsets[i]) return SP_ERROR;
    const size_t length = offsets[i + 1] - offsets[i];
    if (length >= 0xFFFFFFFFu) return SP_ERROR;  // its line (with '\n') would not fit 32-bit offsets
    kinds[i] = lines_ && CanonicalJsonObject(data + offsets[i], length) ? kJsonLine : kRawMessage;
  }
  const size_t total = offsets[count] - offsets[0];
  if (lines_) {
    if (stage.size() < total + count) stage.resize(total + count);
    char *out = &stage[0];
    size_t at = 0;
    for (size_t i = 0; i < count; ++i) {
      const size_t length = offsets[i + 1] - offsets[i];
      std::memcpy(out + at, data + offsets[i], length);
      at += length;
      if (kinds[i] == kJsonLine) out[at++] = '\n';
      ends[i] = at;
    }
  }
  const char *bytes = lines_ ? stage.data() : data + offsets[0];
  if (!lines_)  // raw messages only: the plugin's block is already the queue's layout
    for (size_t i = 0; i < count; ++i) ends[i] = offsets[i + 1] - offsets[0];

  std::unique_lock<std::mutex> lock(mutex_);
  sp_status status = SP_OK;
  while (done < count) {
    // stopping_ is set with mutex_ held: checked once per locked stretch.
    if (stopping_.load()) {
      status = SP_ERROR;
      break;
    }
    const size_t queued = count_.load(std::memory_order_relaxed);
    if (queued < capacity_) {  // the hot path: as many as there is room for, in runs
      const size_t take = std::min(count - done, capacity_ - queued);
      AppendStaged(kinds.data(), bytes, ends.data(), done, done + take);
      done += take;
      continue;
    }
    if (overflow_ == Overflow::kDropNewest) {  // nothing drains while the lock is held: the rest goes
      counters.dropped.fetch_add(count - done);
      done = count;
      break;
    }
    if (overflow_ == Overflow::kDropOldest) {
      DropOldest();
      counters.dropped.fetch_add(1);
      AppendStaged(kinds.data(), bytes, ends.data(), done, done + 1);
      ++done;
      continue;
    }
    // Full: let JS see what is queued, then wait for room.
    lock.unlock();
    Wake();
    lock.lock();
    if (count_.load(std::memory_order_relaxed) >= capacity_ && !stopping_.load()) not_full_.wait(lock);
  }
  lock.unlock();
  if (accepted != nullptr) *accepted = done;
  Wake();
  return status;
}

size_t Source::Drain(std::vector<SourceSegment> *out, size_t max) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  if (!queue_.empty()) counters.Latency(NowNs() - queue_.front().enqueued_ns);
  while (!queue_.empty() && n < max) {
    SourceSegment &front = queue_.front();
    const size_t take = std::min(front.size(), max - n);
    if (take == front.size()) {
      out->push_back(std::move(front));
      queue_.pop_front();
    } else {  // the first `take` items, copied; the rest stays queued
      SourceSegment part;
      part.kind = front.kind;
      part.enqueued_ns = front.enqueued_ns;
      const size_t base = front.start(front.head);
      const size_t end = front.ends[front.head + take - 1];
      part.data.assign(front.data, base, end - base);
      part.ends.reserve(take);
      for (size_t i = 0; i < take; ++i) part.ends.push_back(static_cast<uint32_t>(front.ends[front.head + i] - base));
      front.head += take;
      out->push_back(std::move(part));
    }
    n += take;
  }
  const size_t left = count_.load(std::memory_order_relaxed) - n;
  if (n > 0) {
    count_.store(left, std::memory_order_relaxed);
    LiveIo().queued_items.fetch_sub(static_cast<int64_t>(n));
    counters.out.fetch_add(n);
    not_full_.notify_all();
  }
  return left;
}

void Source::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true);
  }
  not_full_.notify_all();
  stop_cv_.notify_all();
}

// ---- Sink --------------------------------------------------------------------------------------

Sink::Sink(std::shared_ptr<Library> lib, int index, const std::string &rule, std::string config, SinkOptions options)
    : IoBase(std::move(lib), index, 2, rule, std::move(config)), options_(options) {
  if (options_.capacity == 0) options_.capacity = 1;
  LiveIo().sinks.fetch_add(1);
}

Sink::~Sink() { LiveIo().sinks.fetch_sub(1); }

void Sink::Start(std::shared_ptr<Sink> self) { RunDetached(*lib_, [self]() { self->Run(); }); }

bool Sink::Push(std::unique_ptr<SinkBatch> &batch, bool *fatal) {
  std::lock_guard<std::mutex> lock(mutex_);
  *fatal = fatal_.load() || stopping_.load();
  if (*fatal) return false;
  if (queue_.size() >= options_.capacity) return false;
  counters.in.fetch_add(batch->nrows);
  batch->enqueued_ns = NowNs();
  queue_.push_back(std::move(batch));
  cv_.notify_all();
  return true;
}

size_t Sink::Depth() {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size() + in_flight_.load();
}

void Sink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true);
  }
  cv_.notify_all();
}

void Sink::Abandon() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    abandoned_.store(true);
    stopping_.store(true);
  }
  cv_.notify_all();
}

bool Sink::Sleep(int64_t ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return abandoned_.load(); });
  return !abandoned_.load();
}

sp_status Sink::Deliver(SinkBatch *b) {
  sp_batch batch{};
  batch.size = sizeof(sp_batch);
  batch.nrows = b->nrows;
  std::vector<const char *> names;
  if (def().flags & SP_SINK_ENCODED) {
    if (b->shared != nullptr) {
      const SharedLines &l = *b->shared;
      const size_t base = l.base();
      if (b->offsets.empty()) {  // on this thread, not the JS one
        b->offsets.reserve(b->nrows + 1);
        b->offsets.push_back(0);
        for (size_t i = l.head; i < l.ends.size(); ++i) b->offsets.push_back(static_cast<uint32_t>(l.ends[i] - base));
      }
      batch.data = l.data.data() + base;
    } else {
      batch.data = b->data.data();
    }
    batch.offsets = b->offsets.data();
  } else {
    for (const auto &n : b->names) names.push_back(n.c_str());
    batch.ncols = b->columns.size();
    batch.names = names.data();
    batch.columns = b->columns.data();
  }
  return RunHook(lib_.get(), ctx_, Hook::kSinkCollect, [&]() { return def().collect(ctx_, instance_for_hooks_, &batch); });
}

void Sink::Run() {
  const sp_sink_def &d = def();
  int64_t backoff = options_.backoff_ms;
  // open, retried on SP_RETRY like a batch (a broker that is not up yet)
  for (int64_t attempt = 0;; ++attempt) {
    sp_status status;
    status = RunHook(lib_.get(), ctx_, Hook::kSinkOpen, [&]() { return d.open(ctx_, config_.data(), config_.size(), &instance_for_hooks_); });
    const bool config_failed = !ctx_->config_error.empty();  // a retry reads the same config: fatal
    if (status == SP_OK && config_failed) {
      RunVoidHook(lib_.get(), ctx_, Hook::kSinkClose, [&]() { d.close(ctx_, instance_for_hooks_); });
      instance_for_hooks_ = nullptr;
      status = SP_ERROR;
    }
    if (status == SP_OK) break;
    const std::string message = HookError("open", status);
    if (status != SP_RETRY || config_failed || abandoned_.load() || (options_.max_retries >= 0 && attempt >= options_.max_retries)) {
      fatal_.store(true);
      SetFailure(message);
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto &b : queue_) counters.dropped.fetch_add(b->nrows);
      queue_.clear();
      Finish();
      return;
    }
    counters.Error(message);
    counters.retries.fetch_add(1);
    counters.Status(SP_IO_RECONNECTING, message);
    Wake();
    if (!Sleep(backoff)) continue;
    backoff = std::min(backoff * 2, options_.max_backoff_ms);
  }
  opened_.store(true);
  counters.Status(SP_IO_CONNECTED, "");
  Wake();

  for (;;) {
    std::unique_ptr<SinkBatch> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return !queue_.empty() || stopping_.load(); });
      if (abandoned_.load()) {
        for (auto &b : queue_) counters.dropped.fetch_add(b->nrows);
        queue_.clear();
      }
      if (queue_.empty()) break;  // stopping and drained
      batch = std::move(queue_.front());
      queue_.pop_front();
      in_flight_.store(1);
    }
    backoff = options_.backoff_ms;
    bool fatal = false;
    for (int64_t attempt = 0;; ++attempt) {
      const sp_status status = Deliver(batch.get());
      if (status == SP_OK) {
        counters.out.fetch_add(batch->nrows);
        counters.Latency(NowNs() - batch->enqueued_ns);
        bool recovered = false;
        {
          std::lock_guard<std::mutex> lock(counters.mutex);
          if (counters.state == SP_IO_RECONNECTING) {
            counters.state = SP_IO_CONNECTED;
            counters.status_message.clear();
            recovered = true;
          }
        }
        (void)recovered;
        break;
      }
      const std::string message = HookError("collect", status);
      if (status != SP_RETRY) {
        fatal = true;
        SetFailure(message);
        break;
      }
      counters.Error(message);
      counters.Status(SP_IO_RECONNECTING, message);
      if ((options_.max_retries >= 0 && attempt >= options_.max_retries) || abandoned_.load()) {
        counters.dropped.fetch_add(batch->nrows);
        break;
      }
      counters.retries.fetch_add(1);
      Wake();
      if (!Sleep(backoff)) {
        counters.dropped.fetch_add(batch->nrows);
        break;
      }
      backoff = std::min(backoff * 2, options_.max_backoff_ms);
    }
    in_flight_.store(0);
    if (fatal) {
      std::lock_guard<std::mutex> lock(mutex_);
      fatal_.store(true);
      counters.dropped.fetch_add(batch->nrows);
      for (auto &b : queue_) counters.dropped.fetch_add(b->nrows);
      queue_.clear();
      break;
    }
    Wake();  // room in the queue, counters moved
  }
  RunVoidHook(lib_.get(), ctx_, Hook::kSinkClose, [&]() { d.close(ctx_, instance_for_hooks_); });
  Finish();
}

// ---- host routines (contract 1.1) ---------------------------------------------------------------

namespace {

Source *SourceOf(sp_ctx *ctx) {
  return ctx != nullptr && ctx->io_kind == 1 ? static_cast<Source *>(static_cast<IoBase *>(ctx->io)) : nullptr;
}

}  // namespace

}  // namespace streamplug

// The row a source builds: the binary encoding SourceItem kind 1 carries.
struct sp_row {
  sp_ctx *ctx;
  std::string bytes;
};

namespace streamplug {

namespace {

enum RowType : uint8_t { kNull = 0, kBool = 1, kInt64 = 2, kFloat64 = 3, kString = 4 };

void RowField(sp_row *row, RowType type, const char *field, const void *value, size_t length) {
  if (row == nullptr || field == nullptr) return;
  const size_t name_length = std::min<size_t>(std::strlen(field), 0xFFFF);
  const uint16_t n16 = static_cast<uint16_t>(name_length);
  row->bytes.push_back(static_cast<char>(type));
  row->bytes.append(reinterpret_cast<const char *>(&n16), 2);
  row->bytes.append(field, name_length);
  if (type == kString) {
    const uint32_t l32 = static_cast<uint32_t>(length);
    row->bytes.append(reinterpret_cast<const char *>(&l32), 4);
  }
  if (length > 0) row->bytes.append(static_cast<const char *>(value), length);
}

}  // namespace

sp_status IoSourcePush(sp_ctx *ctx, const void *data, size_t length) {
  Source *source = SourceOf(ctx);
  if (source == nullptr || (data == nullptr && length > 0)) return SP_ERROR;
  return source->Push(kRawMessage, static_cast<const char *>(data), length);
}

sp_status IoSourcePushMany(sp_ctx *ctx, const char *data, const uint32_t *offsets, size_t count, size_t *accepted) {
  Source *source = SourceOf(ctx);
  if (accepted != nullptr) *accepted = 0;
  if (source == nullptr || (count > 0 && (offsets == nullptr || (data == nullptr && offsets[count] > offsets[0])))) {
    return SP_ERROR;
  }
  return source->PushMany(data, offsets, count, accepted);
}

sp_row *IoRowBegin(sp_ctx *ctx) {
  if (SourceOf(ctx) == nullptr) return nullptr;
  return new sp_row{ctx, std::string()};
}

void IoRowInt64(sp_row *row, const char *field, int64_t value) { RowField(row, kInt64, field, &value, 8); }
void IoRowFloat64(sp_row *row, const char *field, double value) { RowField(row, kFloat64, field, &value, 8); }
void IoRowBool(sp_row *row, const char *field, int value) {
  const uint8_t b = value != 0 ? 1 : 0;
  RowField(row, kBool, field, &b, 1);
}
void IoRowString(sp_row *row, const char *field, const char *text, size_t length) {
  if (text == nullptr) length = 0;
  RowField(row, kString, field, text, length);
}
void IoRowNull(sp_row *row, const char *field) { RowField(row, kNull, field, nullptr, 0); }

sp_status IoRowPush(sp_row *row) {
  if (row == nullptr) return SP_ERROR;
  Source *source = SourceOf(row->ctx);
  const sp_status status = source != nullptr ? source->Push(kStructuredRow, row->bytes.data(), row->bytes.size()) : SP_ERROR;
  delete row;
  return status;
}

void IoRowDiscard(sp_row *row) { delete row; }

int IoStopping(sp_ctx *ctx) {
  if (ctx == nullptr || ctx->io == nullptr) return 0;
  return static_cast<IoBase *>(ctx->io)->stopping() ? 1 : 0;
}

void IoSetStatus(sp_ctx *ctx, int state, const char *message) {
  if (ctx == nullptr || ctx->io == nullptr) return;
  auto *io = static_cast<IoBase *>(ctx->io);
  const std::string text = message != nullptr ? message : "";
  if (state == SP_IO_ERROR) io->counters.Error(text);
  io->counters.Status(state, text);
  io->NotifyStatus();
}


// ---- canonical JSON (see io.h) ------------------------------------------------------------------

namespace {

class CanonicalScanner {
 public:
  CanonicalScanner(const char *text, size_t length)
      : p_(reinterpret_cast<const unsigned char *>(text)), e_(p_ + length) {}

  bool TopObject() { return p_ < e_ && *p_ == '{' && Object(0) && p_ == e_; }

 private:
  static constexpr int kMaxDepth = 64;
  static constexpr size_t kMaxKeys = 64;  // duplicate check is quadratic: bigger objects go the slow way

  bool Value(int depth) {
    if (p_ >= e_) return false;
    switch (*p_) {
      case '{': return Object(depth + 1);
      case '[': return Array(depth + 1);
      case '"': return String(nullptr, nullptr);
      case 't': return Literal("true", 4);
      case 'f': return Literal("false", 5);
      case 'n': return Literal("null", 4);
      default: return Number();
    }
  }

  bool Literal(const char *word, size_t n) {
    if (static_cast<size_t>(e_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  }

  bool Object(int depth) {
    if (depth > kMaxDepth) return false;
    ++p_;  // '{'
    if (p_ < e_ && *p_ == '}') {
      ++p_;
      return true;
    }
    const unsigned char *key_start[kMaxKeys];
    size_t key_length[kMaxKeys];
    size_t nkeys = 0;
    for (;;) {
      const unsigned char *k;
      size_t kn;
      if (p_ >= e_ || *p_ != '"' || !String(&k, &kn)) return false;
      if (nkeys == kMaxKeys || !GoodKey(k, kn)) return false;
      for (size_t i = 0; i < nkeys; ++i)  // canonical escapes are unique: equal text <=> equal key
        if (key_length[i] == kn && std::memcmp(key_start[i], k, kn) == 0) return false;
      key_start[nkeys] = k;
      key_length[nkeys++] = kn;
      if (p_ >= e_ || *p_ != ':') return false;
      ++p_;
      if (!Value(depth)) return false;
      if (p_ >= e_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != '}') return false;
      ++p_;
      return true;
    }
  }

  // JS puts array-index keys ("0", "17") first and Object.assign treats __proto__ specially.
  static bool GoodKey(const unsigned char *k, size_t n) {
    if (n == 9 && std::memcmp(k, "__proto__", 9) == 0) return false;
    if (n == 0) return true;
    for (size_t i = 0; i < n; ++i)
      if (k[i] < '0' || k[i] > '9') return true;
    return false;
  }

  bool Array(int depth) {
    if (depth > kMaxDepth) return false;
    ++p_;  // '['
    if (p_ < e_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      if (!Value(depth)) return false;
      if (p_ >= e_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != ']') return false;
      ++p_;
      return true;
    }
  }

  // No byte of x is '"', '\\', a control character or non-ASCII (exact for "any", SWAR).
  static bool PlainWord(uint64_t x) {
    constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    const uint64_t ctrl = (x - ones * 0x20) & ~x & highs;
    const uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return ((x & highs) | ctrl | ((q - ones) & ~q & highs) | ((b - ones) & ~b & highs)) == 0;
  }

  static int Hex(unsigned char c) {  // lowercase only: JSON.stringify writes \u001f, not \u001F
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }

  bool String(const unsigned char **start, size_t *length) {
    ++p_;  // '"'
    const unsigned char *s = p_;
    while (p_ < e_) {
#if defined(__SSE2__)
      while (e_ - p_ >= 16) {  // plain ASCII runs (padding, names) 16 bytes at a time
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p_));
        // signed compare: bytes >= 0x80 are negative, so "< 0x20" also catches non-ASCII
        const __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                         _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
        if (_mm_movemask_epi8(bad) != 0) break;
        p_ += 16;
      }
#endif
      while (e_ - p_ >= 8) {  // the same, 8 bytes at a time
        uint64_t x;
        std::memcpy(&x, p_, 8);
        if (!PlainWord(x)) break;
        p_ += 8;
      }
      if (p_ >= e_) break;
      const unsigned char c = *p_;
      if (c == '"') {
        if (start != nullptr) {
          *start = s;
          *length = static_cast<size_t>(p_ - s);
        }
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (e_ - p_ < 2) return false;
        const unsigned char d = p_[1];
        if (d == '"' || d == '\\' || d == 'b' || d == 'f' || d == 'n' || d == 'r' || d == 't') {
          p_ += 2;
          continue;
        }
        // \u00XX only for the control characters without a short escape; surrogates go the slow way
        if (d != 'u' || e_ - p_ < 6 || p_[2] != '0' || p_[3] != '0') return false;
        const int hi = Hex(p_[4]), lo = Hex(p_[5]);
        if (hi < 0 || lo < 0) return false;
        const int code = hi * 16 + lo;
        if (code >= 0x20 || code == 0x08 || code == 0x09 || code == 0x0a || code == 0x0c || code == 0x0d) return false;
        p_ += 6;
        continue;
      }
      if (c < 0x80) {
        ++p_;
        continue;
      }
      if (!Utf8()) return false;
    }
    return false;
  }

  // One well-formed UTF-8 sequence (no overlongs, no surrogates, <= U+10FFFF).
  bool Utf8() {
    const unsigned char c = *p_;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (static_cast<size_t>(e_ - p_) < n + 1) return false;
    if (p_[1] < lo || p_[1] > hi) return false;
    for (size_t i = 2; i <= n; ++i)
      if (p_[i] < 0x80 || p_[i] > 0xBF) return false;
    p_ += n + 1;
    return true;
  }

  // Integers up to 15 digits (exact in a double), and fractions that are the shortest round trip
  // in fixed notation (what JS prints for 1e-6 <= |x| < 1e21). Exponents, -0 and trailing zeros: no.
  bool Number() {
    const unsigned char *s = p_;
    if (p_ < e_ && *p_ == '-') ++p_;
    const unsigned char *int_start = p_;
    if (p_ >= e_ || *p_ < '0' || *p_ > '9') return false;
    if (*p_ == '0') {
      ++p_;
      if (p_ < e_ && *p_ >= '0' && *p_ <= '9') return false;
    } else {
      while (p_ < e_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    const size_t int_digits = static_cast<size_t>(p_ - int_start);
    bool fraction = false;
    if (p_ < e_ && *p_ == '.') {
      fraction = true;
      ++p_;
      const unsigned char *f = p_;
      while (p_ < e_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == f || p_[-1] == '0') return false;
    }
    if (p_ < e_ && (*p_ == 'e' || *p_ == 'E')) return false;
    const size_t n = static_cast<size_t>(p_ - s);
    if (!fraction) return int_digits <= 15 && !(n == 2 && s[0] == '-' && s[1] == '0');
    if (n > 40) return false;
    double v = 0;
    const char *first = reinterpret_cast<const char *>(s);
    const auto parsed = std::from_chars(first, first + n, v);
    if (parsed.ec != std::errc() || parsed.ptr != first + n) return false;
    const double a = std::fabs(v);
    if (!(a >= 1e-6 && a < 1e21)) return false;
    char buf[64];
    const auto printed = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    return printed.ec == std::errc() && static_cast<size_t>(printed.ptr - buf) == n && std::memcmp(buf, first, n) == 0;
  }

  const unsigned char *p_;
  const unsigned char *e_;
};

}  // namespace

bool CanonicalJsonObject(const char *text, size_t length) {
  if (text == nullptr || length < 2) return false;
  return CanonicalScanner(text, length).TopObject();
}

}  // namespace streamplug
