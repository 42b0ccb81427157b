#include "vm/qemu_args.hpp"

#include <charconv>

#include <fmt/format.h>

#include "vm/initramfs.hpp"

namespace scxkit::vm {

Result<Topology> parse_topology(std::string_view text) {
  unsigned v[3] = {0, 0, 0};
  std::size_t at = 0;
  for (int i = 0; i < 3; ++i) {
    const auto comma = i < 2 ? text.find(',', at) : text.size();
    if (comma == std::string_view::npos) break;
    const auto part = text.substr(at, comma - at);
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v[i]);
    if (ec != std::errc() || end != part.data() + part.size() || part.empty()) v[i] = 0;
    at = comma + 1;
  }
  if (v[0] == 0 || v[1] == 0 || v[2] == 0 || at != text.size() + 1) {
    return make_error(Errc::invalid_argument,
                      fmt::format("topology '{}' is not SOCKETS,CORES,THREADS with each at least 1 "
                                  "(e.g. 2,2,1)",
                                  text));
  }
  if (std::uint64_t{v[0]} * v[1] * v[2] > 255) {
    return make_error(Errc::out_of_range,
                      fmt::format("topology '{}' asks for more than 255 CPUs", text));
  }
  return Topology{v[0], v[1], v[2]};
}

namespace internal {

std::string kernel_cmdline() {
  // no_timer_check: on a loaded host the emulated timer can miss the boot-time
  // IO-APIC check's window, and the kernel panics "IO-APIC + timer doesn't work!".
  // nosoftlockup: a starved emulator stops the guest's clock for seconds; the
  // soft-lockup detector then reports "BUG: soft lockup" (a failed run) and
  // sched_ext kicks the attached scheduler out on it.
  return "console=ttyS0,115200 panic=-1 no_timer_check nosoftlockup printk.devkmsg=on "
         "rdinit=/init";
}

Result<std::vector<std::string>> qemu_argv(const MachineSpec& m) {
  const unsigned cpus = m.topology ? m.topology->cpus() : m.cpus;
  if (cpus == 0 || cpus > 255) {
    return make_error(Errc::out_of_range, fmt::format("{} CPUs: choose between 1 and 255", cpus));
  }
  if (m.memory_mib < 128) {
    return make_error(
        Errc::out_of_range,
        fmt::format("{} MiB of memory is too little to boot: use at least 128", m.memory_mib));
  }
  if (m.numa_nodes == 0 || m.numa_nodes > cpus || cpus % m.numa_nodes != 0) {
    return make_error(
        Errc::invalid_argument,
        fmt::format("{} NUMA nodes cannot split {} CPUs evenly: choose a divisor of the CPU count",
                    m.numa_nodes, cpus));
  }
  if (m.numa_nodes > 1 && m.memory_mib % m.numa_nodes != 0) {
    return make_error(Errc::invalid_argument,
                      fmt::format("{} MiB cannot be split evenly across {} NUMA nodes",
                                  m.memory_mib, m.numa_nodes));
  }
  std::vector<std::string> a = {kQemu,  "-nodefaults", "-no-reboot", "-display",
                                "none", "-monitor",    "none"};
  // Single-threaded TCG: multi-threaded TCG panicked 3 of ~44 boots here (docs/VM.md).
  a.insert(a.end(),
           {"-accel", m.kvm ? "kvm" : "tcg,thread=single", "-cpu", m.kvm ? "host" : "max"});
  a.insert(a.end(), {"-m", fmt::format("{}M", m.memory_mib)});
  if (m.topology) {
    a.insert(a.end(),
             {"-smp", fmt::format("{},sockets={},cores={},threads={}", cpus, m.topology->sockets,
                                  m.topology->cores, m.topology->threads)});
  } else {
    a.insert(a.end(), {"-smp", fmt::format("{}", cpus)});
  }
  if (m.numa_nodes > 1) {
    const unsigned per_cpu = cpus / m.numa_nodes, per_mem = m.memory_mib / m.numa_nodes;
    for (unsigned n = 0; n < m.numa_nodes; ++n) {
      a.insert(a.end(),
               {"-object", fmt::format("memory-backend-ram,id=mem{},size={}M", n, per_mem), "-numa",
                fmt::format("node,nodeid={},cpus={}-{},memdev=mem{}", n, n * per_cpu,
                            (n + 1) * per_cpu - 1, n)});
    }
  }
  a.insert(a.end(), {"-kernel", m.kernel, "-initrd", m.initrd, "-append", m.append});
  a.insert(a.end(), {"-chardev", fmt::format("socket,id=console,fd={}", m.console_fd), "-serial",
                     "chardev:console"});
  a.insert(a.end(), {"-device", "virtio-serial-pci", "-chardev",
                     fmt::format("socket,id=channel,fd={}", m.channel_fd), "-device",
                     fmt::format("virtserialport,chardev=channel,name={}", kControlPort)});
  return a;
}

}  // namespace internal
}  // namespace scxkit::vm
