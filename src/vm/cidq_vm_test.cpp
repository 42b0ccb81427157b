// The cid-form example scheduler (examples/cidq) against Debian's sched_ext
// kernel: in guests of 1, 2, 4 and 8 vCPUs, with SMT and with 2 NUMA nodes,
// the kernel's cid table (read by the scheduler's ops.init through
// scx_bpf_cpu_to_cid / scx_bpf_cid_to_cpu / scx_bpf_cid_topo) must equal
// scxkit's CidTable for the guest's sysfs topology, and every cmask the kernel
// builds in the scheduler's arena for tasks whose CPUs change must decode,
// with scxkit's Cmask, to exactly those CPUs. One boot per topology, several
// checks per boot.
#include <chrono>
#include <regex>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "vm/vm_test_support.hpp"

namespace scxkit::vm::test_support {
namespace {

class CidqVm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
#ifdef SCXKIT_EXAMPLE_CIDQ
    skip_ = vm_tier_skip_reason();
#else
    skip_ = "the examples were not built (SCXKIT_BUILD_EXAMPLES=OFF)";
#endif
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
  }

  // Boots a guest with `vm_args`, runs each of `runs` (arguments of
  // scx_cidq, or a shell command starting with '!') in turn, and checks
  // what every scx_cidq run printed.
  static void run_in_guest(const std::vector<std::string>& vm_args,
                           const std::vector<std::string>& runs) {
#ifdef SCXKIT_EXAMPLE_CIDQ
    std::string script = "status=0;";
    unsigned checks = 0;
    for (const std::string& run : runs) {
      if (run.starts_with('!')) {
        script += run.substr(1) + " || status=1;";
        continue;
      }
      script += fmt::format("{} {} || status=1;", SCXKIT_EXAMPLE_CIDQ, run);
      ++checks;
    }
    script += "exit $status";
    std::vector<std::string> args = {"vm", "run", "-q", "--add", SCXKIT_EXAMPLE_CIDQ};
    args.insert(args.end(), vm_args.begin(), vm_args.end());
    args.insert(args.end(), {"--", "sh", "-c", script});
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_scxkit(args);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(r.out.find("MISMATCH"), std::string::npos) << r.out;

    // What each run must have printed, and proof that it checked something.
    const std::regex table(R"(cid table: (\d+) cids, (\d+) shards: 0 mismatches)");
    const std::regex affinity(
        R"(affinity: (\d+) tasks, (\d+) cmasks checked \((\d+) enable, (\d+) set_cmask\), (\d+) )"
        R"(read back at their arena address \((\d+) rebuilt since\), 0 records lost: 0 mismatches)");
    const auto count = [&](const std::regex& re) {
      return static_cast<unsigned>(
          std::distance(std::sregex_iterator(r.out.begin(), r.out.end(), re), {}));
    };
    EXPECT_EQ(count(table), checks) << r.out;
    EXPECT_EQ(count(affinity), checks) << r.out;
    EXPECT_EQ(count(std::regex("exit kind 64 \\(UNREG\\) code 0, detached on request")), checks)
        << r.out;
    for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), affinity);
         it != std::sregex_iterator(); ++it) {
      const unsigned tasks = std::stoul((*it)[1]), enable = std::stoul((*it)[3]);
      const unsigned set_cmask = std::stoul((*it)[4]), read_back = std::stoul((*it)[5]);
      EXPECT_EQ(enable, tasks) << "one enable() per task: " << it->str();
      EXPECT_GE(set_cmask, tasks) << it->str();
      EXPECT_GT(read_back, 0u) << "some cmasks are read where the kernel built them";
    }
    // The proof, printed: the kernel's table and the summaries.
    std::string summary;
    for (const std::regex& re : {table, affinity}) {
      for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), re);
           it != std::sregex_iterator(); ++it) {
        summary += "  " + it->str() + "\n";
      }
    }
    fmt::print("vm run {} ({:.1f} s):\n{}", fmt::join(vm_args, " "), seconds, summary);
#else
    (void)vm_args;
    (void)runs;
#endif
  }

  static std::string skip_;
};
std::string CidqVm::skip_;

TEST_F(CidqVm, OneVcpu) {
  run_in_guest({"--cpus", "1"}, {"--check 4"});
}

// CPU 1 offline before the second run: the kernel numbers it in the tail.
TEST_F(CidqVm, TwoVcpusAndOneOffline) {
  run_in_guest({"--cpus", "2"}, {"--check 6 --rounds 3",
                                 "!echo 0 > /sys/devices/system/cpu/cpu1/online", "--check 2"});
}

// 2 cores x 2 threads; one run with a shard per core.
TEST_F(CidqVm, FourVcpusWithSmt) {
  run_in_guest({"--topology", "1,2,2"},
               {"--check 8 --rounds 3", "--shard-size 1 --check 2 --rounds 1"});
}

// 2 sockets x 2 cores x 2 threads on 2 NUMA nodes; shards of 3 cut each LLC.
TEST_F(CidqVm, EightVcpusSmtAndTwoNumaNodes) {
  run_in_guest({"--topology", "2,2,2", "--numa", "2", "--memory", "1024"},
               {"--check 8 --rounds 3", "--shard-size 3 --check 2 --rounds 1"});
}

}  // namespace
}  // namespace scxkit::vm::test_support
