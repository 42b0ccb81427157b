// Helpers shared by the allocator tests.
#pragma once

#include <stdexcept>

#include "scxkit/error.hpp"

namespace scxkit::testing_support {

// The value of a Result the test cannot go on without; an error ends the test
// (gtest reports the exception with its message).
template <class T>
T created(Result<T> r) {
  if (!r) throw std::runtime_error(r.error().message);
  return std::move(*r);
}

}  // namespace scxkit::testing_support
