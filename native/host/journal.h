// The crash journal: a memory-mapped file in the data directory that says, at every moment,
// which plugin, hook and rule each thread is running. Entering plugin code is one store into this
// thread's slot (no system call, no lock), so when the process dies inside a plugin — by a fatal
// signal or by the plugin calling exit() — the next start can read who did it.
//
// The fatal-signal handler lives here too: it reports (async-signal-safe calls only) and re-raises
// when the faulting thread is inside plugin code, and chains to the handler installed before it
// (Node's WebAssembly trap handler owns SIGSEGV) otherwise.
#ifndef STREAMPLUG_HOST_JOURNAL_H
#define STREAMPLUG_HOST_JOURNAL_H

#include <cstdint>
#include <string>
#include <vector>

namespace streamplug {

// The hook a thread is in. Stable numbers: they are written to the journal file and read back by
// the next start (possibly of a newer build), so only ever append.
enum class Hook : uint8_t {
  kNone = 0,
  kDlopen = 1,    // dlopen + constructors
  kDescribe = 2,  // the entry point returning the descriptor
  kInit = 3,
  kDeinit = 4,
  kCall = 5,
  kValidate = 6,
  kClose = 7,  // a function instance's close hook
  kSourceOpen = 8,
  kSourceRun = 9,
  kSourceClose = 10,
  kSinkOpen = 11,
  kSinkCollect = 12,
  kSinkClose = 13,
  kOwnCode = 14,  // the plugin's code outside any hook the host called (a thread of its own)
  kMigrateState = 15,  // contract 1.3: a checkpoint of another state version being migrated
};
const char *HookName(Hook hook);

// Journal geometry. A slot is one cache line so threads never share one.
constexpr uint32_t kJournalSlots = 256;
constexpr uint32_t kJournalPlugins = 256;
constexpr uint32_t kJournalRules = 1024;

struct alignas(64) JournalSlot {
  // 0: not in plugin code. Else plugin (bits 0-15), hook (16-23), rule (32-63).
  volatile uint64_t word;
  volatile uint32_t in_use;
  volatile uint32_t tid;
  char pad[48];
};

// The slot table lives in the mapping once the journal is open, in this process's memory before.
// Threads keep an index, not a pointer, so a thread that entered plugin code before the journal
// opened writes to the file from then on.
extern JournalSlot *journal_slots;
extern __thread uint32_t journal_slot_index __attribute__((tls_model("initial-exec")));  // index + 1
uint32_t AcquireJournalSlot();  // slow path: first plugin call on this thread (also sigaltstack)

inline uint64_t JournalWord(uint16_t plugin, Hook hook, uint32_t rule) {
  return static_cast<uint64_t>(plugin) | (static_cast<uint64_t>(hook) << 16) | (static_cast<uint64_t>(rule) << 32);
}

// Marks this thread as inside plugin code for its lifetime; restores what was there (hooks nest:
// a host routine called from a hook never re-enters, but validate inside a call path might).
class JournalScope {
 public:
  JournalScope(uint16_t plugin, Hook hook, uint32_t rule) {
    uint32_t i = journal_slot_index;
    if (__builtin_expect(i == 0, 0)) i = AcquireJournalSlot();
    slot_ = &journal_slots[i - 1];
    previous_ = slot_->word;
    slot_->word = JournalWord(plugin == 0 ? 1 : plugin, hook, rule);
  }
  ~JournalScope() { slot_->word = previous_; }
  JournalScope(const JournalScope &) = delete;
  JournalScope &operator=(const JournalScope &) = delete;

 private:
  JournalSlot *slot_;
  uint64_t previous_;
};

// Registers a plugin file before its code runs (dlopen): returns its id (>= 1) in the journal's
// plugin table. `label` is the name to report until the descriptor is read.
uint16_t JournalRegisterPlugin(const std::string &label, const std::string &path);
// Once dlopen returned: the descriptor name, the load address and the executable range [lo, hi),
// so a fault whose program counter lies in the plugin's code is blamed on it even on a thread the
// host never handed to it.
void JournalNamePlugin(uint16_t id, const std::string &name, uintptr_t base, uintptr_t lo, uintptr_t hi);
// The file was unmapped: its range may be reused by another library.
void JournalForgetRange(uint16_t id);
// Interns a rule id; 0 for "no rule".
uint32_t JournalRule(const std::string &rule);

// What the previous run left in the journal file.
struct JournalReport {
  bool existed = false;
  bool clean = false;  // the previous process ended through exit() outside plugin code
  int previous_pid = 0;
  std::string started_at;
  struct Entry {
    std::string kind;  // "signal", "exit", "inside" (the process ended while a thread was inside)
    std::string plugin, path, hook, rule, signal, address, time;
    std::vector<std::string> backtrace;  // "file+0xoff" or raw addresses
    std::string line;
  };
  std::vector<Entry> entries;  // the crash (at most one), then threads still inside plugin code
};

// Reads what the previous run left at `path`, then starts a fresh journal there for this process,
// installs the fatal-signal handlers (once) and the exit hook. Opening another journal later (a
// second host in the same process) moves the recording there. Returns false with `error` set when
// the file cannot be created or mapped.
bool JournalOpen(const std::string &path, JournalReport *previous, std::string *error);

}  // namespace streamplug

#endif
