// A small, strict JSON reader/writer for file headers the engine parses itself (safetensors headers, HF
// model.safetensors.index.json). RFC 8259 only: no comments, no trailing commas, no NaN, valid UTF-8,
// duplicate object keys rejected, nesting depth bounded (a hostile file cannot exhaust the stack).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sft {

// Thrown by parse_json; the message says what is wrong and at which byte offset. Callers add the file name.
class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JsonValue {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;         // every number
  bool is_integer = false;   // written without fraction/exponent and fits in int64
  int64_t integer = 0;       // valid when is_integer
  std::string string;
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;  // in file order, keys unique

  bool is_object() const { return kind == Kind::Object; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_string() const { return kind == Kind::String; }
  bool is_null() const { return kind == Kind::Null; }
  // nullptr when absent (or when this is not an object).
  const JsonValue* find(const std::string& key) const;
};

const char* json_kind_name(JsonValue::Kind kind);

// Parses a whole document (surrounding whitespace allowed). max_depth bounds array/object nesting.
JsonValue parse_json(const char* data, size_t size, int max_depth = 64);

// True when the bytes are well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(const char* data, size_t size);

// Appends s as a JSON string literal (quotes included; control characters escaped; UTF-8 kept as is).
void append_json_string(std::string& out, const std::string& s);

}  // namespace sft
