// Sources and sinks: queues, threads, retry and the contract 1.1 host routines (see io.h).
#include "io.h"

#include <chrono>
#include <cstring>

namespace streamplug {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
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
  ctx_->io_kind = kind;
  ctx_->io = this;
}

IoBase::~IoBase() { delete ctx_; }

void IoBase::SetWake(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(wake_mutex_);
  wake_ = std::move(wake);
}

void IoBase::DetachWake() { SetWake(nullptr); }

void IoBase::Wake() {
  if (wake_pending_.exchange(true)) return;  // one wake in flight is enough: JS drains everything
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
  const char *name = ctx_->io_kind == 1 ? lib_->desc->sources[index_].name : lib_->desc->sinks[index_].name;
  std::string reason = ctx_->error_set ? ctx_->error
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

// ---- Source ------------------------------------------------------------------------------------

Source::Source(std::shared_ptr<Library> lib, int index, const std::string &rule, std::string config, size_t capacity,
               Overflow overflow)
    : IoBase(std::move(lib), index, 1, rule, std::move(config)), capacity_(capacity == 0 ? 1 : capacity),
      overflow_(overflow) {}

void Source::Start(std::shared_ptr<Source> self) {
  lib_->io_busy.fetch_add(1);
  // Detached: the lambda's `self` keeps the instance alive, and a finished thread's resources go
  // at once instead of waiting for the JS object to be collected.
  std::thread([self]() { self->Run(); }).detach();
}

void Source::Run() {
  const sp_source_def &d = def();
  void *instance = nullptr;
  sp_status status;
  {
    HookScope scope(lib_.get(), ctx_);
    status = d.open(ctx_, config_.data(), config_.size(), &instance);
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
      HookScope scope(lib_.get(), ctx_);
      d.run(ctx_, instance);
    }
    {
      std::unique_lock<std::mutex> lock(mutex_);
      stop_cv_.wait(lock, [this] { return stopping_.load(); });
    }
    HookScope scope(lib_.get(), ctx_);
    d.close(ctx_, instance);
  }
  Finish();
}

sp_status Source::Push(uint8_t kind, std::string &&bytes) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_.load()) return SP_ERROR;
  while (queue_.size() >= capacity_) {
    if (overflow_ == Overflow::kDropNewest) {
      counters.dropped.fetch_add(1);
      return SP_OK;
    }
    if (overflow_ == Overflow::kDropOldest) {
      queue_.pop_front();
      counters.dropped.fetch_add(1);
      break;
    }
    not_full_.wait(lock);
    if (stopping_.load()) return SP_ERROR;
  }
  queue_.push_back(SourceItem{kind, std::move(bytes), NowNs()});
  counters.in.fetch_add(1);
  lock.unlock();
  Wake();
  return SP_OK;
}

size_t Source::Drain(std::vector<SourceItem> *out, size_t max) {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t n = std::min(max, queue_.size());
  if (n > 0) {
    counters.Latency(NowNs() - queue_.front().enqueued_ns);
    out->reserve(out->size() + n);
    for (size_t i = 0; i < n; ++i) {
      out->push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    counters.out.fetch_add(n);
    not_full_.notify_all();
  }
  return queue_.size();
}

size_t Source::Depth() {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
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
}

void Sink::Start(std::shared_ptr<Sink> self) {
  lib_->io_busy.fetch_add(1);
  std::thread([self]() { self->Run(); }).detach();
}

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
    batch.data = b->data.data();
    batch.offsets = b->offsets.data();
  } else {
    for (const auto &n : b->names) names.push_back(n.c_str());
    batch.ncols = b->columns.size();
    batch.names = names.data();
    batch.columns = b->columns.data();
  }
  HookScope scope(lib_.get(), ctx_);
  return def().collect(ctx_, instance_for_hooks_, &batch);
}

void Sink::Run() {
  const sp_sink_def &d = def();
  int64_t backoff = options_.backoff_ms;
  // open, retried on SP_RETRY like a batch (a broker that is not up yet)
  for (int64_t attempt = 0;; ++attempt) {
    sp_status status;
    {
      HookScope scope(lib_.get(), ctx_);
      status = d.open(ctx_, config_.data(), config_.size(), &instance_for_hooks_);
    }
    if (status == SP_OK) break;
    const std::string message = HookError("open", status);
    if (status != SP_RETRY || abandoned_.load() || (options_.max_retries >= 0 && attempt >= options_.max_retries)) {
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
  {
    HookScope scope(lib_.get(), ctx_);
    d.close(ctx_, instance_for_hooks_);
  }
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
  return source->Push(0, std::string(static_cast<const char *>(data), length));
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
  const sp_status status = source != nullptr ? source->Push(1, std::move(row->bytes)) : SP_ERROR;
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

}  // namespace streamplug
