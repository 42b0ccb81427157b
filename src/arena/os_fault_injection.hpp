// Test seam of the OS layer: makes the next calls of one OS primitive fail
// with a given errno, so tests can prove what the arena does when the OS says
// no (a hole punch that fails, a file that cannot grow). Tests only; nothing
// else includes this header.
#pragma once

namespace scxkit::internal::os::testing {

enum class Call { punch_hole, instantiate, count };

// The next `times` calls of `c` (in any thread of this process) fail with
// `err` without reaching the kernel; times = 0 stops it.
void fail_next(Call c, int err, int times) noexcept;

}  // namespace scxkit::internal::os::testing
