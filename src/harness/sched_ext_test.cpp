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
