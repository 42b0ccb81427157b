#include "scxkit/sched_ext.hpp"

#include <gtest/gtest.h>

#include "scxkit/cgroup.hpp"

namespace scxkit {
namespace {

TEST(ScxExit, FindsTheLastExitAndItsKindInKernelWords) {
  const std::string log =
      "[ 10.1] sched_ext: BPF scheduler \"simple\" enabled\n"
      "[ 12.0] sched_ext: BPF scheduler \"simple\" disabled (unregistered from user space)\n"
      "[ 20.0] sched_ext: BPF scheduler \"lavd\" disabled (runnable task stall)\n"
      "unrelated line disabled (runtime error)\n";
  auto exit = find_scx_exit(log);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->kind, ScxExitKind::error_stall);
  EXPECT_EQ(exit->reason, "runnable task stall");
  EXPECT_EQ(to_string(exit->kind), "ERROR_STALL");
  EXPECT_EQ(find_scx_exit("sched_ext: BPF scheduler \"x\" disabled (scx_bpf_error)")->kind,
            ScxExitKind::error_bpf);
  EXPECT_EQ(
      find_scx_exit("sched_ext: BPF scheduler \"x\" disabled (BPF scheduler unregistered)")->kind,
      ScxExitKind::unreg);
  EXPECT_FALSE(find_scx_exit("nothing here\n"));
  EXPECT_EQ(static_cast<int>(ScxExitKind::error_stall), 1026);
  EXPECT_EQ(static_cast<int>(ScxExitKind::unreg_kern), 66);
}

TEST(ScxExit, AnErrorExitCarriesTheMessageTheKernelPrintsAfterIt) {
  const std::string log =
      "sched_ext: BPF scheduler \"stall\" disabled (runnable task stall)\n"
      "sched_ext: other: not ours\n"
      "sched_ext: stall: stall_victim[93] failed to run for 2.512s\n"
      "    scx_watchdog_workfn+0x1a/0x30\n";
  auto exit = find_scx_exit(log);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->kind, ScxExitKind::error_stall);
  EXPECT_EQ(exit->message, "stall_victim[93] failed to run for 2.512s");
  // A later exit starts afresh: the earlier message is not carried over.
  auto later =
      find_scx_exit(log + "sched_ext: BPF scheduler \"vtime\" disabled (disabled by sysrq-S)\n");
  ASSERT_TRUE(later);
  EXPECT_EQ(later->kind, ScxExitKind::sysrq);
  EXPECT_EQ(later->message, "");
  EXPECT_EQ(to_string(ScxExitKind::error_rescue), "ERROR_RESCUE");
  EXPECT_EQ(static_cast<int>(ScxExitKind::parent_kill), 69);
}

TEST(ScxExit, ReadsTheExitRecordALoaderPrinted) {
  const std::string log =
      "scx_error: attached\n"
      "scx_error: exit kind 1025 (ERROR_BPF) code 0, kicked out by the kernel; reason: "
      "scx_bpf_error; message: error fixture: two\\nlines\n";
  auto exit = find_loader_exit(log);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->kind, ScxExitKind::error_bpf);
  EXPECT_EQ(exit->reason, "scx_bpf_error");
  EXPECT_EQ(exit->message, "error fixture: two\nlines");
  auto unreg = find_loader_exit(
      "x: exit kind 64 (UNREG) code 0, detached on request; reason: unregistered from user "
      "space; message: ");
  ASSERT_TRUE(unreg);
  EXPECT_EQ(unreg->kind, ScxExitKind::unreg);
  EXPECT_EQ(unreg->message, "");
  EXPECT_FALSE(find_loader_exit("x: exit kind soon; reason: ; message: \n"));
  EXPECT_FALSE(find_loader_exit("sched_ext: BPF scheduler \"x\" disabled (scx_bpf_error)\n"));
}

TEST(ScxExit, FindsTheVerifiersComplaintInALibbpfLog) {
  const std::string classic =
      "libbpf: prog 'reject_enqueue': BPF program load failed: Permission denied\n"
      "libbpf: prog 'reject_enqueue': -- BEGIN PROG LOAD LOG --\n"
      "0: R1=ctx() R10=fp0\n"
      "8: (85) call bpf_map_lookup_elem#1    ; R0=map_value(map=enqueues,ks=4,vs=8)\n"
      "10: (79) r1 = *(u64 *)(r0 +24)\n"
      "invalid access to map value, value_size=8 off=24 size=8\n"
      "R0 min value is outside of the allowed memory range\n"
      "processed 10 insns (limit 1000000)\n"
      "-- END PROG LOAD LOG --\n"
      "libbpf: failed to load object 'reject'\n";
  EXPECT_EQ(find_verifier_lines(classic),
            "invalid access to map value, value_size=8 off=24 size=8\n"
            "R0 min value is outside of the allowed memory range");
  EXPECT_EQ(find_verifier_lines(classic, 1),
            "invalid access to map value, value_size=8 off=24 size=8");
  // Linux 7.3's verifier explains itself at length; its source excerpts
  // ("  >>> 10 | (79) ...") are not instructions it walked.
  const std::string explained =
      "-- BEGIN PROG LOAD LOG --\n"
      "10: (79) r1 = *(u64 *)(r0 +24)\n"
      "invalid access to map value, value_size=8 off=24 size=8\n"
      "\n"
      "Verification failed: Memory Safety: Access outside bounds\n"
      "\n"
      "Instruction context:\n"
      "  >>> 10 | (79) r1 = *(u64 *)(r0 +24)\n"
      "-- END PROG LOAD LOG --\n";
  EXPECT_EQ(find_verifier_lines(explained),
            "invalid access to map value, value_size=8 off=24 size=8\n"
            "Verification failed: Memory Safety: Access outside bounds");
  EXPECT_EQ(find_verifier_lines("libbpf: failed to load object 'x'\n"), "");
}

TEST(CgroupLayout, ReadsV1ControllersAndTheV2TreeFromMountinfo) {
  const std::string mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
      "41 31 0:38 / /tmp/no\\040such rw,relatime shared:5 - cgroup2 cgroup2 rw\n";
  auto layout = parse_cgroup_layout(mountinfo);
  ASSERT_TRUE(layout);
  ASSERT_EQ(layout->mounts.size(), 4u);
  ASSERT_NE(layout->for_controller("cpuset"), nullptr);
  EXPECT_EQ(layout->for_controller("cpuset")->mount_point, "/sys/fs/cgroup/cpuset");
  EXPECT_EQ(layout->for_controller("cpuset")->controllers, std::vector<std::string>{"cpuset"});
  EXPECT_EQ(layout->for_controller("memory"), nullptr);
  ASSERT_NE(layout->v2(), nullptr);
  EXPECT_EQ(layout->v2()->mount_point, "/tmp/no such");  // octal escapes undone
  EXPECT_EQ(layout->summary(), "v1: cpu cpuset; v2 at /tmp/no such (controllers: none)");
}

TEST(CgroupLayout, ThisHostHasACgroupLayout) {
  auto layout = detect_cgroup_layout();
  ASSERT_TRUE(layout) << layout.error().message;
  EXPECT_FALSE(layout->mounts.empty());
  auto missing = detect_cgroup_layout("/no/such/mountinfo");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::not_found);
}

}  // namespace
}  // namespace scxkit
