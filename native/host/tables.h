// Walking a plugin's definition tables by the entry size the plugin declares (plugin.h,
// EVOLUTION / ARRAYS): the stride of a table is the `size` of its entry 0, never the host's
// sizeof, so a plugin built with a header whose entries grew loads here and its extra fields are
// ignored. Free of Node: the isolated worker compiles it too.
#ifndef STREAMPLUG_HOST_TABLES_H
#define STREAMPLUG_HOST_TABLES_H

#include <streamplug/plugin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace streamplug {

// Entry `i` of a table whose entries are `stride` bytes apart. The caller validated the stride
// (TableStride) and the count; only the fields a 1.x minimum entry holds are read through it.
template <typename T>
inline const T &TableEntry(const T *base, size_t stride, size_t i) {
  return *reinterpret_cast<const T *>(reinterpret_cast<const char *>(base) + i * stride);
}

// The `size` of the entry at `at`: always the first field, read before any other.
inline uint32_t EntrySize(const void *at) {
  uint32_t size;
  std::memcpy(&size, at, sizeof size);
  return size;
}

// Descriptor size a plugin declaring contract 1.`minor` must at least have.
inline size_t DescriptorMinimum(unsigned minor) {
  if (minor == 0) return SP_DESCRIPTOR_SIZE_1_0;
  if (minor == 1) return SP_DESCRIPTOR_SIZE_1_1;
  if (minor == 2) return SP_DESCRIPTOR_SIZE_1_2;
  return SP_DESCRIPTOR_SIZE_1_3;
}

// The header minor a plugin was built with: recorded from 1.2 on, told by the descriptor's size
// before that.
// Contract 1.3 state versioning: read only when the descriptor has the whole 1.3 block.
inline uint32_t StateVersion(const sp_plugin_descriptor *d) {
  return d != nullptr && SP_HAS_FIELD(d, sp_plugin_descriptor, migrate_state) ? d->state_version : 0;
}
inline sp_status (*MigrateState(const sp_plugin_descriptor *d))(sp_ctx *, const char *, uint32_t, uint32_t) {
  return d != nullptr && SP_HAS_FIELD(d, sp_plugin_descriptor, migrate_state) ? d->migrate_state : nullptr;
}

// The state key under which an exported state records its plugin's state_version (when not 0).
// Keys with this prefix belong to the host: state_put refuses them.
constexpr const char *kStateVersionKey = "@streamplug.state_version";
constexpr const char *kReservedStatePrefix = "@streamplug.";

inline unsigned HeaderMinor(const sp_plugin_descriptor *d) {
  if (SP_HAS_FIELD(d, sp_plugin_descriptor, header_minor)) return d->header_minor;
  return d->size >= SP_DESCRIPTOR_SIZE_1_1 ? 1u : 0u;
}

}  // namespace streamplug

#endif
