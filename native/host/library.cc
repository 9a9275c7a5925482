// Loading a plugin library: dlopen, the entry point, and every check of the descriptor and the
// manifest note that can be made before a plugin hook runs.
#include "core.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

namespace streamplug {

namespace {

Failure Fail(const std::string &code, const std::string &message) { return Failure{code, message}; }

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

bool ValidPluginName(const char *s) {
  if (s == nullptr || *s == '\0') return false;
  for (; *s != '\0'; ++s) {
    if (!std::isalnum(static_cast<unsigned char>(*s)) && *s != '_' && *s != '-') return false;
  }
  return true;
}

bool ValidFunctionName(const char *s) {
  if (s == nullptr || *s == '\0' || std::isdigit(static_cast<unsigned char>(*s))) return false;
  for (; *s != '\0'; ++s) {
    if (!std::isalnum(static_cast<unsigned char>(*s)) && *s != '_') return false;
  }
  return true;
}

std::string Lower(std::string s) {
  for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ValidArgType(uint32_t t) { return t <= SP_TYPE_BYTES; }
bool ValidResultType(uint32_t t) {
  return (t >= SP_TYPE_BOOL && t <= SP_TYPE_BYTES) || t == SP_TYPE_LIKE_ARG0;
}

// Reads the manifest note from the library's PT_NOTE segments as mapped, so what is checked is
// what was loaded, not a file that may have changed since the pre-load check.
struct NoteSearch {
  ElfW(Addr) base;
  const char *name;
  std::string text;
  bool found = false;
};

int FindNote(struct dl_phdr_info *info, size_t, void *data) {
  auto *search = static_cast<NoteSearch *>(data);
  if (info->dlpi_addr != search->base || info->dlpi_name == nullptr ||
      std::strcmp(info->dlpi_name, search->name) != 0) {
    return 0;
  }
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const size_t align = ph.p_align == 8 ? 8 : 4;
    auto pad = [align](size_t n) { return (n + align - 1) & ~(align - 1); };
    const char *p = reinterpret_cast<const char *>(info->dlpi_addr + ph.p_vaddr);
    const char *end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const auto *nh = reinterpret_cast<const ElfW(Nhdr) *>(p);
      const char *owner = p + sizeof(ElfW(Nhdr));
      const char *desc = owner + pad(nh->n_namesz);
      const char *next = desc + pad(nh->n_descsz);
      if (next > end || next <= p) break;
      if (nh->n_type == STREAMPLUG_NOTE_TYPE_MANIFEST && nh->n_namesz == sizeof(STREAMPLUG_NOTE_OWNER) &&
          std::memcmp(owner, STREAMPLUG_NOTE_OWNER, sizeof(STREAMPLUG_NOTE_OWNER)) == 0) {
        search->text.assign(desc, strnlen(desc, nh->n_descsz));
        search->found = true;
        return 1;
      }
      p = next;
    }
  }
  return 1;
}

// The executable PT_LOAD segments of one library as mapped: where its code is (crash attribution).
struct ExecRange {
  ElfW(Addr) base;
  const char *name;
  uintptr_t lo = 0, hi = 0;
};

int FindExecRange(struct dl_phdr_info *info, size_t, void *data) {
  auto *r = static_cast<ExecRange *>(data);
  if (info->dlpi_addr != r->base || info->dlpi_name == nullptr || std::strcmp(info->dlpi_name, r->name) != 0) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
    if (r->lo == 0 || lo < r->lo) r->lo = lo;
    if (hi > r->hi) r->hi = hi;
  }
  return 1;
}

std::map<std::string, std::string> ParseManifest(const std::string &text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::set<std::string> SplitList(const std::string &s) {
  std::set<std::string> out;
  std::istringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.insert(item);
  }
  return out;
}

std::string JoinList(const std::set<std::string> &items) {
  std::string out;
  for (const auto &item : items) out += (out.empty() ? "" : ",") + item;
  return out.empty() ? "(none)" : out;
}

Failure CheckFunction(const std::string &path, size_t index, const sp_function_def &f) {
  const std::string where = path + ": function #" + std::to_string(index) +
                            (f.name != nullptr ? " (" + std::string(f.name) + ")" : "");
  const std::string fix = "; fix the plugin's sp_function_def table (see SP_FUNCTION_DEF in plugin.h)";
  if (f.size < sizeof(sp_function_def)) {
    return Fail("E_BAD_DESCRIPTOR", where + ": size is " + std::to_string(f.size) + ", expected at least " +
                                        std::to_string(sizeof(sp_function_def)) + fix);
  }
  if (!ValidFunctionName(f.name)) {
    return Fail("E_BAD_DESCRIPTOR", where + ": name is missing or not an SQL identifier ([A-Za-z_][A-Za-z0-9_]*)" + fix);
  }
  if (f.kind != SP_FUNCTION_SCALAR && f.kind != SP_FUNCTION_AGGREGATE) {
    return Fail("E_BAD_DESCRIPTOR", where + ": kind is " + std::to_string(f.kind) +
                                        ", expected SP_FUNCTION_SCALAR (1) or SP_FUNCTION_AGGREGATE (2)" + fix);
  }
  if (f.min_args < 0 || (f.max_args != -1 && f.max_args < f.min_args)) {
    return Fail("E_BAD_DESCRIPTOR", where + ": arity min " + std::to_string(f.min_args) + " max " +
                                        std::to_string(f.max_args) + ", expected 0 <= min <= max or max = -1" + fix);
  }
  if (f.max_args != 0) {
    if (f.arg_types == nullptr) {
      return Fail("E_BAD_DESCRIPTOR", where + ": arg_types is NULL but the function takes arguments" + fix);
    }
    const int declared = f.min_args > 1 ? f.min_args : 1;
    for (int i = 0; i < declared; ++i) {
      if (!ValidArgType(f.arg_types[i])) {
        return Fail("E_BAD_DESCRIPTOR", where + ": argument " + std::to_string(i) + " has type " +
                                            std::to_string(f.arg_types[i]) + ", expected an sp_type 0..5" + fix);
      }
    }
  }
  if (!ValidResultType(f.result_type) || (f.result_type == SP_TYPE_LIKE_ARG0 && f.max_args == 0)) {
    return Fail("E_BAD_DESCRIPTOR", where + ": result type " + std::to_string(f.result_type) +
                                        " is not a concrete sp_type 1..5 or SP_TYPE_LIKE_ARG0 (with an argument)" + fix);
  }
  if (f.call == nullptr) {
    return Fail("E_BAD_DESCRIPTOR", where + ": call hook is NULL" + fix);
  }
  return {};
}

Failure CheckIoName(const std::string &where, const char *name, const std::string &fix) {
  if (!ValidFunctionName(name)) {
    return Fail("E_BAD_DESCRIPTOR", where + ": name is missing or not [A-Za-z_][A-Za-z0-9_]*" + fix);
  }
  return {};
}

// Sources and sinks (contract 1.1): sizes, names, required hooks, and the declared minor.
Failure CheckIo(const std::string &path, const sp_plugin_descriptor *d) {
  const size_t ns = NumSources(d), nk = NumSinks(d);
  if (ns == 0 && nk == 0) return {};
  if (d->contract_minor < 1) {
    return Fail("E_BAD_DESCRIPTOR", path + ": the descriptor has sources or sinks but declares contract 1." +
                                        std::to_string(d->contract_minor) +
                                        "; sources and sinks need 1.1: #define STREAMPLUG_PLUGIN_MINOR 1 before including plugin.h");
  }
  if ((ns > 0 && d->sources == nullptr) || (nk > 0 && d->sinks == nullptr) || ns > 10000 || nk > 10000) {
    return Fail("E_BAD_DESCRIPTOR", path + ": n_sources " + std::to_string(ns) + " / n_sinks " + std::to_string(nk) +
                                        " do not match the sources / sinks tables (NULL or corrupt); set both in the describe function");
  }
  const std::string fix = "; fix the plugin's table (see SP_SOURCE_DEF / SP_SINK_DEF in plugin.h)";
  std::set<std::string> seen;
  for (size_t i = 0; i < ns; ++i) {
    const sp_source_def &s = d->sources[i];
    const std::string where = path + ": source #" + std::to_string(i) + (s.name != nullptr ? " (" + std::string(s.name) + ")" : "");
    if (s.size < sizeof(sp_source_def)) {
      return Fail("E_BAD_DESCRIPTOR", where + ": size is " + std::to_string(s.size) + ", expected at least " + std::to_string(sizeof(sp_source_def)) + fix);
    }
    Failure f = CheckIoName(where, s.name, fix);
    if (f.failed()) return f;
    if (s.open == nullptr || s.close == nullptr) return Fail("E_BAD_DESCRIPTOR", where + ": open and close hooks are required" + fix);
    if (!seen.insert("source:" + Lower(s.name)).second) return Fail("E_BAD_DESCRIPTOR", where + ": the name appears twice; rename one");
  }
  for (size_t i = 0; i < nk; ++i) {
    const sp_sink_def &k = d->sinks[i];
    const std::string where = path + ": sink #" + std::to_string(i) + (k.name != nullptr ? " (" + std::string(k.name) + ")" : "");
    if (k.size < sizeof(sp_sink_def)) {
      return Fail("E_BAD_DESCRIPTOR", where + ": size is " + std::to_string(k.size) + ", expected at least " + std::to_string(sizeof(sp_sink_def)) + fix);
    }
    Failure f = CheckIoName(where, k.name, fix);
    if (f.failed()) return f;
    if (k.open == nullptr || k.collect == nullptr || k.close == nullptr) {
      return Fail("E_BAD_DESCRIPTOR", where + ": open, collect and close hooks are required" + fix);
    }
    if (!seen.insert("sink:" + Lower(k.name)).second) return Fail("E_BAD_DESCRIPTOR", where + ": the name appears twice; rename one");
  }
  return {};
}

Failure CheckDescriptor(const std::string &path, const sp_plugin_descriptor *d) {
  if (d == nullptr) {
    return Fail("E_BAD_DESCRIPTOR", path + ": " STREAMPLUG_ENTRY_NAME "() returned NULL, expected a descriptor; "
                                    "define the entry point with STREAMPLUG_PLUGIN() from plugin.h");
  }
  if (d->magic != STREAMPLUG_MAGIC) {
    return Fail("E_BAD_MAGIC", path + ": descriptor magic is " + Hex(d->magic) + ", expected " + Hex(STREAMPLUG_MAGIC) +
                                   " ('SPLG'); define the entry point with STREAMPLUG_PLUGIN() from plugin.h");
  }
  if (d->contract_major != STREAMPLUG_CONTRACT_MAJOR) {
    return Fail("E_CONTRACT_MAJOR", path + ": plugin built for contract " + std::to_string(d->contract_major) + "." +
                                        std::to_string(d->contract_minor) + ", this host speaks " +
                                        std::to_string(STREAMPLUG_CONTRACT_MAJOR) + "." +
                                        std::to_string(STREAMPLUG_CONTRACT_MINOR) +
                                        "; rebuild the plugin against this host's plugin.h");
  }
  if (d->contract_minor > STREAMPLUG_CONTRACT_MINOR) {
    return Fail("E_CONTRACT_MINOR", path + ": plugin needs contract 1." + std::to_string(d->contract_minor) +
                                        ", this host offers up to 1." + std::to_string(STREAMPLUG_CONTRACT_MINOR) +
                                        "; upgrade streamplug or rebuild the plugin against this host's plugin.h");
  }
  if (d->size < sizeof(sp_plugin_descriptor)) {
    return Fail("E_BAD_DESCRIPTOR", path + ": descriptor size is " + std::to_string(d->size) + ", expected at least " +
                                        std::to_string(sizeof(sp_plugin_descriptor)) + " for contract 1.0; rebuild the plugin");
  }
  if (!ValidPluginName(d->name)) {
    return Fail("E_BAD_DESCRIPTOR", path + ": plugin name is missing or not ^[A-Za-z0-9_-]+$; fix the name given to STREAMPLUG_PLUGIN()");
  }
  if (d->version == nullptr || *d->version == '\0') {
    return Fail("E_BAD_DESCRIPTOR", path + ": plugin version is missing; give STREAMPLUG_PLUGIN() a version string");
  }
  if (d->n_functions > 0 && d->functions == nullptr) {
    return Fail("E_BAD_DESCRIPTOR", path + ": n_functions is " + std::to_string(d->n_functions) +
                                        " but functions is NULL; set both in the describe function");
  }
  if (d->n_functions > 10000) {
    return Fail("E_BAD_DESCRIPTOR", path + ": n_functions is " + std::to_string(d->n_functions) +
                                        ", more than 10000: the descriptor is corrupt");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < d->n_functions; ++i) {
    Failure f = CheckFunction(path, i, d->functions[i]);
    if (f.failed()) return f;
    if (!seen.insert(Lower(d->functions[i].name)).second) {
      return Fail("E_BAD_DESCRIPTOR", path + ": function name " + d->functions[i].name +
                                          " appears twice (names are case-insensitive); rename one");
    }
  }
  return CheckIo(path, d);
}

std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<Library>> registry;  // by path: open libraries

Failure CheckManifest(const std::string &path, const sp_plugin_descriptor *d, const std::string &text) {
  auto m = ParseManifest(text);
  std::string contract = std::to_string(d->contract_major) + "." + std::to_string(d->contract_minor);
  if (m["name"] != d->name) {
    return Fail("E_MANIFEST_MISMATCH", path + ": manifest note names the plugin '" + m["name"] + "', the descriptor '" +
                                           d->name + "'; build both from one STREAMPLUG_PLUGIN() line");
  }
  if (m["version"] != d->version) {
    return Fail("E_MANIFEST_MISMATCH", path + ": manifest note says version '" + m["version"] + "', the descriptor '" +
                                           d->version + "'; build both from one STREAMPLUG_PLUGIN() line");
  }
  if (m["contract"] != contract) {
    return Fail("E_MANIFEST_MISMATCH", path + ": manifest note says contract '" + m["contract"] +
                                           "', the descriptor " + contract + "; rebuild the plugin");
  }
  std::set<std::string> declared = SplitList(m["extensions"]);
  std::set<std::string> actual;
  for (size_t i = 0; i < d->n_functions; ++i) actual.insert(std::string("function:") + d->functions[i].name);
  for (size_t i = 0; i < NumSources(d); ++i) actual.insert(std::string("source:") + d->sources[i].name);
  for (size_t i = 0; i < NumSinks(d); ++i) actual.insert(std::string("sink:") + d->sinks[i].name);
  if (declared != actual) {
    return Fail("E_MANIFEST_MISMATCH", path + ": manifest note declares extensions " + JoinList(declared) +
                                           ", the descriptor provides " + JoinList(actual) +
                                           "; make the EXTENSIONS argument of STREAMPLUG_PLUGIN() list exactly the functions, sources and sinks tables");
  }
  return {};
}

std::string DlError() {
  const char *e = dlerror();
  return e != nullptr ? e : "unknown dlopen error";
}

}  // namespace

std::shared_ptr<Library> FindLibrary(const std::string &path) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry.find(path);
  return it != registry.end() ? it->second.lock() : nullptr;
}

bool IsMapped(const std::string &path) {
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) return false;
  dlclose(h);  // drop the reference RTLD_NOLOAD just took
  return true;
}

Failure OpenLibrary(const std::string &path, Library *lib, const std::string &label) {
  lib->path = path;
  // In the journal before any of its code runs: a constructor that crashes names this file.
  lib->journal_id = JournalRegisterPlugin(label.empty() ? path.substr(path.rfind('/') + 1) : label, path);
  if (IsMapped(path)) {
    // dlopen would hand back the old mapping, old code and all.
    return Fail("E_PLUGIN_LOADED", path + " is still mapped in this process from an earlier load (a library with "
                                          "STB_GNU_UNIQUE symbols is never unmapped); install the new version under a new "
                                          "file name or restart the host");
  }
  dlerror();
  // RTLD_NOW: an undefined symbol fails here, not as a crash at the first call.
  // RTLD_LOCAL: two plugins' symbols never interpose.
  void *handle = nullptr;
  try {
    JournalScope scope(lib->journal_id, Hook::kDlopen, 0);
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  } catch (const std::exception &e) {
    return Fail("E_DLOPEN", ThrownText(lib, Hook::kDlopen, e.what()) + " (a static constructor threw); fix the plugin");
  } catch (...) {
    return Fail("E_DLOPEN", ThrownText(lib, Hook::kDlopen, "unknown exception") + " (a static constructor threw); fix the plugin");
  }
  if (handle == nullptr) {
    std::string err = DlError();
    const bool undefined = err.find("undefined symbol") != std::string::npos;
    return Fail(undefined ? "E_UNDEFINED_SYMBOL" : "E_DLOPEN",
                "dlopen(" + path + ") failed: " + err +
                    (undefined ? "; link the plugin with every library it uses, and nothing of the host"
                               : "; run `streamplug check` on the file for the reason"));
  }
  lib->handle = handle;
  dlerror();
  auto entry = reinterpret_cast<sp_entry_fn>(dlsym(handle, STREAMPLUG_ENTRY_NAME));
  if (entry == nullptr) {
    return Fail("E_NO_ENTRY", path + ": no exported symbol " STREAMPLUG_ENTRY_NAME
                                     "; a plugin defines it with STREAMPLUG_PLUGIN() from plugin.h and exports it");
  }
  const sp_plugin_descriptor *d = nullptr;
  try {
    JournalScope scope(lib->journal_id, Hook::kDescribe, 0);
    d = entry();
  } catch (...) {
    return Fail("E_BAD_DESCRIPTOR", ThrownText(lib, Hook::kDescribe, "from " STREAMPLUG_ENTRY_NAME "()") + "; fix the plugin");
  }
  Failure f = CheckDescriptor(path, d);
  if (f.failed()) return f;
  lib->desc = d;
  lib->name = d->name;

  struct link_map *map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) {
    return Fail("E_DLOPEN", path + ": dlinfo failed: " + DlError());
  }
  NoteSearch search{map->l_addr, map->l_name};
  dl_iterate_phdr(FindNote, &search);
  if (!search.found) {
    return Fail("E_NO_MANIFEST", path + ": no " STREAMPLUG_NOTE_OWNER " manifest note in a PT_NOTE segment; build the "
                                        "plugin with STREAMPLUG_PLUGIN() and keep the .note.streamplug section when linking");
  }
  lib->manifest = search.text;
  ExecRange range{map->l_addr, map->l_name};
  dl_iterate_phdr(FindExecRange, &range);
  JournalNamePlugin(lib->journal_id, d->name, map->l_addr, range.lo, range.hi);
  f = CheckManifest(path, d, search.text);
  if (!f.failed()) {
    std::lock_guard<std::mutex> lock(registry_mutex);
    registry[path] = lib->weak_from_this();
  }
  return f;
}

Failure InitLibrary(Library *lib) {
  lib->plugin_ctx.lib = lib;
  if (lib->desc->init == nullptr) {
    lib->initialized = true;
    return {};
  }
  const sp_status status =
      RunHook(lib, &lib->plugin_ctx, Hook::kInit, [&]() { return lib->desc->init(HostApi(), &lib->plugin_ctx, &lib->plugin_data); });
  if (status != SP_OK) {
    const std::string reason = lib->plugin_ctx.error_set ? lib->plugin_ctx.error : "no reason given (set_error was not called)";
    return Fail("E_INIT_FAILED", lib->path + ": plugin " + lib->name + " refused to start: " + reason +
                                     "; fix what the plugin reports and load it again");
  }
  lib->initialized = true;
  return {};
}

bool CloseLibrary(Library *lib, size_t *closed_instances) {
  size_t closed = 0;
  if (lib->open()) {
    // Copy: CloseContext erases from `live`.
    std::vector<sp_ctx *> live(lib->live.begin(), lib->live.end());
    for (sp_ctx *ctx : live) {
      CloseContext(ctx);
      ++closed;
    }
    if (lib->initialized && lib->desc->deinit != nullptr) {
      RunVoidHook(lib, nullptr, Hook::kDeinit, [&]() { lib->desc->deinit(lib->plugin_data); });
    }
    lib->initialized = false;
    {
      std::lock_guard<std::mutex> lock(registry_mutex);
      auto it = registry.find(lib->path);
      if (it != registry.end() && it->second.lock().get() == lib) registry.erase(it);
    }
    // A source/sink thread still runs (a close hook abandoned after its timeout): unmapping the
    // code under it would crash the process, so the library stays mapped (reported).
    if (lib->io_busy.load() == 0) {
      dlclose(lib->handle);
      if (!IsMapped(lib->path)) JournalForgetRange(lib->journal_id);  // its addresses may be reused
    }
    lib->handle = nullptr;
    lib->desc = nullptr;
  }
  if (closed_instances != nullptr) *closed_instances = closed;
  return !lib->path.empty() && IsMapped(lib->path);
}

}  // namespace streamplug
