// Reading what real BPF programs wrote to their stdout/stderr streams.
#include <bpf/libbpf.h>

#include <cerrno>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bpf/bpf_syscall.hpp"
#include "bpf/libbpf_util.hpp"
#include "interop.h"
#include "interop.skel.h"

namespace scxkit::bpf {
namespace {

// Needs a kernel with program streams (Linux 6.17+).
struct ProgStreamTest : ::testing::Test {
  Fd prog;
  void SetUp() override {
    auto p = load_syscall_program(0);
    if (!p) GTEST_SKIP() << "no BPF here: " << p.error().message;
    prog = std::move(*p);
    if (auto s = read_prog_stream(prog.get(), ProgStream::err); !s) {
      GTEST_SKIP() << s.error().message;
    }
  }
};

TEST_F(ProgStreamTest, AProgramThatPrintedNothingHasEmptyStreams) {
  auto err = read_prog_stream(prog.get(), ProgStream::err);
  ASSERT_TRUE(err) << err.error().message;
  EXPECT_EQ(*err, "");
  auto out = read_prog_stream(prog.get(), ProgStream::out);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out, "");
}

TEST_F(ProgStreamTest, ADescriptorThatIsNotAProgramGetsAClearError) {
  auto map = create_arena_map(1, 0, arena_flags::mmapable);
  ASSERT_TRUE(map);
  auto r = read_prog_stream(map->get(), ProgStream::err);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a BPF program"), std::string::npos) << r.error().message;
}

// Also needs a kernel that can allocate stream memory when a program prints.
struct PrintingTest : ProgStreamTest {
  interop* skel = nullptr;
  void SetUp() override {
    ProgStreamTest::SetUp();
    if (IsSkipped()) return;
    skel = interop__open();
    ASSERT_NE(skel, nullptr);
    bpf_map__set_max_entries(skel->maps.arena, 16);
    ASSERT_EQ(interop__load(skel), 0);
    // Some kernels cannot allocate stream memory at all: printing then fails
    // with -ENOMEM every time (seen on a 6.18 host booted with
    // deferred_init=lazy, whose lock-free page allocation always fails).
    auto r = test_run(skel->progs.say, nullptr, 0);
    ASSERT_TRUE(r) << r.error().message;
    if (*r == -ENOMEM) {
      GTEST_SKIP() << "the stream printing kfunc returned -ENOMEM: this kernel cannot allocate "
                      "memory for BPF stream messages";
    }
    if (*r == -EOPNOTSUPP) GTEST_SKIP() << "this kernel has no stream printing kfunc";
    ASSERT_EQ(*r, 0) << "the stream printing kfunc failed";
    ASSERT_TRUE(read_prog_stream(bpf_program__fd(skel->progs.say), ProgStream::out));
  }
  void TearDown() override { interop__destroy(skel); }
};

TEST_F(PrintingTest, WhatAProgramPrintsToStderrIsReadOnce) {
  test_list_args args{.count = 10, .seed = 1};
  ASSERT_TRUE(test_run(skel->progs.list_build, &args, sizeof(args)));
  const int fd = bpf_program__fd(skel->progs.list_build);
  auto err = read_prog_stream(fd, ProgStream::err);
  ASSERT_TRUE(err) << err.error().message;
  EXPECT_EQ(*err, fmt::format("list_build: 10 nodes in 1 pages at offset 0x{:x}\n", args.head));
  auto again = read_prog_stream(fd, ProgStream::err);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, "") << "reading a stream consumes it";
  auto out = read_prog_stream(fd, ProgStream::out);
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "");
}

TEST_F(PrintingTest, StdoutAndStderrAreSeparate) {
  for (int i = 0; i < 2; ++i) {
    auto r = test_run(skel->progs.say, nullptr, 0);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(*r, 0) << "the stream printing kfunc failed";
  }
  const int fd = bpf_program__fd(skel->progs.say);
  auto err = read_prog_stream(fd, ProgStream::err);
  ASSERT_TRUE(err);
  EXPECT_EQ(*err, "");
  auto out = read_prog_stream(fd, ProgStream::out);
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "hello from BPF stdout\nhello from BPF stdout\n");
}

}  // namespace
}  // namespace scxkit::bpf
