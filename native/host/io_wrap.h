// JS classes for native sources and sinks (io_wrap.cc), registered by addon.cc.
#ifndef STREAMPLUG_HOST_IO_WRAP_H
#define STREAMPLUG_HOST_IO_WRAP_H

#include <napi.h>

namespace streamplug {

// Adds NativeSource, NativeSink, describeIo, validateIo, canonicalJson and ioLive to the addon's exports.
void InitIo(Napi::Env env, Napi::Object exports);

}  // namespace streamplug

#endif
