#include "bpf/libbpf_util.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace scxkit::bpf {

tl::unexpected<Error> libbpf_error(std::string_view what, int err) {
  err = err < 0 ? -err : err;
  if (err == EPERM) {
    return make_error(Errc::unsupported,
                      fmt::format("{}: not permitted (run as root or with CAP_BPF)", what));
  }
  return os_error(what, err);
}

tl::unexpected<Error> load_error(std::string_view object, int err) {
  err = err < 0 ? -err : err;
  if (err == EINVAL || err == ENOENT || err == EOPNOTSUPP) {
    return make_error(Errc::unsupported,
                      fmt::format("loading the {} BPF programs failed ({}): this kernel lacks BPF "
                                  "arenas or their kfuncs (Linux 6.9+ needed)",
                                  object, std::strerror(err)));
  }
  return libbpf_error(fmt::format("loading the {} BPF programs", object), err);
}

Result<int> test_run(const bpf_program* prog, void* ctx, std::size_t size) {
  // A syscall program takes ctx_in only and copies it back there.
  LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = ctx, .ctx_size_in = static_cast<__u32>(size));
  if (const int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts); err != 0) {
    return libbpf_error(fmt::format("running BPF program {}", bpf_program__name(prog)), err);
  }
  return static_cast<int>(opts.retval);
}

}  // namespace scxkit::bpf
