#include "scxkit/error.hpp"

#include <cstring>
#include <string>

namespace scxkit {

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::invalid_argument:
      return "invalid argument";
    case Errc::out_of_range:
      return "out of range";
    case Errc::too_big:
      return "too big";
    case Errc::address_in_use:
      return "address in use";
    case Errc::no_space:
      return "no space";
    case Errc::busy:
      return "busy";
    case Errc::not_found:
      return "not found";
    case Errc::already_exists:
      return "already exists";
    case Errc::unsupported:
      return "unsupported";
    case Errc::system_error:
      return "system error";
  }
  return "unknown error";
}

tl::unexpected<Error> os_error(std::string_view what, int err) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return tl::unexpected<Error>(Error{Errc::system_error, std::move(msg), err});
}

}  // namespace scxkit
