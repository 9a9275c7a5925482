// The host end of an isolated plugin's shared-memory channel (native/isolated/channel.h): the
// memfd and its mapping, the doorbells, and waiting for the worker's answer while watching the
// worker itself (a pidfd), so a crash or a hang ends the wait at once instead of never.
//
// JS (src/plugins/isolated) does the rest through one ArrayBuffer over the whole mapping: it lays
// out requests, columns and frames itself. This file only rings and waits.
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "../isolated/channel.h"
#include "addon.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace streamplug {

namespace {

namespace iso = isolated;

struct ChannelCore {
  int memfd = -1;
  int pidfd = -1;
  uint8_t *base = nullptr;
  size_t bytes = 0;
  int64_t spin_ns = 0;  // spin before sleeping: 0, a futex round trip is ~0.5 µs idle and spinning starves the worker on a busy box

  uint32_t *slot(uint32_t index) { return reinterpret_cast<uint32_t *>(base) + index; }
  ~ChannelCore() {
    if (pidfd >= 0) close(pidfd);
    // The mapping is the ArrayBuffer's (UnmapArena): frames' views may outlive this object.
    if (memfd >= 0) close(memfd);
  }
};

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

uint32_t Load(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
void Store(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }

void FutexWake(uint32_t *addr) { syscall(SYS_futex, addr, FUTEX_WAKE, 1, nullptr, nullptr, 0); }
void FutexWait(uint32_t *addr, uint32_t expected, int64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  syscall(SYS_futex, addr, FUTEX_WAIT, expected, &ts, nullptr, 0);
}

bool WorkerGone(ChannelCore *core) {
  if (core->pidfd < 0) return true;
  pollfd p{core->pidfd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

void KillWorker(ChannelCore *core) {
  if (core->pidfd >= 0) syscall(SYS_pidfd_send_signal, core->pidfd, SIGKILL, nullptr, 0);
}

ChannelCore *CoreOf(const Napi::CallbackInfo &info) { return static_cast<ChannelCore *>(info.Data()); }

// attach(pid): the worker now serving this channel. Returns false when the pid is already gone.
Napi::Value Attach(const Napi::CallbackInfo &info) {
  ChannelCore *core = CoreOf(info);
  if (core->pidfd >= 0) close(core->pidfd);
  core->pidfd = -1;
  if (info.Length() < 1 || !info[0].IsNumber()) return Throw(info.Env(), "E_USAGE", "attach(pid): expected the worker's pid");
  const int pid = info[0].As<Napi::Number>().Int32Value();
  core->pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  // A fresh worker starts with both sequence words where the host left them: the worker reads
  // req_seq at start and answers only later requests.
  return Napi::Boolean::New(info.Env(), core->pidfd >= 0);
}

Napi::Value Detach(const Napi::CallbackInfo &info) {
  ChannelCore *core = CoreOf(info);
  if (core->pidfd >= 0) close(core->pidfd);
  core->pidfd = -1;
  return info.Env().Undefined();
}

// kill(): SIGKILL through the pidfd (never a recycled pid).
Napi::Value Kill(const Napi::CallbackInfo &info) {
  KillWorker(CoreOf(info));
  return info.Env().Undefined();
}

// roundTrip(timeoutMs) -> 0 answered, 1 the worker died, 2 timed out (the worker was killed),
// 3 no worker attached. The request slots are written by JS beforehand.
Napi::Value RoundTrip(const Napi::CallbackInfo &info) {
  ChannelCore *core = CoreOf(info);
  const double timeout_ms = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 5000;
  auto done = [](uint32_t code, Napi::Env env) { return Napi::Number::New(env, code); };
  if (core->pidfd < 0) return done(3, info.Env());
  uint32_t *req = core->slot(iso::kSlotReqSeq);
  uint32_t *resp = core->slot(iso::kSlotRespSeq);
  const uint32_t seq = Load(req) + 1;
  Store(core->slot(iso::kSlotStatus), 0);
  Store(req, seq);
  if (Load(core->slot(iso::kSlotWorkerSleeping)) != 0) FutexWake(req);

  const int64_t start = MonotonicNs();
  const int64_t deadline = start + static_cast<int64_t>(timeout_ms * 1e6);
  while (MonotonicNs() - start < core->spin_ns) {
    if (Load(resp) == seq) return done(0, info.Env());
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  uint32_t *sleeping = core->slot(iso::kSlotHostSleeping);
  for (;;) {
    Store(sleeping, 1);
    if (Load(resp) == seq) break;
    // Short slices: between them the pidfd says whether the worker still lives.
    FutexWait(resp, seq - 1, 5000000);
    Store(sleeping, 0);
    if (Load(resp) == seq) break;
    if (WorkerGone(core)) {
      if (Load(resp) == seq) break;
      return done(1, info.Env());
    }
    if (MonotonicNs() > deadline) {
      KillWorker(core);
      return done(2, info.Env());
    }
  }
  Store(sleeping, 0);
  return done(0, info.Env());
}

Napi::Value Alive(const Napi::CallbackInfo &info) { return Napi::Boolean::New(info.Env(), !WorkerGone(CoreOf(info))); }

void FreeCore(napi_env, void *, void *hint) { delete static_cast<ChannelCore *>(hint); }

struct Mapping {
  void *base;
  size_t bytes;
};
// The ArrayBuffer owns the mapping: unmapped once no typed array over it is left.
void UnmapArena(napi_env, void *, void *hint) {
  auto *m = static_cast<Mapping *>(hint);
  munmap(m->base, m->bytes);
  delete m;
}

// close(): kills the worker if any and closes the memfd (the mapping goes with the buffer).
Napi::Value CloseChannel(const Napi::CallbackInfo &info) {
  ChannelCore *core = CoreOf(info);
  KillWorker(core);
  if (core->pidfd >= 0) close(core->pidfd);
  if (core->memfd >= 0) close(core->memfd);
  core->pidfd = core->memfd = -1;
  return info.Env().Undefined();
}

// openChannel(bytes) -> { fd, buffer, attach, detach, kill, alive, roundTrip }
Napi::Value OpenChannel(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const double requested = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  if (!(requested >= iso::kHeaderBytes * 2) || requested > 4294967295.0) {
    return Throw(env, "E_BAD_REQUEST", "openChannel(bytes): the arena must be between 8 KiB and 4 GiB, got " + std::to_string(requested));
  }
  auto *core = new ChannelCore();
  core->bytes = (static_cast<size_t>(requested) + 4095) & ~static_cast<size_t>(4095);
  core->memfd = static_cast<int>(syscall(SYS_memfd_create, "streamplug-isolated", MFD_CLOEXEC));
  if (core->memfd < 0 || ftruncate(core->memfd, static_cast<off_t>(core->bytes)) != 0) {
    const std::string why = std::strerror(errno);
    delete core;
    return Throw(env, "E_ISOLATION", "memfd_create/ftruncate for an isolated worker failed: " + why);
  }
  void *base = mmap(nullptr, core->bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, core->memfd, 0);
  if (base == MAP_FAILED) {
    const std::string why = std::strerror(errno);
    delete core;
    return Throw(env, "E_ISOLATION", "mmap of the isolated worker's channel failed: " + why);
  }
  core->base = static_cast<uint8_t *>(base);
  Store(core->slot(iso::kSlotMagic), iso::kMagic);
  Store(core->slot(iso::kSlotVersion), iso::kVersion);
  if (const char *spin = std::getenv("STREAMPLUG_ISOLATED_SPIN_NS")) core->spin_ns = std::atoll(spin);

  Napi::Object o = Napi::Object::New(env);
  napi_value buffer;
  auto *mapping = new Mapping{base, core->bytes};
  if (napi_create_external_arraybuffer(env, base, core->bytes, UnmapArena, mapping, &buffer) != napi_ok) {
    munmap(base, core->bytes);
    delete mapping;
    delete core;
    return Throw(env, "E_ISOLATION", "cannot expose the isolated worker's channel to JavaScript");
  }
  o.Set("fd", Napi::Number::New(env, core->memfd));
  o.Set("buffer", Napi::Value(env, buffer));
  o.Set("attach", Napi::Function::New(env, Attach, "attach", core));
  o.Set("detach", Napi::Function::New(env, Detach, "detach", core));
  o.Set("kill", Napi::Function::New(env, Kill, "kill", core));
  o.Set("alive", Napi::Function::New(env, Alive, "alive", core));
  o.Set("roundTrip", Napi::Function::New(env, RoundTrip, "roundTrip", core));
  o.Set("close", Napi::Function::New(env, CloseChannel, "close", core));
  napi_add_finalizer(env, o, core, FreeCore, core, nullptr);
  return o;
}

}  // namespace

void InitChannel(Napi::Env env, Napi::Object exports) {
  exports.Set("openChannel", Napi::Function::New(env, OpenChannel, "openChannel"));
}

}  // namespace streamplug
