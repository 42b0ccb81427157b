#include "vm/qemu_args.hpp"

#include <algorithm>

#include <gtest/gtest.h>

namespace scxkit::vm::internal {
namespace {

std::string after(const std::vector<std::string>& argv, const std::string& flag, int nth = 0) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag && nth-- == 0) return argv[i + 1];
  }
  return "<absent>";
}

TEST(Topology, ParsesSocketsCoresThreads) {
  auto t = parse_topology("2,4,2");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->sockets, 2u);
  EXPECT_EQ(t->cores, 4u);
  EXPECT_EQ(t->threads, 2u);
  EXPECT_EQ(t->cpus(), 16u);
}

TEST(Topology, RejectsWhatIsNotThreePositiveCounts) {
  for (const char* bad :
       {"", "2", "2,2", "2,2,2,2", "0,1,1", "1,,1", "a,1,1", "1,1,1x", "-1,1,1", "16,16,2"}) {
    auto t = parse_topology(bad);
    EXPECT_FALSE(t) << "'" << bad << "' was accepted";
  }
  EXPECT_NE(parse_topology("1,2").error().message.find("SOCKETS,CORES,THREADS"), std::string::npos);
}

MachineSpec machine() {
  MachineSpec m;
  m.kernel = "/k/vmlinuz";
  m.initrd = "/proc/self/fd/5";
  m.append = kernel_cmdline();
  m.console_fd = 3;
  m.channel_fd = 4;
  return m;
}

TEST(QemuArgs, SingleThreadedTcgWithConsoleAndChannelOnInheritedDescriptors) {
  auto a = qemu_argv(machine());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ((*a)[0], kQemu);
  EXPECT_EQ(after(*a, "-accel"), "tcg,thread=single");
  EXPECT_EQ(after(*a, "-smp"), "2");
  EXPECT_EQ(after(*a, "-m"), "1024M");
  EXPECT_EQ(after(*a, "-initrd"), "/proc/self/fd/5");
  EXPECT_EQ(after(*a, "-chardev"), "socket,id=console,fd=3");
  EXPECT_EQ(after(*a, "-chardev", 1), "socket,id=channel,fd=4");
  EXPECT_EQ(after(*a, "-device", 1), "virtserialport,chardev=channel,name=scxkit.ctl");
  EXPECT_NE(std::find(a->begin(), a->end(), "-no-reboot"), a->end()) << "panic=-1 must end QEMU";
  EXPECT_NE(after(*a, "-append").find("panic=-1"), std::string::npos);
  EXPECT_NE(after(*a, "-append").find("no_timer_check"), std::string::npos)
      << "a loaded host makes the IO-APIC timer check panic the guest";
  EXPECT_NE(after(*a, "-append").find("nosoftlockup"), std::string::npos)
      << "a loaded host makes the soft-lockup detector fail runs and kick schedulers out";
}

TEST(QemuArgs, KvmUsesTheHostCpu) {
  auto m = machine();
  m.kvm = true;
  auto a = qemu_argv(m);
  ASSERT_TRUE(a);
  EXPECT_EQ(after(*a, "-accel"), "kvm");
  EXPECT_EQ(after(*a, "-cpu"), "host");
}

TEST(QemuArgs, TopologyAndNumaSplitCpusAndMemoryEvenly) {
  auto m = machine();
  m.topology = Topology{2, 2, 1};
  m.numa_nodes = 2;
  m.memory_mib = 2048;
  auto a = qemu_argv(m);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(after(*a, "-smp"), "4,sockets=2,cores=2,threads=1");
  EXPECT_EQ(after(*a, "-object"), "memory-backend-ram,id=mem0,size=1024M");
  EXPECT_EQ(after(*a, "-numa"), "node,nodeid=0,cpus=0-1,memdev=mem0");
  EXPECT_EQ(after(*a, "-numa", 1), "node,nodeid=1,cpus=2-3,memdev=mem1");
}

TEST(QemuArgs, UnevenNumaAndTooLittleMemoryAreRefusedWithAReason) {
  auto m = machine();
  m.cpus = 3;
  m.numa_nodes = 2;
  auto a = qemu_argv(m);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("divisor"), std::string::npos);
  m = machine();
  m.memory_mib = 64;
  EXPECT_FALSE(qemu_argv(m));
  m = machine();
  m.numa_nodes = 2;
  m.memory_mib = 1025;
  EXPECT_FALSE(qemu_argv(m));
}

}  // namespace
}  // namespace scxkit::vm::internal
