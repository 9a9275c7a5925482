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

// What every source and sink holds, process-wide: all zero once every instance was stopped and
// its JS object collected. Exact counts for leak checks (test/io, scripts/valgrind-io-cycles.mjs),
// where RSS is only noise.
struct IoLive {
  std::atomic<int64_t> sources{0};       // Source objects
  std::atomic<int64_t> sinks{0};         // Sink objects
  std::atomic<int64_t> threads{0};       // control/worker threads not yet returned
  std::atomic<int64_t> queued_items{0};  // messages/rows in source queues
  std::atomic<int64_t> sink_batches{0};  // SinkBatch objects (queued or being delivered)
  std::atomic<int64_t> lent_lines{0};    // SharedLines: drained JSON lines lent to JS or a sink
};
IoLive &LiveIo();

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

// What a source queues. kLine is a raw message the host found to be one JSON object exactly as
// JSON.stringify would write it (CanonicalJsonObject): such messages are kept as JSON lines and can
// reach an encoded sink without ever being parsed.
enum SourceKind : uint8_t { kRawMessage = 0, kStructuredRow = 1, kJsonLine = 2 };

// Consecutive queued items of one kind, stored back to back (no allocation per item).
//   kRawMessage / kJsonLine: the message bytes (kJsonLine: each followed by '\n');
//   kStructuredRow: the binary encoding of RowBuilder: [u8 type][u16 name length][name][value]...
// Item i (i >= head) is data[start(i) .. ends[i]); items before head were dropped (drop-oldest).
struct SourceSegment {
  uint8_t kind = kRawMessage;
  std::string data;
  std::vector<uint32_t> ends;
  size_t head = 0;
  int64_t enqueued_ns = 0;  // of the segment's first item
  size_t size() const { return ends.size() - head; }
  size_t start(size_t i) const { return i == 0 ? 0 : ends[i - 1]; }
};

// True when `text` is one JSON object that JSON.stringify(JSON.parse(text)) gives back byte for
// byte: no whitespace, canonical escapes and numbers, valid UTF-8, no duplicate, index-like or
// __proto__ keys. Conservative: false for some canonical texts (e.g. exponents), never true for
// a text that is not.
bool CanonicalJsonObject(const char *text, size_t length);

// The validate hook of source (kind 1) or sink (kind 2) `index` with `config`, on the caller's thread.
// False when it refused: *message then says so, by name ("source X (plugin P) refused its configuration: ...").
// One place for the host (io_wrap.cc) and the isolated worker, so both give the same message.
bool ValidateIoConfig(Library *lib, int kind, size_t index, const std::string &config, std::string *message);

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
  // `lines`: recognise canonical JSON objects (kJsonLine); `segment_items`: most items per segment,
  // the JS side's batch size, so a drain takes whole segments.
  Source(std::shared_ptr<Library> lib, int index, const std::string &rule, std::string config, size_t capacity,
         Overflow overflow, bool lines, size_t segment_items);
  const sp_source_def &def() const { return lib_->Source(index_); }
  // Starts the control thread. `self` keeps the instance alive while the thread runs.
  void Start(std::shared_ptr<Source> self);
  ~Source() override;
  sp_status Push(uint8_t kind, const char *data, size_t length);
  // host->source_push_many: `count` raw messages, message i = data[offsets[i] .. offsets[i+1]).
  // Classified and laid out as queue bytes on the producer's thread; the lock is held only to copy
  // runs of them into the tail segment (one memcpy per run, not per message). *accepted (may be
  // null): how many were taken or dropped by the policy before a stop made the call return SP_ERROR.
  sp_status PushMany(const char *data, const uint32_t *offsets, size_t count, size_t *accepted);
  // Moves up to `max` items out, in segments; returns the number left queued.
  size_t Drain(std::vector<SourceSegment> *out, size_t max);
  size_t Depth() const { return count_.load(std::memory_order_relaxed); }  // no lock: stats() never waits on a producer
  bool lines() const { return lines_; }
  // Asks the source to stop: pushes fail from now on, the control thread runs close.
  void Stop();

 private:
  void Run();
  void DropOldest();  // mutex_ held
  void Append(uint8_t kind, const char *data, size_t length);  // mutex_ held, room checked
  // mutex_ held, room checked: staged items [from, to) (kinds[i], bytes stage[ends[i-1] .. ends[i]),
  // '\n' already after JSON lines) appended in runs of one kind per segment.
  void AppendStaged(const uint8_t *kinds, const char *stage, const uint64_t *ends, size_t from, size_t to);
  void Counted(size_t n);  // mutex_ held: n items were appended
  size_t capacity_;
  Overflow overflow_;
  bool lines_;
  size_t segment_items_;
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable stop_cv_;
  std::deque<SourceSegment> queue_;
  std::atomic<size_t> count_{0};  // items queued; written with mutex_ held, read anywhere
};

// JSON lines drained from a source, lent to JS as a Buffer; a sink handed that Buffer shares them
// instead of copying (the pass-through fast path).
struct SharedLines {
  SharedLines() { LiveIo().lent_lines.fetch_add(1); }
  ~SharedLines() { LiveIo().lent_lines.fetch_sub(1); }
  SharedLines(const SharedLines &) = delete;
  SharedLines &operator=(const SharedLines &) = delete;
  std::string data;
  std::vector<uint32_t> ends;  // item ends in data
  size_t head = 0;             // first item
  size_t base() const { return head == 0 ? 0 : ends[head - 1]; }
};

// One batch for a sink, owned by the queue: encoded JSON lines or typed columns.
struct SinkBatch {
  SinkBatch() { LiveIo().sink_batches.fetch_add(1); }
  ~SinkBatch() { LiveIo().sink_batches.fetch_sub(1); }
  SinkBatch(const SinkBatch &) = delete;
  SinkBatch &operator=(const SinkBatch &) = delete;
  size_t nrows = 0;
  std::string data;                // encoded: JSON lines
  std::shared_ptr<const SharedLines> shared;  // encoded, instead of data: lines drained from a source
  std::vector<uint32_t> offsets;   // encoded: nrows + 1 (shared: filled by the worker)
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
  ~Sink() override;
  const sp_sink_def &def() const { return lib_->Sink(index_); }
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
