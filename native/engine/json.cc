// Strict recursive-descent JSON parser with a depth bound, plus string escaping for writers (see json.h).
#include "json.h"

#include <cerrno>
#include <cstdlib>
#include <unordered_set>

namespace sft {
namespace {

// Length of the UTF-8 sequence starting at p (0 when malformed), checking overlongs/surrogates/range.
size_t utf8_sequence_length(const unsigned char* p, size_t avail) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
  else return 0;
  if (avail < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;  // overlong
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Parser {
 public:
  Parser(const char* data, size_t size, int max_depth)
      : p_(reinterpret_cast<const unsigned char*>(data)), n_(size), max_depth_(max_depth) {}

  JsonValue document() {
    skip_ws();
    JsonValue v = value(0);
    skip_ws();
    if (i_ != n_) fail("unexpected data after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw JsonError(what + " at byte " + std::to_string(i_));
  }

  void skip_ws() {
    while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r')) ++i_;
  }

  bool consume(char c) {
    if (i_ < n_ && p_[i_] == static_cast<unsigned char>(c)) {
      ++i_;
      return true;
    }
    return false;
  }

  void expect_literal(const char* lit) {
    for (const char* c = lit; *c; ++c) {
      if (i_ >= n_ || p_[i_] != static_cast<unsigned char>(*c)) fail(std::string("invalid literal (expected ") + lit + ")");
      ++i_;
    }
  }

  JsonValue value(int depth) {
    if (i_ >= n_) fail("unexpected end of JSON");
    JsonValue v;
    switch (p_[i_]) {
      case '{': object(v, depth + 1); break;
      case '[': array(v, depth + 1); break;
      case '"': v.kind = JsonValue::Kind::String; v.string = string(); break;
      case 't': expect_literal("true"); v.kind = JsonValue::Kind::Bool; v.boolean = true; break;
      case 'f': expect_literal("false"); v.kind = JsonValue::Kind::Bool; v.boolean = false; break;
      case 'n': expect_literal("null"); v.kind = JsonValue::Kind::Null; break;
      default:
        if (p_[i_] == '-' || (p_[i_] >= '0' && p_[i_] <= '9')) {
          number(v);
        } else {
          fail("unexpected character");
        }
    }
    return v;
  }

  void object(JsonValue& v, int depth) {
    if (depth > max_depth_) fail("JSON nested deeper than " + std::to_string(max_depth_) + " levels");
    v.kind = JsonValue::Kind::Object;
    ++i_;  // '{'
    skip_ws();
    if (consume('}')) return;
    std::unordered_set<std::string> seen;
    for (;;) {
      skip_ws();
      if (i_ >= n_ || p_[i_] != '"') fail("expected a string key");
      size_t key_at = i_;
      std::string key = string();
      if (!seen.insert(key).second) {
        i_ = key_at;
        fail("duplicate key \"" + key + "\"");
      }
      skip_ws();
      if (!consume(':')) fail("expected ':'");
      skip_ws();
      JsonValue child = value(depth);
      v.object.emplace_back(std::move(key), std::move(child));
      skip_ws();
      if (consume(',')) continue;
      if (consume('}')) return;
      fail("expected ',' or '}'");
    }
  }

  void array(JsonValue& v, int depth) {
    if (depth > max_depth_) fail("JSON nested deeper than " + std::to_string(max_depth_) + " levels");
    v.kind = JsonValue::Kind::Array;
    ++i_;  // '['
    skip_ws();
    if (consume(']')) return;
    for (;;) {
      skip_ws();
      v.array.push_back(value(depth));
      skip_ws();
      if (consume(',')) continue;
      if (consume(']')) return;
      fail("expected ',' or ']'");
    }
  }

  uint32_t hex4() {
    if (n_ - i_ < 4) fail("truncated \\u escape");
    uint32_t cp = 0;
    for (int k = 0; k < 4; ++k) {
      unsigned char c = p_[i_++];
      cp <<= 4;
      if (c >= '0' && c <= '9') cp |= c - '0';
      else if (c >= 'a' && c <= 'f') cp |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') cp |= c - 'A' + 10;
      else fail("invalid \\u escape");
    }
    return cp;
  }

  std::string string() {
    ++i_;  // opening quote
    std::string out;
    for (;;) {
      if (i_ >= n_) fail("unterminated string");
      unsigned char c = p_[i_];
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) fail("control character in string");
      if (c == '\\') {
        ++i_;
        if (i_ >= n_) fail("unterminated escape");
        unsigned char e = p_[i_++];
        switch (e) {
          case '"': out.push_back('"'); break;
          case '\\': out.push_back('\\'); break;
          case '/': out.push_back('/'); break;
          case 'b': out.push_back('\b'); break;
          case 'f': out.push_back('\f'); break;
          case 'n': out.push_back('\n'); break;
          case 'r': out.push_back('\r'); break;
          case 't': out.push_back('\t'); break;
          case 'u': {
            uint32_t cp = hex4();
            if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (!(n_ - i_ >= 2 && p_[i_] == '\\' && p_[i_ + 1] == 'u')) fail("lone high surrogate in \\u escape");
              i_ += 2;
              uint32_t lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) fail("invalid surrogate pair in \\u escape");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            append_utf8(out, cp);
            break;
          }
          default: fail("invalid escape");
        }
        continue;
      }
      size_t len = utf8_sequence_length(p_ + i_, n_ - i_);
      if (len == 0) fail("invalid UTF-8 in string");
      out.append(reinterpret_cast<const char*>(p_ + i_), len);
      i_ += len;
    }
  }

  void number(JsonValue& v) {
    size_t start = i_;
    bool integral = true;
    consume('-');
    if (i_ >= n_) fail("truncated number");
    if (p_[i_] == '0') {
      ++i_;
    } else if (p_[i_] >= '1' && p_[i_] <= '9') {
      while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') ++i_;
    } else {
      fail("invalid number");
    }
    if (i_ < n_ && p_[i_] == '.') {
      integral = false;
      ++i_;
      if (i_ >= n_ || !(p_[i_] >= '0' && p_[i_] <= '9')) fail("invalid number (digit expected after '.')");
      while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') ++i_;
    }
    if (i_ < n_ && (p_[i_] == 'e' || p_[i_] == 'E')) {
      integral = false;
      ++i_;
      if (i_ < n_ && (p_[i_] == '+' || p_[i_] == '-')) ++i_;
      if (i_ >= n_ || !(p_[i_] >= '0' && p_[i_] <= '9')) fail("invalid number (digit expected in exponent)");
      while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') ++i_;
    }
    std::string text(reinterpret_cast<const char*>(p_ + start), i_ - start);
    v.kind = JsonValue::Kind::Number;
    v.number = std::strtod(text.c_str(), nullptr);
    if (integral) {
      errno = 0;
      long long x = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == 0) {
        v.is_integer = true;
        v.integer = static_cast<int64_t>(x);
      }
    }
  }

  const unsigned char* p_;
  size_t n_;
  size_t i_ = 0;
  int max_depth_;
};

}  // namespace

const JsonValue* JsonValue::find(const std::string& key) const {
  if (kind != Kind::Object) return nullptr;
  for (const auto& kv : object)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const char* json_kind_name(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::Null: return "null";
    case JsonValue::Kind::Bool: return "a boolean";
    case JsonValue::Kind::Number: return "a number";
    case JsonValue::Kind::String: return "a string";
    case JsonValue::Kind::Array: return "an array";
    case JsonValue::Kind::Object: return "an object";
  }
  return "?";
}

JsonValue parse_json(const char* data, size_t size, int max_depth) { return Parser(data, size, max_depth).document(); }

bool is_valid_utf8(const char* data, size_t size) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(data);
  size_t i = 0;
  while (i < size) {
    size_t len = utf8_sequence_length(p + i, size - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

void append_json_string(std::string& out, const std::string& s) {
  constexpr const char* hex = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace sft
