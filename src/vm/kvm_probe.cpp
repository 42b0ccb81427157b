#include "vm/kvm_probe.hpp"

#include <fcntl.h>

#include <fstream>

#include <fmt/format.h>

#include "vm/kernel_cache.hpp"

namespace scxkit::vm::internal {

bool kvm_boots(const RunOptions& options) {
  {
    Fd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (kvm.get() < 0) return false;
  }
  std::string boot_id;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot_id;
  auto root = cache_root(options.cache_dir);
  const std::string key = fmt::format("{} {}", boot_id, options.kernel.vmlinuz);
  const std::string verdict_file = root ? *root + "/kvm-probe" : "";
  if (!verdict_file.empty()) {
    std::ifstream in(verdict_file);
    std::string line;
    while (std::getline(in, line)) {
      if (line == key + " yes") return true;
      if (line == key + " no") return false;
    }
  }
  RunOptions probe;
  probe.command = {"true"};
  probe.kernel = options.kernel;
  probe.cpus = 1;
  probe.memory_mib = 256;
  probe.accel = Accel::kvm;
  probe.timeout = probe.boot_timeout = std::chrono::seconds(60);
  probe.stdout_fd = probe.stderr_fd = -1;
  probe.cancel_fd = options.cancel_fd;
  if (options.progress) options.progress("probing whether KVM boots this kernel");
  auto r = run(probe);
  const bool ok = r && r->outcome == RunResult::Outcome::exited && r->status == 0;
  if (!verdict_file.empty() && (!r || r->outcome != RunResult::Outcome::cancelled)) {
    std::ofstream(verdict_file, std::ios::app) << key << (ok ? " yes" : " no") << "\n";
  }
  if (options.progress) options.progress(ok ? "KVM works" : "KVM does not boot it here: using TCG");
  return ok;
}

}  // namespace scxkit::vm::internal
