// Implements errors.h: maps C++ / libtorch exceptions to stable codes and messages.
#include "errors.h"

#include <c10/util/Exception.h>

namespace sft {

void throw_bad_argument(const std::string& message) { throw Error(kCodeBadArgument, message); }
void throw_io(const std::string& message) { throw Error(kCodeIo, message); }
void throw_unsupported(const std::string& message) { throw Error(kCodeUnsupported, message); }

ErrorInfo describe_current_exception() {
  try {
    throw;
  } catch (const Error& e) {
    return {e.code(), e.what()};
  } catch (const c10::IndexError& e) {
    return {kCodeBadArgument, e.what_without_backtrace()};
  } catch (const c10::ValueError& e) {
    return {kCodeBadArgument, e.what_without_backtrace()};
  } catch (const c10::TypeError& e) {
    return {kCodeBadArgument, e.what_without_backtrace()};
  } catch (const c10::Error& e) {
    return {kCodeNative, e.what_without_backtrace()};
  } catch (const std::bad_alloc&) {
    return {kCodeNative, "out of memory"};
  } catch (const std::exception& e) {
    return {kCodeNative, e.what()};
  } catch (...) {
    return {kCodeNative, "unknown native exception"};
  }
}

}  // namespace sft
