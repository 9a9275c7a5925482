// See manifest.h. Every rule here has its twin in src/check/manifest.ts; change both, and add a
// vector to test/fixtures/manifest-vectors.json.
#include "manifest.h"

#include <streamplug/plugin.h>

#include <cstdio>
#include <cstring>
#include <set>

namespace streamplug {

namespace {

bool ValidUtf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool ValidKey(const std::string &k) {
  if (k.empty() || k[0] < 'a' || k[0] > 'z') return false;
  for (char c : k) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

bool Digits(const std::string &s, size_t from, size_t to) {
  if (to <= from || to - from > 5) return false;
  for (size_t i = from; i < to; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

bool ValidVersionPair(const std::string &v) {
  const size_t dot = v.find('.');
  return dot != std::string::npos && Digits(v, 0, dot) && Digits(v, dot + 1, v.size());
}

// As JSON.stringify(s.slice(0, 40)) in manifest.ts, for ASCII text: both parsers give one message.
std::string Quote(const std::string &s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\b') out += "\\b";
    else if (c == '\f') out += "\\f";
    else if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

ParsedManifest ParseManifestText(const char *desc, size_t descsz) {
  ParsedManifest m;
  const char *nul = static_cast<const char *>(std::memchr(desc, 0, descsz));
  const size_t n = nul != nullptr ? static_cast<size_t>(nul - desc) : descsz;
  if (n > SP_MAX_MANIFEST_BYTES) {
    m.error = "its text is " + std::to_string(n) + " bytes, more than SP_MAX_MANIFEST_BYTES (" +
              std::to_string(SP_MAX_MANIFEST_BYTES) + ")";
    return m;
  }
  const std::string text(desc, n);
  if (!ValidUtf8(reinterpret_cast<const unsigned char *>(text.data()), text.size())) {
    m.error = "its text is not UTF-8";
    return m;
  }
  if (text.find('\r') != std::string::npos) {
    m.error = "it contains a carriage return ('\\r'); lines end with '\\n' alone";
    return m;
  }
  if (text.empty()) {
    m.error = "it is empty";
    return m;
  }
  if (text.back() != '\n') {
    m.error = "its last line does not end with '\\n'";
    return m;
  }
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) {
      m.error = "it has an empty line";
      return m;
    }
    const size_t eq = line.find('=');
    if (eq == std::string::npos || !ValidKey(line.substr(0, eq))) {
      m.error = "line " + Quote(line) + " is not key=value with a key of [a-z][a-z0-9_]*";
      return m;
    }
    const std::string key = line.substr(0, eq);
    if (!m.fields.emplace(key, line.substr(eq + 1)).second) {
      m.error = "key " + key + " appears twice";
      return m;
    }
  }
  auto contract = m.fields.find("contract");
  if (contract == m.fields.end()) {
    m.error = "it has no contract= line";
    return m;
  }
  if (!ValidVersionPair(contract->second)) {
    m.error = "contract=" + Quote(contract->second) + " is not MAJOR.MINOR";
    return m;
  }
  auto header = m.fields.find("header");
  if (header != m.fields.end() && !ValidVersionPair(header->second)) {
    m.error = "header=" + Quote(header->second) + " is not MAJOR.MINOR";
    return m;
  }
  auto name = m.fields.find("name");
  if (name == m.fields.end() || name->second.empty()) {
    m.error = "it has no name= line";
    return m;
  }
  auto ext = m.fields.find("extensions");
  if (ext != m.fields.end() && !ext->second.empty()) {
    const std::string &e = ext->second;
    size_t from = 0;
    while (from <= e.size()) {
      size_t comma = e.find(',', from);
      if (comma == std::string::npos) comma = e.size();
      const std::string item = e.substr(from, comma - from);
      const size_t colon = item.find(':');
      const std::string kind = colon == std::string::npos ? "" : item.substr(0, colon);
      if ((kind != "function" && kind != "source" && kind != "sink") || colon + 1 >= item.size() ||
          item.find(' ') != std::string::npos) {
        m.error = "extensions item " + Quote(item) + " is not function:NAME, source:NAME or sink:NAME";
        return m;
      }
      from = comma + 1;
    }
  }
  return m;
}

}  // namespace streamplug
