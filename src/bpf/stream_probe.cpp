#include "bpf/stream_probe.hpp"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "bpf/bpf_syscall.hpp"
#include "bpf/libbpf_util.hpp"
#include "stream_probe.skel.h"

namespace scxkit::bpf {

Result<std::string> probe_stream_print() {
  stream_probe* skel = stream_probe__open();
  if (skel == nullptr) return libbpf_error("opening the stream_probe BPF object", errno);
  struct Destroy {
    stream_probe* s;
    ~Destroy() { stream_probe__destroy(s); }
  } destroy{skel};
  if (const int err = stream_probe__load(skel); err != 0) {
    return make_error(Errc::unsupported,
                      fmt::format("a program printing to a BPF stream did not load ({}): "
                                  "this kernel has no BPF stream printing (Linux 6.17+)",
                                  std::strerror(-err)));
  }
  auto ret = test_run(skel->progs.stream_probe, nullptr, 0);
  if (!ret) return tl::unexpected(ret.error());
  if (*ret == -EOPNOTSUPP) {
    return make_error(Errc::unsupported,
                      "this kernel has none of the stream printing kfuncs (bpf_stream_vprintk, "
                      "Linux 6.17+; bpf_stream_vprintk_impl on 6.18)");
  }
  if (*ret == -ENOMEM) {
    return make_error(Errc::no_space,
                      "the stream printing kfunc returned -ENOMEM: this kernel could not allocate "
                      "memory for the message");
  }
  if (*ret != 0) return os_error("the stream printing kfunc", -*ret);
  return read_prog_stream(bpf_program__fd(skel->progs.stream_probe), ProgStream::out);
}

}  // namespace scxkit::bpf
