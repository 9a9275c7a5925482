// The crash journal and the fatal-signal handler (see journal.h).
#include "journal.h"

#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace streamplug {

namespace {

constexpr char kMagic[8] = {'S', 'P', 'J', 'R', 'N', 'L', '0', '1'};
constexpr int kFrames = 24;

struct JournalHeader {
  char magic[8];
  uint32_t size;
  volatile uint32_t clean;
  int32_t pid;
  uint32_t reserved;
  int64_t started_at;  // seconds since the epoch
  uint64_t nonce;      // this process's, so a host re-opening its own journal knows (pids repeat)
  char pad[4096 - 40];
};

struct PluginEntry {
  char name[64];
  char path[168];
  uint64_t base;  // load address, for backtrace offsets; 0 until dlopen returned
  volatile uint64_t lo, hi;  // executable segments, [lo, hi); 0 when not mapped
};

struct RuleEntry {
  char id[64];
};

struct CrashRecord {
  volatile uint32_t kind;  // 0 none, 1 fatal signal, 2 exit() inside plugin code
  int32_t signal;
  uint64_t word;
  uint64_t address;
  int64_t time;
  uint32_t nframes;
  uint32_t reserved;
  uint64_t frames[kFrames];
  char line[1024];
  char pad[4096 - 40 - kFrames * 8 - 1024];
};

struct JournalFile {
  JournalHeader header;
  PluginEntry plugins[kJournalPlugins];
  RuleEntry rules[kJournalRules];
  JournalSlot slots[kJournalSlots];
  CrashRecord crash;
};
static_assert(sizeof(JournalHeader) == 4096, "journal header is one page");
static_assert(sizeof(CrashRecord) == 4096, "crash record is one page");

// Before the journal opens (tests, benchmarks without a data dir) the same tables live here.
JournalFile local_file;
JournalFile *file = &local_file;
bool mapped = false;

std::mutex table_mutex;
uint32_t next_plugin = 1;  // 0 means "none"
uint32_t next_rule = 1;
std::unordered_map<std::string, uint32_t> rule_ids;

void CopyText(char *dst, size_t cap, const std::string &s) {
  // Long paths keep their tail: the file name is what identifies a plugin.
  const size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
  std::memcpy(dst, s.data() + (s.size() - n), n);
  dst[n] = '\0';
}

std::string Text(const char *s, size_t cap) { return std::string(s, strnlen(s, cap)); }

// ---- async-signal-safe formatting into a static buffer -----------------------------------------

struct Line {
  char buf[1024];
  size_t n = 0;
  void Add(const char *s) {
    while (s != nullptr && *s != '\0' && n < sizeof buf - 2) buf[n++] = *s++;
  }
  void AddN(const char *s, size_t cap) {
    for (size_t i = 0; i < cap && s[i] != '\0' && n < sizeof buf - 2; ++i) buf[n++] = s[i];
  }
  void Dec(int64_t v) {
    char tmp[24];
    int k = 0;
    const bool neg = v < 0;
    uint64_t u = neg ? static_cast<uint64_t>(-v) : static_cast<uint64_t>(v);
    do {
      tmp[k++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0);
    if (neg) tmp[k++] = '-';
    while (k > 0 && n < sizeof buf - 2) buf[n++] = tmp[--k];
  }
  void Hex(uint64_t v) {
    Add("0x");
    char tmp[16];
    int k = 0;
    do {
      tmp[k++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    while (k > 0 && n < sizeof buf - 2) buf[n++] = tmp[--k];
  }
  void End() {
    buf[n++] = '\n';
    buf[n] = '\0';
  }
};

void WriteAll(int fd, const char *p, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

const char *SignalName(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
  }
}

// "plugin NAME (PATH) in hook H, rule R": who the journal word names.
void Describe(Line *line, uint64_t word) {
  const uint32_t plugin = static_cast<uint32_t>(word & 0xffff);
  const Hook hook = static_cast<Hook>((word >> 16) & 0xff);
  const uint32_t rule = static_cast<uint32_t>(word >> 32);
  const PluginEntry &p = file->plugins[plugin % kJournalPlugins];
  line->Add("plugin ");
  line->AddN(p.name, sizeof p.name);
  line->Add(" (");
  line->AddN(p.path, sizeof p.path);
  line->Add(") in hook ");
  line->Add(HookName(hook));
  if (rule != 0) {
    line->Add(", rule ");
    line->AddN(file->rules[rule % kJournalRules].id, sizeof(RuleEntry::id));
  }
}

int64_t NowSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);  // async-signal-safe
  return ts.tv_sec;
}

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
struct sigaction previous_action[65];
std::atomic<int> handling{0};

void Reraise(int sig) {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  // Pending until the handler returns (the signal is blocked inside it), then the default action:
  // the exit status (139, 134, …) and the core dump are what they would have been without us.
  raise(sig);
}

// Not our crash: hand it to whoever had the signal before (Node's WebAssembly trap handler first).
void Chain(int sig, siginfo_t *info, void *context) {
  const struct sigaction &prev = previous_action[sig];
  if ((prev.sa_flags & SA_SIGINFO) != 0) {
    if (prev.sa_sigaction != nullptr) {
      prev.sa_sigaction(sig, info, context);
      return;
    }
  } else if (prev.sa_handler == SIG_IGN) {
    return;
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != nullptr) {
    prev.sa_handler(sig);
    return;
  }
  Reraise(sig);
}

// The plugin whose executable code holds the faulting instruction, as a journal word; 0 if none.
uint64_t WordForPc(void *context) {
  if (context == nullptr) return 0;
  const auto *uc = static_cast<const ucontext_t *>(context);
#if defined(__x86_64__)
  const uint64_t pc = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  const uint64_t pc = static_cast<uint64_t>(uc->uc_mcontext.pc);
#else
  const uint64_t pc = 0;
#endif
  if (pc == 0) return 0;
  for (uint32_t i = 1; i < kJournalPlugins; ++i) {
    const PluginEntry &p = file->plugins[i];
    if (p.lo != 0 && pc >= p.lo && pc < p.hi) return JournalWord(static_cast<uint16_t>(i), Hook::kOwnCode, 0);
  }
  return 0;
}

void OnFatalSignal(int sig, siginfo_t *info, void *context) {
  const uint32_t index = journal_slot_index;
  uint64_t word = index != 0 ? journal_slots[index - 1].word : 0;
  // Not in a hook: still the plugin's if the faulting instruction is in its code (a thread of its
  // own). Only the program counter is read here: a WebAssembly trap must reach V8 untouched.
  if (word == 0) word = WordForPc(context);
  if (word == 0) {
    Chain(sig, info, context);
    return;
  }
  if (handling.exchange(1) != 0) {  // a second fault while reporting the first
    Reraise(sig);
    return;
  }
  CrashRecord &crash = file->crash;
  const uint64_t address = info != nullptr ? reinterpret_cast<uint64_t>(info->si_addr) : 0;
  static Line line;
  line.n = 0;
  line.Add("streamplug: fatal ");
  line.Add(SignalName(sig));
  line.Add(" (fault address ");
  line.Hex(address);
  line.Add(") in ");
  Describe(&line, word);
  line.Add("; pid ");
  line.Dec(getpid());
  line.Add("; the plugin is quarantined at the next start; backtrace:");
  line.End();
  WriteAll(2, line.buf, line.n);
  static void *frames[kFrames];
  const int n = backtrace(frames, kFrames);  // pre-warmed in JournalOpen: no lazy libgcc load here
  if (crash.kind == 0) {
    crash.signal = sig;
    crash.word = word;
    crash.address = address;
    crash.time = NowSeconds();
    crash.nframes = n > 0 ? static_cast<uint32_t>(n) : 0;
    for (int i = 0; i < n; ++i) crash.frames[i] = reinterpret_cast<uint64_t>(frames[i]);
    std::memcpy(crash.line, line.buf, line.n < sizeof crash.line ? line.n : sizeof crash.line - 1);
    crash.kind = 1;  // last: a reader sees a complete record or none
  }
  if (n > 0) backtrace_symbols_fd(frames, n, 2);
  Reraise(sig);
}

// exit() is no signal: a plugin calling it ends the host through here (atexit), on its own thread.
void OnExit() {
  if (!mapped) return;
  const uint32_t index = journal_slot_index;
  const uint64_t word = index != 0 ? journal_slots[index - 1].word : 0;
  if (word == 0) {
    file->header.clean = 1;
    return;
  }
  CrashRecord &crash = file->crash;
  if (crash.kind != 0) return;
  static Line line;
  line.n = 0;
  line.Add("streamplug: fatal exit() called by ");
  Describe(&line, word);
  line.Add("; pid ");
  line.Dec(getpid());
  line.Add("; the plugin is quarantined at the next start");
  line.End();
  WriteAll(2, line.buf, line.n);
  crash.word = word;
  crash.time = NowSeconds();
  std::memcpy(crash.line, line.buf, line.n < sizeof crash.line ? line.n : sizeof crash.line - 1);
  crash.kind = 2;
}

void InstallHandlers() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  void *warm[4];
  backtrace(warm, 4);  // loads libgcc's unwinder now, outside any handler
  for (int sig : kSignals) {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnFatalSignal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, &previous_action[sig]);
  }
  std::atexit(OnExit);
}

// An alternate signal stack for this thread, so a plugin's stack overflow still reaches the
// handler. Threads that already have one (set by Node or a plugin) keep theirs.
struct AltStack {
  void *memory = nullptr;
  size_t size = 0;
  uint32_t slot = 0;
  ~AltStack() {
    if (slot != 0) journal_slots[slot - 1].in_use = 0;  // the word stays: exit() reads it after us
    if (memory != nullptr) {
      stack_t none;
      std::memset(&none, 0, sizeof none);
      none.ss_flags = SS_DISABLE;
      sigaltstack(&none, nullptr);
      munmap(memory, size);
    }
  }
};
thread_local AltStack alt_stack;

void EnsureAltStack() {
  stack_t current;
  if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) == 0) return;
  const size_t size = 64 * 1024 + static_cast<size_t>(SIGSTKSZ);
  void *memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return;
  stack_t st;
  std::memset(&st, 0, sizeof st);
  st.ss_sp = memory;
  st.ss_size = size;
  if (sigaltstack(&st, nullptr) != 0) {
    munmap(memory, size);
    return;
  }
  alt_stack.memory = memory;
  alt_stack.size = size;
}

// Random per process: tells this process's own journal from a previous one with the same pid (a
// container's host is often pid 1 at every start).
uint64_t ProcessNonce() {
  static const uint64_t nonce = [] {
    uint64_t v = 0;
    const int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (read(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) v = 0;
      close(fd);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v ^= static_cast<uint64_t>(ts.tv_nsec) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(getpid());
    return v == 0 ? 1 : v;
  }();
  return nonce;
}

std::string IsoTime(int64_t seconds) {
  if (seconds <= 0) return "";
  time_t t = static_cast<time_t>(seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string HexText(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

JournalReport::Entry EntryFor(const JournalFile &f, uint64_t word, const char *kind) {
  JournalReport::Entry e;
  e.kind = kind;
  const PluginEntry &p = f.plugins[(word & 0xffff) % kJournalPlugins];
  e.plugin = Text(p.name, sizeof p.name);
  e.path = Text(p.path, sizeof p.path);
  e.hook = HookName(static_cast<Hook>((word >> 16) & 0xff));
  const uint32_t rule = static_cast<uint32_t>(word >> 32);
  if (rule != 0) e.rule = Text(f.rules[rule % kJournalRules].id, sizeof(RuleEntry::id));
  return e;
}

void ReadPrevious(const JournalFile &f, JournalReport *report) {
  report->existed = true;
  report->clean = f.header.clean != 0;
  report->previous_pid = f.header.pid;
  report->started_at = IsoTime(f.header.started_at);
  const CrashRecord &c = f.crash;
  uint64_t crash_word = 0;
  if (c.kind == 1 || c.kind == 2) {
    crash_word = c.word;
    JournalReport::Entry e = EntryFor(f, c.word, c.kind == 1 ? "signal" : "exit");
    if (c.kind == 1) {
      e.signal = SignalName(c.signal);
      e.address = HexText(c.address);
    }
    e.time = IsoTime(c.time);
    const uint64_t base = f.plugins[(c.word & 0xffff) % kJournalPlugins].base;
    for (uint32_t i = 0; i < c.nframes && i < static_cast<uint32_t>(kFrames); ++i) {
      const uint64_t a = c.frames[i];
      // Frames inside the plugin as file offsets (for addr2line / gdb); others as they were.
      if (base != 0 && a >= base && a - base < (64u << 20)) {
        e.backtrace.push_back(e.path.substr(e.path.rfind('/') + 1) + "+" + HexText(a - base));
      } else {
        e.backtrace.push_back(HexText(a));
      }
    }
    e.line = Text(c.line, sizeof c.line);
    while (!e.line.empty() && e.line.back() == '\n') e.line.pop_back();
    report->entries.push_back(e);
  }
  for (uint32_t i = 0; i < kJournalSlots; ++i) {
    const uint64_t w = f.slots[i].word;
    if (w != 0 && w != crash_word) report->entries.push_back(EntryFor(f, w, "inside"));
  }
}

}  // namespace

JournalSlot *journal_slots = local_file.slots;
__thread uint32_t journal_slot_index __attribute__((tls_model("initial-exec"))) = 0;

const char *HookName(Hook hook) {
  switch (hook) {
    case Hook::kDlopen: return "dlopen";
    case Hook::kDescribe: return "describe";
    case Hook::kInit: return "init";
    case Hook::kDeinit: return "deinit";
    case Hook::kCall: return "call";
    case Hook::kValidate: return "validate";
    case Hook::kClose: return "close";
    case Hook::kSourceOpen: return "source.open";
    case Hook::kSourceRun: return "source.run";
    case Hook::kSourceClose: return "source.close";
    case Hook::kSinkOpen: return "sink.open";
    case Hook::kSinkCollect: return "sink.collect";
    case Hook::kSinkClose: return "sink.close";
    case Hook::kOwnCode: return "own-thread";
    case Hook::kMigrateState: return "migrate_state";
    default: return "unknown";
  }
}

uint32_t AcquireJournalSlot() {
  uint32_t chosen = kJournalSlots;  // the last slot is shared by threads beyond the table
  for (uint32_t i = 0; i + 1 < kJournalSlots; ++i) {
    if (__sync_bool_compare_and_swap(&journal_slots[i].in_use, 0u, 1u)) {
      chosen = i + 1;
      break;
    }
  }
  JournalSlot &slot = journal_slots[chosen - 1];
  slot.word = 0;
  slot.tid = static_cast<uint32_t>(syscall(SYS_gettid));
  journal_slot_index = chosen;
  EnsureAltStack();
  if (chosen != kJournalSlots) alt_stack.slot = chosen;
  return chosen;
}

uint16_t JournalRegisterPlugin(const std::string &label, const std::string &path) {
  std::lock_guard<std::mutex> lock(table_mutex);
  const uint32_t id = next_plugin;
  next_plugin = next_plugin + 1 >= kJournalPlugins ? 1 : next_plugin + 1;  // wraps: old entries are history
  PluginEntry &p = file->plugins[id];
  p.base = 0;
  p.lo = 0;
  p.hi = 0;
  CopyText(p.name, sizeof p.name, label);
  CopyText(p.path, sizeof p.path, path);
  return static_cast<uint16_t>(id);
}

void JournalNamePlugin(uint16_t id, const std::string &name, uintptr_t base, uintptr_t lo, uintptr_t hi) {
  std::lock_guard<std::mutex> lock(table_mutex);
  PluginEntry &p = file->plugins[id % kJournalPlugins];
  CopyText(p.name, sizeof p.name, name);
  p.base = base;
  p.hi = hi;
  p.lo = lo;
}

void JournalForgetRange(uint16_t id) {
  std::lock_guard<std::mutex> lock(table_mutex);
  PluginEntry &p = file->plugins[id % kJournalPlugins];
  p.lo = 0;
  p.hi = 0;
}

uint32_t JournalRule(const std::string &rule) {
  if (rule.empty()) return 0;
  std::lock_guard<std::mutex> lock(table_mutex);
  auto it = rule_ids.find(rule);
  if (it != rule_ids.end()) return it->second;
  if (rule_ids.size() >= kJournalRules - 1) rule_ids.clear();  // ids stay valid for live ctxs only by luck; a label, not a key
  const uint32_t id = next_rule;
  next_rule = next_rule + 1 >= kJournalRules ? 1 : next_rule + 1;
  CopyText(file->rules[id].id, sizeof(RuleEntry::id), rule);
  rule_ids[rule] = id;
  return id;
}

bool JournalOpen(const std::string &path, JournalReport *previous, std::string *error) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) == sizeof(JournalFile)) {
    void *old = mmap(nullptr, sizeof(JournalFile), PROT_READ, MAP_SHARED, fd, 0);
    if (old != MAP_FAILED) {
      const auto *f = static_cast<const JournalFile *>(old);
      if (std::memcmp(f->header.magic, kMagic, sizeof kMagic) == 0 && f->header.size == sizeof(JournalFile)) {
        if (f->header.nonce == ProcessNonce()) {
          // Written by this very process (a host restarted in-process): nothing ended, nothing to blame.
          previous->existed = true;
          previous->clean = true;
          previous->previous_pid = f->header.pid;
        } else {
          ReadPrevious(*f, previous);
        }
      }
      munmap(old, sizeof(JournalFile));
    }
  }
  // A fresh journal for this process: truncate to zero first so no byte of the last run survives.
  if (ftruncate(fd, 0) != 0 || ftruncate(fd, sizeof(JournalFile)) != 0) {
    *error = "cannot size " + path + ": " + std::strerror(errno);
    close(fd);
    return false;
  }
  void *memory = mmap(nullptr, sizeof(JournalFile), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (memory == MAP_FAILED) {
    *error = "cannot map " + path + ": " + std::strerror(errno);
    return false;
  }
  auto *f = static_cast<JournalFile *>(memory);
  {
    // What this process recorded so far (in memory, or in a journal opened before: one process may
    // run hosts on several data directories one after the other, tests do) carries over. A previous
    // mapping stays mapped: a thread may be writing its slot there right now.
    std::lock_guard<std::mutex> lock(table_mutex);
    std::memcpy(f->plugins, file->plugins, sizeof f->plugins);
    std::memcpy(f->rules, file->rules, sizeof f->rules);
    std::memcpy(f->slots, file->slots, sizeof f->slots);
    std::memcpy(f->header.magic, kMagic, sizeof kMagic);
    f->header.size = sizeof(JournalFile);
    f->header.pid = getpid();
    f->header.started_at = NowSeconds();
    f->header.nonce = ProcessNonce();
    file = f;
    journal_slots = f->slots;
    mapped = true;
  }
  InstallHandlers();
  return true;
}

}  // namespace streamplug
