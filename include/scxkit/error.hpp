// Errors returned by scxkit. Library code never aborts on bad input: every
// fallible call returns a Result<T>, and every Error carries a message that
// says what was wrong and what to do about it.
#pragma once

#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace scxkit {

enum class Errc {
  invalid_argument,  // the caller passed something malformed
  out_of_range,      // a value lies outside what the object covers
  too_big,           // a size exceeds a hard limit (the kernel's E2BIG)
  address_in_use,    // a fixed address overlaps an existing mapping
  no_space,          // nothing free fits the request
  busy,              // the object is locked or the range is taken (EBUSY/EAGAIN)
  not_found,         // a named object does not exist
  already_exists,    // a named object exists already
  unsupported,       // the host lacks what the call needs
  system_error,      // an OS call failed; Error::sys_errno holds errno
};

std::string_view to_string(Errc code);

struct Error {
  Errc code;
  std::string message;
  int sys_errno = 0;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> make_error(Errc code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message), 0});
}

// An error for a failed OS call: "<what>: <strerror(err)>".
tl::unexpected<Error> os_error(std::string_view what, int err);

}  // namespace scxkit
