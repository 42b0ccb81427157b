// scx_fifo: loads the fifo scheduler and attaches it through a struct_ops
// link (a killed loader closes the link, and the kernel detaches it), holds
// it until SIGINT/SIGTERM or until the kernel kicks it out, then detaches
// and prints the kernel's exit record.
#include <bpf/libbpf.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "fifo.h"
#include "fifo.skel.h"

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

}  // namespace

int main() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  fifo* skel = fifo__open_and_load();
  if (skel == nullptr) {
    std::fprintf(stderr, "scx_fifo: loading the BPF scheduler failed: %s\n", std::strerror(errno));
    return 1;
  }
  bpf_link* link = bpf_map__attach_struct_ops(skel->maps.fifo_ops);
  if (link == nullptr) {
    std::fprintf(stderr, "scx_fifo: attaching failed: %s (is another scheduler attached?)\n",
                 std::strerror(errno));
    fifo__destroy(skel);
    return 1;
  }
  std::printf("scx_fifo: attached\n");
  std::fflush(stdout);
  auto kind = [&] {
    return std::atomic_ref<unsigned int>(skel->bss->exit_record.kind)
        .load(std::memory_order_acquire);
  };
  while (g_stop == 0 && kind() == 0) usleep(50 * 1000);
  const bool kicked_out = kind() != 0;
  bpf_link__destroy(link);  // ops.exit has run once this returns
  const auto& r = skel->bss->exit_record;
  std::printf("scx_fifo: exit kind %u (%s) code %lld reason '%s' message '%s'\n", kind(),
              kicked_out ? "kicked out by the kernel" : "detached on request", r.exit_code,
              r.reason, r.msg);
  fifo__destroy(skel);
  return kicked_out ? 2 : 0;
}
