// A small strict JSON reader for instance configs: one object, its top-level keys typed; nested
// objects and arrays are validated and kept as raw text (config_json hands them out).
#include "config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace streamplug {

namespace {

constexpr int kMaxDepth = 64;  // nesting beyond this is refused, not recursed into

class Reader {
 public:
  Reader(const char *text, size_t length) : p_(text), begin_(text), end_(text + length) {}

  bool Object(ConfigObject *out) {
    Ws();
    if (!Eat('{')) return Fail("expected a JSON object ('{')");
    Ws();
    if (Eat('}')) return Tail();
    for (;;) {
      Ws();
      std::string key;
      if (!String(&key)) return false;
      Ws();
      if (!Eat(':')) return Fail("expected ':' after a key");
      ConfigValue v;
      if (!Value(&v, 1)) return false;
      out->keys[key] = std::move(v);
      Ws();
      if (Eat(',')) continue;
      if (Eat('}')) return Tail();
      return Fail("expected ',' or '}'");
    }
  }

  std::string error;

 private:
  bool Tail() {
    Ws();
    return p_ == end_ ? true : Fail("text after the object");
  }
  bool Fail(const char *what) {
    if (error.empty()) error = std::string(what) + " at byte " + std::to_string(p_ - begin_);
    return false;
  }
  void Ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool Eat(char c) {
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  static void Utf8(uint32_t cp, std::string *out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool Hex4(uint32_t *cp) {
    if (end_ - p_ < 4) return Fail("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      const char c = *p_;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else return Fail("bad \\u escape");
    }
    *cp = v;
    return true;
  }
  bool String(std::string *out) {
    if (!Eat('"')) return Fail("expected a string");
    while (p_ < end_) {
      const char c = *p_++;
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return Fail("control character in a string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (p_ >= end_) break;
      const char e = *p_++;
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
            const char *save = p_;
            p_ += 2;
            uint32_t lo = 0;
            if (!Hex4(&lo)) return false;
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else p_ = save;  // a lone high surrogate, then another escape
          }
          Utf8(cp, out);
          break;
        }
        default: return Fail("bad escape in a string");
      }
    }
    return Fail("unterminated string");
  }
  bool Number(ConfigValue *v) {
    const char *start = p_;
    bool plain = true;  // no fraction, no exponent
    Eat('-');
    if (p_ >= end_ || *p_ < '0' || *p_ > '9') return Fail("bad number");
    if (*p_ == '0') ++p_;
    else while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    if (Eat('.')) {
      plain = false;
      if (p_ >= end_ || *p_ < '0' || *p_ > '9') return Fail("bad number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      plain = false;
      ++p_;
      if (!Eat('+')) Eat('-');
      if (p_ >= end_ || *p_ < '0' || *p_ > '9') return Fail("bad number");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    const std::string text(start, p_);
    v->kind = ConfigValue::kNumber;
    v->number = std::strtod(text.c_str(), nullptr);
    if (plain) {
      errno = 0;
      const long long n = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == 0) {
        v->integral = true;
        v->integer = n;
      }
    }
    return true;
  }
  bool Literal(const char *word) {
    const size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return Fail("unexpected character");
    p_ += n;
    return true;
  }
  bool Value(ConfigValue *v, int depth) {
    Ws();
    const char *start = p_;
    if (p_ >= end_) return Fail("expected a value");
    bool ok;
    switch (*p_) {
      case '"':
        v->kind = ConfigValue::kString;
        ok = String(&v->text);
        break;
      case '{':
      case '[': {
        if (depth >= kMaxDepth) return Fail("nested deeper than 64 levels");
        const bool object = *p_ == '{';
        v->kind = object ? ConfigValue::kObject : ConfigValue::kArray;
        ++p_;
        Ws();
        if (Eat(object ? '}' : ']')) {
          ok = true;
          break;
        }
        for (;;) {
          if (object) {
            std::string key;
            Ws();
            if (!String(&key)) return false;
            Ws();
            if (!Eat(':')) return Fail("expected ':' after a key");
          }
          ConfigValue inner;
          if (!Value(&inner, depth + 1)) return false;
          Ws();
          if (Eat(',')) continue;
          if (Eat(object ? '}' : ']')) break;
          return Fail(object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        ok = true;
        break;
      }
      case 't':
        v->kind = ConfigValue::kBool;
        v->boolean = true;
        ok = Literal("true");
        break;
      case 'f':
        v->kind = ConfigValue::kBool;
        ok = Literal("false");
        break;
      case 'n':
        v->kind = ConfigValue::kNull;
        ok = Literal("null");
        break;
      default:
        ok = Number(v);
    }
    if (!ok) return false;
    v->raw.assign(start, p_);
    if (v->kind != ConfigValue::kString) v->text = v->raw;
    return true;
  }

  const char *p_;
  const char *begin_;
  const char *end_;
};

}  // namespace

ConfigObject ParseConfig(const char *text, size_t length) {
  ConfigObject out;
  Reader reader(text != nullptr ? text : "", text != nullptr ? length : 0);
  if (!reader.Object(&out)) {
    out.keys.clear();
    out.error = "the configuration is not one JSON object: " + reader.error;
  }
  return out;
}

const char *ConfigKindName(const ConfigValue &v) {
  switch (v.kind) {
    case ConfigValue::kNull: return "null";
    case ConfigValue::kBool: return "boolean";
    case ConfigValue::kNumber: return "number";
    case ConfigValue::kString: return "string";
    case ConfigValue::kObject: return "object";
    case ConfigValue::kArray: return "array";
  }
  return "?";
}

}  // namespace streamplug
