// Small kernel interface files — procfs, sysfs, cgroupfs attributes — read and
// written through one checked, never-blocking path: every read is bounded in
// size and refuses anything that is not a regular file (a FIFO planted where
// an attribute should be must not hang the caller). Internal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "scxkit/error.hpp"

namespace scxkit::internal {

// At most `max_bytes` of a regular file, opened O_NONBLOCK. Not a regular file:
// Errc::invalid_argument naming what it is.
Result<std::string> read_kernel_file(const std::string& path, std::size_t max_bytes = 64 * 1024);
// Writes `text` in one write(2), as kernel attribute files expect.
Result<void> write_kernel_file(const std::string& path, std::string_view text);

}  // namespace scxkit::internal
