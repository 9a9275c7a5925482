// The manifest note's text grammar (plugin.h, "GRAMMAR"): the host's parser. src/check/manifest.ts
// is the check's; both run test/fixtures/manifest-vectors.json. Free of Node (the worker uses it).
#ifndef STREAMPLUG_HOST_MANIFEST_H
#define STREAMPLUG_HOST_MANIFEST_H

#include <cstddef>
#include <map>
#include <string>

namespace streamplug {

struct ParsedManifest {
  std::map<std::string, std::string> fields;
  std::string error;  // empty when the text follows the grammar; else what is wrong
  bool ok() const { return error.empty(); }
};

// `desc` is the note's description (descsz bytes); the text ends at its first NUL.
ParsedManifest ParseManifestText(const char *desc, size_t descsz);

}  // namespace streamplug

#endif
