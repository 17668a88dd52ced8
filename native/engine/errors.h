// Error contract of the engine: an exception type that carries a stable code (the `code` of the JS Error the binding
// makes of it, binding/js_errors.h), and the mapping of any C++ / libtorch exception to {code, message}.
#pragma once

#include <stdexcept>
#include <string>

namespace sft {

// Codes seen by JavaScript (also listed in src/native/errors.ts).
inline constexpr const char* kCodeNative = "SFTKIT_NATIVE";           // libtorch / internal failure
inline constexpr const char* kCodeBadArgument = "SFTKIT_BAD_ARGUMENT"; // caller passed something invalid
inline constexpr const char* kCodeIo = "SFTKIT_IO";                   // files: missing, unreadable, corrupt
inline constexpr const char* kCodeUnsupported = "SFTKIT_UNSUPPORTED"; // valid input we do not implement

// A C++ exception that carries its JS error code.
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

[[noreturn]] void throw_bad_argument(const std::string& message);
[[noreturn]] void throw_io(const std::string& message);
[[noreturn]] void throw_unsupported(const std::string& message);

// Turns the in-flight exception (call from a catch block) into {code, message}.
struct ErrorInfo {
  std::string code;
  std::string message;
};
ErrorInfo describe_current_exception();

}  // namespace sft
