// Loading a plugin library: dlopen, the entry point, and every check of the descriptor and the
// manifest note that can be made before a plugin hook runs.
#include "core.h"
#include "manifest.h"

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

// Names are read with a bound: a name without its NUL within the limit is refused, not scanned.
size_t BoundedLength(const char *s) { return strnlen(s, SP_MAX_NAME_LENGTH + 1); }

bool ValidPluginName(const char *s) {
  if (s == nullptr || *s == '\0') return false;
  for (size_t i = 0; i < SP_MAX_NAME_LENGTH && s[i] != '\0'; ++i) {
    if (!std::isalnum(static_cast<unsigned char>(s[i])) && s[i] != '_' && s[i] != '-') return false;
  }
  return true;
}

bool ValidFunctionName(const char *s) {
  if (s == nullptr || *s == '\0' || std::isdigit(static_cast<unsigned char>(*s))) return false;
  for (size_t i = 0; i < SP_MAX_NAME_LENGTH && s[i] != '\0'; ++i) {
    if (!std::isalnum(static_cast<unsigned char>(s[i])) && s[i] != '_') return false;
  }
  return true;
}

// Only for names that passed the checks above (so bounded and NUL-terminated).
std::string Lower(std::string s) {
  for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Failure NameTooLong(const std::string &where, const char *what, const char *name) {
  return Fail("E_LIMIT", where + ": " + what + " '" + std::string(name, SP_MAX_NAME_LENGTH) + "…' is longer than " +
                             std::to_string(SP_MAX_NAME_LENGTH) + " bytes (SP_MAX_NAME_LENGTH in plugin.h); shorten it");
}

bool ValidArgType(uint32_t t) { return t <= SP_TYPE_BYTES; }
bool ValidResultType(uint32_t t) {
  return (t >= SP_TYPE_BOOL && t <= SP_TYPE_BYTES) || t == SP_TYPE_LIKE_ARG0;
}

// Reads the manifest note from the library's PT_NOTE segments as mapped, so what is checked is
// what was loaded, not a file that may have changed since the pre-load check. Same walk as
// src/check/elf.ts (plugin.h, GRAMMAR): PT_NOTE segments only, padding by the segment's p_align.
struct NoteSearch {
  ElfW(Addr) base;
  const char *name;
  const char *desc = nullptr;
  size_t descsz = 0;
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
    const char *start = reinterpret_cast<const char *>(info->dlpi_addr + ph.p_vaddr);
    auto pad = [align, start](const char *at) {
      const size_t off = static_cast<size_t>(at - start);
      return start + ((off + align - 1) & ~(align - 1));
    };
    const char *p = start;
    const char *end = start + ph.p_filesz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const auto *nh = reinterpret_cast<const ElfW(Nhdr) *>(p);
      if (nh->n_namesz > ph.p_filesz || nh->n_descsz > ph.p_filesz) break;
      const char *owner = p + sizeof(ElfW(Nhdr));
      const char *desc = pad(owner + nh->n_namesz);
      if (desc + nh->n_descsz > end) break;
      if (nh->n_type == STREAMPLUG_NOTE_TYPE_MANIFEST && nh->n_namesz == sizeof(STREAMPLUG_NOTE_OWNER) &&
          std::memcmp(owner, STREAMPLUG_NOTE_OWNER, sizeof(STREAMPLUG_NOTE_OWNER)) == 0) {
        search->desc = desc;
        search->descsz = nh->n_descsz;
        search->found = true;
        return 1;
      }
      const char *next = pad(desc + nh->n_descsz);
      if (next <= p) break;
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

// The stride of a table: entry 0's `size`, read before anything else of the entry (EVOLUTION).
Failure TableStride(const std::string &path, const char *table, const void *base, size_t count, size_t minimum,
                    const char *minimum_name, size_t *stride) {
  if (count == 0) return {};
  const size_t size = EntrySize(base);
  if (size < minimum || size > SP_MAX_ENTRY_SIZE || size % alignof(void *) != 0) {
    return Fail("E_BAD_DESCRIPTOR", path + ": " + table + " entry 0 has size " + std::to_string(size) + ", expected a multiple of " +
                                        std::to_string(alignof(void *)) + " from " + std::to_string(minimum) + " (" + minimum_name +
                                        ") to " + std::to_string(SP_MAX_ENTRY_SIZE) +
                                        "; fill `size` with sizeof the struct (the SP_*_DEF macros of plugin.h do)");
  }
  for (size_t i = 1; i < count; ++i) {
    const size_t at = EntrySize(static_cast<const char *>(base) + i * size);
    if (at != size) {
      return Fail("E_BAD_DESCRIPTOR", path + ": " + table + " entry " + std::to_string(i) + " has size " + std::to_string(at) +
                                          ", entry 0 " + std::to_string(size) +
                                          "; every entry of a table carries the same size (build the table with one header)");
    }
  }
  *stride = size;
  return {};
}

Failure CheckFunction(const std::string &path, size_t index, const sp_function_def &f) {
  const std::string where = path + ": function #" + std::to_string(index);
  const std::string fix = "; fix the plugin's sp_function_def table (see SP_FUNCTION_DEF in plugin.h)";
  if (f.name != nullptr && BoundedLength(f.name) > SP_MAX_NAME_LENGTH) return NameTooLong(where, "function name", f.name);
  if (!ValidFunctionName(f.name)) {
    return Fail("E_BAD_DESCRIPTOR", where + ": name is missing or not an SQL identifier ([A-Za-z_][A-Za-z0-9_]*)" + fix);
  }
  const std::string named = where + " (" + f.name + ")";
  if (f.kind != SP_FUNCTION_SCALAR && f.kind != SP_FUNCTION_AGGREGATE) {
    return Fail("E_BAD_DESCRIPTOR", named + ": kind is " + std::to_string(f.kind) +
                                        ", expected SP_FUNCTION_SCALAR (1) or SP_FUNCTION_AGGREGATE (2)" + fix);
  }
  if (f.min_args > SP_MAX_ARGS || f.max_args > SP_MAX_ARGS) {
    return Fail("E_LIMIT", named + ": arity min " + std::to_string(f.min_args) + " max " + std::to_string(f.max_args) +
                               ", more than SP_MAX_ARGS (" + std::to_string(SP_MAX_ARGS) + ") arguments; take fewer arguments");
  }
  if (f.min_args < 0 || (f.max_args != -1 && f.max_args < f.min_args)) {
    return Fail("E_BAD_DESCRIPTOR", named + ": arity min " + std::to_string(f.min_args) + " max " +
                                        std::to_string(f.max_args) + ", expected 0 <= min <= max or max = -1" + fix);
  }
  if (f.max_args != 0) {
    if (f.arg_types == nullptr) {
      return Fail("E_BAD_DESCRIPTOR", named + ": arg_types is NULL but the function takes arguments" + fix);
    }
    const size_t declared = static_cast<size_t>(SP_ARG_TYPES_LENGTH(&f));
    for (size_t i = 0; i < declared; ++i) {
      if (!ValidArgType(f.arg_types[i])) {
        return Fail("E_BAD_DESCRIPTOR", named + ": argument " + std::to_string(i) + " has type " +
                                            std::to_string(f.arg_types[i]) + ", expected an sp_type 0..5" + fix);
      }
    }
  }
  if (!ValidResultType(f.result_type) || (f.result_type == SP_TYPE_LIKE_ARG0 && f.max_args == 0)) {
    return Fail("E_BAD_DESCRIPTOR", named + ": result type " + std::to_string(f.result_type) +
                                        " is not a concrete sp_type 1..5 or SP_TYPE_LIKE_ARG0 (with an argument)" + fix);
  }
  if (f.call == nullptr) {
    return Fail("E_BAD_DESCRIPTOR", named + ": call hook is NULL" + fix);
  }
  return {};
}

Failure CheckIoName(const std::string &where, const char *name, const std::string &fix) {
  if (name != nullptr && BoundedLength(name) > SP_MAX_NAME_LENGTH) return NameTooLong(where, "name", name);
  if (!ValidFunctionName(name)) {
    return Fail("E_BAD_DESCRIPTOR", where + ": name is missing or not [A-Za-z_][A-Za-z0-9_]*" + fix);
  }
  return {};
}

// Sources and sinks (contract 1.1): counts, strides, names, required hooks, and the declared minor.
Failure CheckIo(const std::string &path, Library *lib) {
  const sp_plugin_descriptor *d = lib->desc;
  const size_t ns = NumSources(d), nk = NumSinks(d);
  if (ns == 0 && nk == 0) return {};
  if (d->contract_minor < 1) {
    return Fail("E_BAD_DESCRIPTOR", path + ": the descriptor has sources or sinks but declares contract 1." +
                                        std::to_string(d->contract_minor) +
                                        "; sources and sinks need 1.1: #define STREAMPLUG_PLUGIN_MINOR 1 before including plugin.h");
  }
  if (ns > SP_MAX_SOURCES || nk > SP_MAX_SINKS) {
    return Fail("E_LIMIT", path + ": n_sources " + std::to_string(ns) + " / n_sinks " + std::to_string(nk) + ", more than " +
                               std::to_string(SP_MAX_SOURCES) + " / " + std::to_string(SP_MAX_SINKS) +
                               " (SP_MAX_SOURCES / SP_MAX_SINKS in plugin.h); split the plugin");
  }
  if ((ns > 0 && d->sources == nullptr) || (nk > 0 && d->sinks == nullptr)) {
    return Fail("E_BAD_DESCRIPTOR", path + ": n_sources " + std::to_string(ns) + " / n_sinks " + std::to_string(nk) +
                                        " do not match the sources / sinks tables (NULL); set both in the describe function");
  }
  Failure f = TableStride(path, "sources", d->sources, ns, SP_SOURCE_DEF_SIZE_1_1, "SP_SOURCE_DEF_SIZE_1_1", &lib->source_stride);
  if (f.failed()) return f;
  f = TableStride(path, "sinks", d->sinks, nk, SP_SINK_DEF_SIZE_1_1, "SP_SINK_DEF_SIZE_1_1", &lib->sink_stride);
  if (f.failed()) return f;
  const std::string fix = "; fix the plugin's table (see SP_SOURCE_DEF / SP_SINK_DEF in plugin.h)";
  std::set<std::string> seen;
  for (size_t i = 0; i < ns; ++i) {
    const sp_source_def &s = lib->Source(i);
    std::string where = path + ": source #" + std::to_string(i);
    f = CheckIoName(where, s.name, fix);
    if (f.failed()) return f;
    where += " (" + std::string(s.name) + ")";
    if (s.open == nullptr || s.close == nullptr) return Fail("E_BAD_DESCRIPTOR", where + ": open and close hooks are required" + fix);
    if (!seen.insert("source:" + Lower(s.name)).second) return Fail("E_BAD_DESCRIPTOR", where + ": the name appears twice; rename one");
  }
  for (size_t i = 0; i < nk; ++i) {
    const sp_sink_def &k = lib->Sink(i);
    std::string where = path + ": sink #" + std::to_string(i);
    f = CheckIoName(where, k.name, fix);
    if (f.failed()) return f;
    where += " (" + std::string(k.name) + ")";
    if (k.open == nullptr || k.collect == nullptr || k.close == nullptr) {
      return Fail("E_BAD_DESCRIPTOR", where + ": open, collect and close hooks are required" + fix);
    }
    if (!seen.insert("sink:" + Lower(k.name)).second) return Fail("E_BAD_DESCRIPTOR", where + ": the name appears twice; rename one");
  }
  return {};
}

// Validates the descriptor `lib->desc` and sets the table strides. Reads `size` before any field
// past the first eight bytes, and a field only when `size` covers it.
Failure CheckDescriptor(const std::string &path, Library *lib) {
  const sp_plugin_descriptor *d = lib->desc;
  if (d == nullptr) {
    return Fail("E_BAD_DESCRIPTOR", path + ": " STREAMPLUG_ENTRY_NAME "() returned NULL, expected a descriptor; "
                                    "define the entry point with STREAMPLUG_PLUGIN() from plugin.h");
  }
  const uint32_t size = d->size;
  if (d->magic != STREAMPLUG_MAGIC) {
    return Fail("E_BAD_MAGIC", path + ": descriptor magic is " + Hex(d->magic) + ", expected " + Hex(STREAMPLUG_MAGIC) +
                                   " ('SPLG'); define the entry point with STREAMPLUG_PLUGIN() from plugin.h");
  }
  if (size < offsetof(sp_plugin_descriptor, reserved0)) {
    return Fail("E_BAD_DESCRIPTOR", path + ": descriptor size is " + std::to_string(size) + ", too small to hold the contract version; rebuild the plugin with STREAMPLUG_PLUGIN()");
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
  const size_t minimum = DescriptorMinimum(d->contract_minor);
  if (size < minimum) {
    return Fail("E_BAD_DESCRIPTOR", path + ": descriptor size is " + std::to_string(size) + ", expected at least " +
                                        std::to_string(minimum) + " for a plugin needing contract 1." +
                                        std::to_string(d->contract_minor) + "; rebuild the plugin with STREAMPLUG_PLUGIN()");
  }
  if (d->name != nullptr && BoundedLength(d->name) > SP_MAX_NAME_LENGTH) return NameTooLong(path, "plugin name", d->name);
  if (!ValidPluginName(d->name)) {
    return Fail("E_BAD_DESCRIPTOR", path + ": plugin name is missing or not ^[A-Za-z0-9_-]+$; fix the name given to STREAMPLUG_PLUGIN()");
  }
  if (d->version == nullptr || *d->version == '\0') {
    return Fail("E_BAD_DESCRIPTOR", path + ": plugin version is missing; give STREAMPLUG_PLUGIN() a version string");
  }
  if (d->n_functions > SP_MAX_FUNCTIONS) {
    return Fail("E_LIMIT", path + ": n_functions is " + std::to_string(d->n_functions) + ", more than " +
                               std::to_string(SP_MAX_FUNCTIONS) + " (SP_MAX_FUNCTIONS in plugin.h); split the plugin");
  }
  if (d->n_functions > 0 && d->functions == nullptr) {
    return Fail("E_BAD_DESCRIPTOR", path + ": n_functions is " + std::to_string(d->n_functions) +
                                        " but functions is NULL; set both in the describe function");
  }
  Failure f = TableStride(path, "functions", d->functions, d->n_functions, SP_FUNCTION_DEF_SIZE_1_0,
                          "SP_FUNCTION_DEF_SIZE_1_0", &lib->function_stride);
  if (f.failed()) return f;
  std::set<std::string> seen;
  for (size_t i = 0; i < d->n_functions; ++i) {
    const sp_function_def &fn = lib->Function(i);
    f = CheckFunction(path, i, fn);
    if (f.failed()) return f;
    if (!seen.insert(Lower(fn.name)).second) {
      return Fail("E_BAD_DESCRIPTOR", path + ": function name " + fn.name +
                                          " appears twice (names are case-insensitive); rename one");
    }
  }
  return CheckIo(path, lib);
}

std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<Library>> registry;  // by path: open libraries

Failure CheckManifest(const std::string &path, const Library *lib, const char *desc, size_t descsz) {
  const sp_plugin_descriptor *d = lib->desc;
  ParsedManifest parsed = ParseManifestText(desc, descsz);
  if (!parsed.ok()) {
    return Fail("E_BAD_MANIFEST", path + ": the manifest note is unreadable: " + parsed.error +
                                      "; rebuild it with STREAMPLUG_PLUGIN() from plugin.h (see GRAMMAR there)");
  }
  auto &m = parsed.fields;
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
  if (m.count("header") != 0 && SP_HAS_FIELD(d, sp_plugin_descriptor, header_minor)) {
    const std::string header = std::to_string(d->contract_major) + "." + std::to_string(d->header_minor);
    if (m["header"] != header) {
      return Fail("E_MANIFEST_MISMATCH", path + ": manifest note says header '" + m["header"] + "', the descriptor " + header +
                                             "; build both from one STREAMPLUG_PLUGIN() line");
    }
  }
  std::set<std::string> declared = SplitList(m["extensions"]);
  std::set<std::string> actual;
  for (size_t i = 0; i < d->n_functions; ++i) actual.insert(std::string("function:") + lib->Function(i).name);
  for (size_t i = 0; i < NumSources(d); ++i) actual.insert(std::string("source:") + lib->Source(i).name);
  for (size_t i = 0; i < NumSinks(d); ++i) actual.insert(std::string("sink:") + lib->Sink(i).name);
  if (declared != actual) {
    return Fail("E_MANIFEST_MISMATCH", path + ": manifest note declares extensions " + JoinList(declared) +
                                           ", the descriptor provides " + JoinList(actual) +
                                           "; make the EXTENSIONS argument of STREAMPLUG_PLUGIN() list exactly the functions, sources and sinks tables");
  }
  return {};
}

// Whether `addr` lies in an executable PT_LOAD segment of the object loaded at `base`.
struct SegmentSearch {
  ElfW(Addr) base;
  ElfW(Addr) addr;
  bool executable = false;
  bool found = false;
};

int FindSegment(struct dl_phdr_info *info, size_t, void *data) {
  auto *search = static_cast<SegmentSearch *>(data);
  if (info->dlpi_addr != search->base) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const ElfW(Addr) from = info->dlpi_addr + ph.p_vaddr;
    if (search->addr >= from && search->addr < from + ph.p_memsz) {
      search->found = true;
      search->executable = (ph.p_flags & PF_X) != 0;
      return 1;
    }
  }
  return 0;
}

// A symbol that is not code (a data object, or code outside an executable segment) crashes the
// host when called: refuse it before the call.
Failure CheckEntry(const std::string &path, void *entry, const struct link_map *map) {
  Dl_info info;
  void *extra = nullptr;
  if (dladdr1(entry, &info, &extra, RTLD_DL_SYMENT) != 0 && extra != nullptr) {
    const auto *sym = static_cast<const ElfW(Sym) *>(extra);
    const int type = ELF64_ST_TYPE(sym->st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC) {
      return Fail("E_NO_ENTRY", path + ": " STREAMPLUG_ENTRY_NAME " is " + std::string(type == STT_OBJECT ? "a data object (STT_OBJECT)" : "not a function (symbol type " + std::to_string(type) + ")") +
                                    ", expected a function; define it with STREAMPLUG_PLUGIN() from plugin.h");
    }
  }
  SegmentSearch seg{map->l_addr, reinterpret_cast<ElfW(Addr)>(entry)};
  dl_iterate_phdr(FindSegment, &seg);
  if (!seg.found || !seg.executable) {
    return Fail("E_NO_ENTRY", path + ": " STREAMPLUG_ENTRY_NAME " lies " + std::string(seg.found ? "in a segment that is not executable" : "outside the library's segments") +
                                  ", expected a function in executable code; define it with STREAMPLUG_PLUGIN() from plugin.h");
  }
  return {};
}

// Why a library stays mapped after dlclose, as far as its dynamic section tells.
std::string WhyStillMapped(const std::string &path) {
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) return "";
  struct link_map *map = nullptr;
  std::string why;
  if (dlinfo(h, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_ld != nullptr) {
    for (const ElfW(Dyn) *dyn = map->l_ld; dyn->d_tag != DT_NULL; ++dyn) {
      if (dyn->d_tag == DT_FLAGS_1 && (dyn->d_un.d_val & DF_1_NODELETE) != 0) {
        why = "it was linked with -z nodelete (DF_1_NODELETE), which forbids unloading: relink without it";
      }
    }
  }
  dlclose(h);
  return why.empty() ? "a library with STB_GNU_UNIQUE symbols is never unmapped: build with -fvisibility=hidden -fno-gnu-unique" : why;
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
    return Fail("E_PLUGIN_LOADED", path + " is still mapped in this process from an earlier load (" + WhyStillMapped(path) +
                                          "); install the new version under a new file name or restart the host");
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
  struct link_map *map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) {
    return Fail("E_DLOPEN", path + ": dlinfo failed: " + DlError());
  }
  Failure f = CheckEntry(path, reinterpret_cast<void *>(entry), map);
  if (f.failed()) return f;
  try {
    JournalScope scope(lib->journal_id, Hook::kDescribe, 0);
    lib->desc = entry();
  } catch (...) {
    lib->desc = nullptr;
    return Fail("E_BAD_DESCRIPTOR", ThrownText(lib, Hook::kDescribe, "from " STREAMPLUG_ENTRY_NAME "()") + "; fix the plugin");
  }
  f = CheckDescriptor(path, lib);
  if (f.failed()) {
    lib->desc = nullptr;
    return f;
  }
  const sp_plugin_descriptor *d = lib->desc;
  lib->name = d->name;

  NoteSearch search{map->l_addr, map->l_name};
  dl_iterate_phdr(FindNote, &search);
  if (!search.found) {
    return Fail("E_NO_MANIFEST", path + ": no " STREAMPLUG_NOTE_OWNER " manifest note in a PT_NOTE segment; build the "
                                        "plugin with STREAMPLUG_PLUGIN() and keep the .note.streamplug section when linking");
  }
  lib->manifest.assign(search.desc, strnlen(search.desc, search.descsz));
  ExecRange range{map->l_addr, map->l_name};
  dl_iterate_phdr(FindExecRange, &range);
  JournalNamePlugin(lib->journal_id, d->name, map->l_addr, range.lo, range.hi);
  f = CheckManifest(path, lib, search.desc, search.descsz);
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
