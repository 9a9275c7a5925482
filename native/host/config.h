// The typed view of a source's or sink's configuration behind host->config_* (contract 1.3):
// the instance's JSON object read once, its top-level keys kept with their type and value.
#ifndef STREAMPLUG_HOST_CONFIG_H
#define STREAMPLUG_HOST_CONFIG_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace streamplug {

struct ConfigValue {
  enum Kind { kNull, kBool, kNumber, kString, kObject, kArray } kind = kNull;
  bool boolean = false;
  double number = 0;
  bool integral = false;  // a number written without fraction or exponent that fits int64
  int64_t integer = 0;
  std::string text;  // kString: the decoded string; otherwise the raw JSON text of the value
  std::string raw;   // the raw JSON text of the value, whatever its kind (config_json)
};

struct ConfigObject {
  std::unordered_map<std::string, ConfigValue> keys;  // a repeated key: the last one wins, as JSON.parse
  std::string error;  // why the text is not one JSON object; empty when it is
};

// Reads `text` as one JSON object. Never throws; a bad text gives an object with `error` set.
ConfigObject ParseConfig(const char *text, size_t length);

const char *ConfigKindName(const ConfigValue &v);

}  // namespace streamplug

#endif
