// Sources and sinks (contract 1.1), free of Node: the bounded queues, the threads that run plugin
// hooks, retry with backoff, and the per-instance counters. io_wrap.cc puts JS classes over them.
//
// Threads. A source has one control thread (open, run, close, in that order); its plugin may push
// from any thread. A sink has one worker thread (open, collect*, close). The JS thread only
// enqueues, drains and reads counters: it never runs a source or sink hook, so a slow plugin
// never blocks it. `wake` tells the JS side (through a thread-safe function) to look again.
#ifndef STREAMPLUG_HOST_IO_H
#define STREAMPLUG_HOST_IO_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core.h"

namespace streamplug {

enum class Overflow { kBlock, kDropOldest, kDropNewest };

int64_t NowNs();  // steady clock

// What every source and sink instance counts; read from the JS thread while threads write.
struct IoCounters {
  std::atomic<uint64_t> in{0};       // source: messages/rows pushed; sink: rows enqueued
  std::atomic<uint64_t> out{0};      // source: delivered to JS; sink: rows the plugin acknowledged
  std::atomic<uint64_t> dropped{0};  // overflow drops, batches given up on, rows lost to a fatal error
  std::atomic<uint64_t> errors{0};   // failed hooks, SP_RETRY attempts, SP_IO_ERROR reports
  std::atomic<uint64_t> retries{0};  // sink: collect/open attempts repeated after SP_RETRY
  std::atomic<int64_t> last_latency_ns{0};  // enqueue -> delivery of the latest batch
  std::atomic<int64_t> max_latency_ns{0};

  std::mutex mutex;  // guards the strings and state below
  int state = SP_IO_CONNECTING;
  std::string status_message;
  std::string last_error;

  void Error(const std::string &message);
  void Status(int state, const std::string &message);
  void Latency(int64_t ns);
};

// One queued item of a source: a raw message (kind 0) or a structured row (kind 1, the binary
// encoding of RowBuilder: [u8 type][u16 name length][name][value]...).
struct SourceItem {
  uint8_t kind;
  std::string bytes;
  int64_t enqueued_ns;
};

class IoBase {
 public:
  IoBase(std::shared_ptr<Library> lib, int index, int kind, const std::string &rule, std::string config);
  virtual ~IoBase();
  IoCounters counters;
  sp_ctx *ctx() { return ctx_; }
  Library *library() { return lib_.get(); }
  bool stopping() const { return stopping_.load(); }
  // Called by the JS side once it no longer wants wakes (closed, or abandoned after a timeout).
  void DetachWake();
  // The thread has returned: hooks are over for good.
  bool finished() const { return finished_.load(); }
  bool opened() const { return opened_.load(); }
  std::string failure();  // why open failed or the instance stopped, "" if it did not

 protected:
  void Wake();
  void SetFailure(const std::string &message);
  std::string HookError(const char *hook, sp_status status);
  void Finish();  // last thing the thread does

  std::shared_ptr<Library> lib_;
  int index_;
  sp_ctx *ctx_;
  std::string config_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> opened_{false};

 private:
  std::mutex wake_mutex_;
  std::function<void()> wake_;
  std::atomic<bool> wake_pending_{false};
  std::string failure_;

 public:
  // Set by the JS side before Start; called at most once per pending wake.
  void SetWake(std::function<void()> wake);
  // The JS side got the wake: the next event wakes again.
  void WakeTaken() { wake_pending_.store(false); }
  // A status change (host->set_status) for the JS side to show.
  void NotifyStatus() { Wake(); }
};

class Source : public IoBase {
 public:
  Source(std::shared_ptr<Library> lib, int index, const std::string &rule, std::string config, size_t capacity,
         Overflow overflow);
  const sp_source_def &def() const { return lib_->desc->sources[index_]; }
  // Starts the control thread. `self` keeps the instance alive while the thread runs.
  void Start(std::shared_ptr<Source> self);
  sp_status Push(uint8_t kind, std::string &&bytes);
  // Moves up to `max` items out; returns the number left queued.
  size_t Drain(std::vector<SourceItem> *out, size_t max);
  size_t Depth();
  // Asks the source to stop: pushes fail from now on, the control thread runs close.
  void Stop();

 private:
  void Run();
  size_t capacity_;
  Overflow overflow_;
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable stop_cv_;
  std::deque<SourceItem> queue_;
};

// One batch for a sink, owned by the queue: encoded JSON lines or typed columns.
struct SinkBatch {
  size_t nrows = 0;
  std::string data;                // encoded: JSON lines
  std::vector<uint32_t> offsets;   // encoded: nrows + 1
  std::vector<std::string> names;  // typed
  std::vector<sp_column> columns;  // typed: pointers into the storage below
  std::vector<std::string> storage;
  std::vector<std::vector<uint32_t>> string_offsets;
  int64_t enqueued_ns = 0;
};

struct SinkOptions {
  size_t capacity = 16;            // batches queued, not counting the one being delivered
  int64_t max_retries = 3;         // SP_RETRY attempts per batch before it is dropped; -1: forever
  int64_t backoff_ms = 100;        // first wait; doubles per attempt
  int64_t max_backoff_ms = 5000;
};

class Sink : public IoBase {
 public:
  Sink(std::shared_ptr<Library> lib, int index, const std::string &rule, std::string config, SinkOptions options);
  const sp_sink_def &def() const { return lib_->desc->sinks[index_]; }
  void Start(std::shared_ptr<Sink> self);
  // Takes the batch when there is room; false when the queue is full (wait for a wake). Fails
  // (returns false and sets *fatal) once the sink stopped for good.
  bool Push(std::unique_ptr<SinkBatch> &batch, bool *fatal);
  size_t Depth();
  // No more batches: deliver what is queued, then close (flush).
  void Stop();
  // Give up: queued batches are dropped, retries end, close runs as soon as the thread can.
  void Abandon();
  bool fatal() const { return fatal_.load(); }

 private:
  void Run();
  sp_status Deliver(SinkBatch *batch);
  bool Sleep(int64_t ms);  // false when abandoned meanwhile
  SinkOptions options_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<SinkBatch>> queue_;
  std::atomic<bool> fatal_{false};
  std::atomic<bool> abandoned_{false};
  std::atomic<size_t> in_flight_{0};
  void *instance_for_hooks_ = nullptr;  // what open stored; only the worker thread touches it
};

}  // namespace streamplug

#endif
