// Small pieces every libbpf user in scxkit needs: one error translation and
// one way to run a SEC("syscall") program with BPF_PROG_TEST_RUN.
#pragma once

#include <cstddef>
#include <string_view>

#include "scxkit/error.hpp"

struct bpf_program;

namespace scxkit::bpf {

// A libbpf failure (a negative error code, or a positive errno) as an Error:
// EPERM becomes unsupported with "run as root", the rest system_error.
tl::unexpected<Error> libbpf_error(std::string_view what, int err);

// A failed skeleton load: kernels without the arena kfuncs or BTF the program
// needs answer EINVAL/ENOENT/EOPNOTSUPP, reported as unsupported.
tl::unexpected<Error> load_error(std::string_view object, int err);

// Runs `prog` once with `ctx` (size bytes) as its argument block; the kernel
// copies the block back, so results travel in it. Returns the program's
// return value.
Result<int> test_run(const bpf_program* prog, void* ctx, std::size_t size);

}  // namespace scxkit::bpf
