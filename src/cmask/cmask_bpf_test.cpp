// One layout, two languages: the BPF C header compiles for the BPF target,
// its struct matches C and C++, and run inside the host kernel on arena memory
// it computes what the C++ Cmask computes, result for result, byte for byte.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "cmask/test_support.hpp"
#include "cmask_ops.skel.h"
#include "scxkit/cmask.hpp"
#include "scxkit/topo.hpp"

extern "C" {
#include "../tests/bpf/cmask_ops.h"
// From tests/helpers/cid_layout.c, compiled by the host C compiler.
struct scxkit_c_layout {
  unsigned long cmask_size, cmask_align, base, nr_cids, alloc_words, bits;
  unsigned long topo_size, core_cid, core_idx, llc_cid, llc_idx, node_cid, node_idx, shard_cid,
      shard_idx;
  unsigned long bytes_for_100_cids;
};
struct scxkit_c_layout scxkit_c_cid_layout(void);
}

namespace scxkit {
namespace {

using cmask_testing::slurp;

namespace fs = std::filesystem;
using cmask_testing::run_program;
using cmask_testing::TempDir;

const fs::path kSource = SCXKIT_SOURCE_DIR;
const std::string kClang = SCXKIT_BPF_CLANG;

// The header's include path without vmlinux.h (linux/types.h and friends).
std::vector<std::string> bpf_compile(const fs::path& src, const fs::path& out) {
  return {kClang,
          "-DCMASK_OPS_WITHOUT_VMLINUX",
          "-O2",
          "-g",
          "-target",
          "bpf",
          "-mcpu=v3",
          "-Wall",
          "-Werror",
          "-I/usr/include/x86_64-linux-gnu",
          "-I" + (kSource / "include").string(),
          "-I" + (kSource / "tests" / "bpf").string(),
          "-c",
          src.string(),
          "-o",
          out.string()};
}

TEST(CidLayout, CAndCxxAgreeOnEveryOffset) {
  const scxkit_c_layout c = scxkit_c_cid_layout();
  EXPECT_EQ(c.cmask_size, sizeof(CmaskHeader));
  EXPECT_EQ(c.cmask_align, alignof(std::uint64_t));
  EXPECT_EQ(c.base, offsetof(CmaskHeader, base));
  EXPECT_EQ(c.nr_cids, offsetof(CmaskHeader, nr_cids));
  EXPECT_EQ(c.alloc_words, offsetof(CmaskHeader, alloc_words));
  EXPECT_EQ(c.bits, kCmaskHeaderBytes);
  EXPECT_EQ(c.bytes_for_100_cids, cmask_bytes(100));
  EXPECT_EQ(c.topo_size, sizeof(CidTopo));
  EXPECT_EQ(c.core_cid, offsetof(CidTopo, core_cid));
  EXPECT_EQ(c.core_idx, offsetof(CidTopo, core_idx));
  EXPECT_EQ(c.llc_cid, offsetof(CidTopo, llc_cid));
  EXPECT_EQ(c.llc_idx, offsetof(CidTopo, llc_idx));
  EXPECT_EQ(c.node_cid, offsetof(CidTopo, node_cid));
  EXPECT_EQ(c.node_idx, offsetof(CidTopo, node_idx));
  EXPECT_EQ(c.shard_cid, offsetof(CidTopo, shard_cid));
  EXPECT_EQ(c.shard_idx, offsetof(CidTopo, shard_idx));
}

class BpfHeader : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }
  // Compiles `source` for the BPF target; returns the exit status, log in log().
  int compile(const fs::path& source) {
    return run_program(bpf_compile(source, dir_.path() / "out.o"), dir_.path() / "log");
  }
  fs::path write(std::string_view name, std::string_view text) {
    const fs::path p = dir_.path() / name;
    std::ofstream(p) << text;
    return p;
  }
  std::string log() const { return slurp(dir_.path() / "log"); }
  TempDir dir_;
};

TEST_F(BpfHeader, EveryOperationCompilesForTheBpfTarget) {
  EXPECT_EQ(compile(kSource / "tests" / "bpf" / "cmask_ops.bpf.c"), 0) << log();
}

// A 7.3 kernel's vmlinux.h brings its own struct scx_cmask; the header then
// checks that struct's layout instead of defining one.
constexpr std::string_view kKernelTypes = R"(
#include <linux/types.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
struct scx_cid_topo { __s32 core_cid, core_idx, llc_cid, llc_idx, node_cid, node_idx, shard_cid, shard_idx; };
struct scx_cmask { __u32 base; __u32 nr_cids; __u32 alloc_words; __u64 bits[]; };
#define SCXKIT_CID_TYPES_FROM_VMLINUX
#include "scxkit/bpf/cmask.bpf.h"
int f(struct scx_cmask __arena *m) { return scxk_cmask_weight(m); }
)";

TEST_F(BpfHeader, AcceptsTheKernelsOwnStructs) {
  EXPECT_EQ(compile(write("kernel.bpf.c", kKernelTypes)), 0) << log();
}

// Both layouts existed in earlier versions of the cid series: a cmask header
// without alloc_words, and a topology without shard fields.
TEST_F(BpfHeader, RejectsKernelStructsWithAnotherLayout) {
  std::string no_alloc_words(kKernelTypes);
  no_alloc_words.replace(no_alloc_words.find("__u32 alloc_words; "),
                         std::strlen("__u32 alloc_words; "), "");
  EXPECT_NE(compile(write("old.bpf.c", no_alloc_words)), 0);
  EXPECT_NE(log().find("scx_cmask header is 16 bytes"), std::string::npos) << log();

  std::string no_shards(kKernelTypes);
  no_shards.replace(no_shards.find(", shard_cid, shard_idx; };"),
                    std::strlen(", shard_cid, shard_idx; };"), "; };");
  EXPECT_NE(compile(write("no_shards.bpf.c", no_shards)), 0);
  EXPECT_NE(log().find("no member named 'shard_cid' in 'scx_cid_topo'"), std::string::npos)
      << log();
}

// ---- The same operations in the kernel (BPF) and in C++ ----

constexpr std::uint32_t kSlots = 4;
constexpr std::size_t kSlotBytes = 512;  // cmask_bytes(1024 + 63) fits
constexpr std::size_t kOpsOffset = kSlots * kSlotBytes;

// The cmask_ops program (built with the host's vmlinux.h) and its arena,
// mapped into this process.
class BpfCmaskOps : public ::testing::Test {
 protected:
  void SetUp() override {
    skel_ = cmask_ops__open();
    ASSERT_NE(skel_, nullptr) << "libbpf could not open the cmask_ops object";
    if (const int err = cmask_ops__load(skel_); err != 0) {
      GTEST_SKIP() << "this kernel does not load an arena + syscall program (" << strerror(-err)
                   << "); it needs root and Linux 6.9+";
    }
    std::size_t data_size = 0;  // bytes of arena globals: none here
    base_ = static_cast<std::byte*>(bpf_map__initial_value(skel_->maps.arena, &data_size));
    ASSERT_NE(base_, nullptr) << "libbpf did not map the arena";
    static_assert(kOpsOffset + CMASK_OPS_MAX * sizeof(cmask_op) <= CMASK_OPS_ARENA_PAGES * 4096);
    prog_fd_ = bpf_program__fd(skel_->progs.run_cmask_ops);
    ASSERT_GE(prog_fd_, 0);
  }
  void TearDown() override { cmask_ops__destroy(skel_); }

  std::span<std::byte> slot(std::byte* base, std::uint32_t i) {
    return {base + i * kSlotBytes, kSlotBytes};
  }

  // Runs `ops` in the kernel; fills in their results.
  void run_in_kernel(std::vector<cmask_op>& ops) {
    auto* arena_ops = reinterpret_cast<cmask_op*>(base_ + kOpsOffset);
    std::memcpy(arena_ops, ops.data(), ops.size() * sizeof(cmask_op));
    cmask_ops_args args{.ops = reinterpret_cast<std::uint64_t>(arena_ops),
                        .nr_ops = static_cast<__u32>(ops.size())};
    LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &args, .ctx_size_in = sizeof(args));
    ASSERT_EQ(bpf_prog_test_run_opts(prog_fd_, &run), 0) << strerror(errno);
    std::memcpy(ops.data(), arena_ops, ops.size() * sizeof(cmask_op));
  }

  cmask_ops* skel_ = nullptr;
  std::byte* base_ = nullptr;
  int prog_fd_ = -1;
};

// What the BPF helpers return, computed with the C++ Cmask over `mirror`.
std::int64_t run_in_cxx(const cmask_op& op, std::byte* mirror, std::byte* arena) {
  const auto view = [&](std::uint64_t addr) {
    const std::size_t off = reinterpret_cast<std::byte*>(addr) - arena;
    return std::span<std::byte>(mirror + off, kSlotBytes);
  };
  const auto flag = [](const Result<bool>& r, std::int64_t err) -> std::int64_t {
    return r ? std::int64_t{*r} : -err;
  };
  const auto status = [](const Result<void>& r, std::int64_t err) -> std::int64_t {
    return r ? 0 : -err;
  };
  if (op.code == CMASK_OP_INIT) {
    return status(Cmask::init(view(op.a), op.cid, op.nr, op.alloc).map([](Cmask) {}), 22);
  }
  auto ma = Cmask::attach(view(op.a));
  auto mb = Cmask::attach(view(op.b));
  if (!ma || !mb) {
    ADD_FAILURE() << "C++ cannot attach: " << (ma ? mb : ma).error().message;
    return INT64_MIN;
  }
  Cmask& a = *ma;
  const Cmask& b = *mb;
  const auto or_end = [&](std::optional<std::uint32_t> cid) -> std::int64_t {
    return cid ? *cid : a.end();
  };
  switch (op.code) {
    case CMASK_OP_REFRAME:
      return status(a.reframe(op.cid, op.nr), 22);
    case CMASK_OP_TEST:
      return flag(a.test(op.cid), 0) > 0;
    case CMASK_OP_SET:
      return status(a.set(op.cid), 34);
    case CMASK_OP_CLEAR:
      return status(a.clear(op.cid), 34);
    case CMASK_OP_TEST_AND_SET:
      return flag(a.test_and_set(op.cid), 34);
    case CMASK_OP_TEST_AND_CLEAR:
      return flag(a.test_and_clear(op.cid), 34);
    case CMASK_OP_ATOMIC_SET:
      return status(a.atomic_set(op.cid), 34);
    case CMASK_OP_ATOMIC_CLEAR:
      return status(a.atomic_clear(op.cid), 34);
    case CMASK_OP_ATOMIC_TEST_AND_SET:
      return flag(a.atomic_test_and_set(op.cid), 34);
    case CMASK_OP_ATOMIC_TEST_AND_CLEAR:
      return flag(a.atomic_test_and_clear(op.cid), 34);
    case CMASK_OP_ZERO:
      a.zero();
      return 0;
    case CMASK_OP_AND:
      return status(a.and_with(b), 22);
    case CMASK_OP_OR:
      return status(a.or_with(b), 22);
    case CMASK_OP_ANDNOT:
      return status(a.andnot_with(b), 22);
    case CMASK_OP_COPY:
      return status(a.copy_from(b), 22);
    case CMASK_OP_EQUAL:
      return a.equal(b);
    case CMASK_OP_SUBSET:
      return a.subset_of(b);
    case CMASK_OP_INTERSECTS:
      return a.intersects(b);
    case CMASK_OP_WEIGHT:
      return a.weight();
    case CMASK_OP_FIRST_SET:
      return or_end(a.first_set());
    case CMASK_OP_NEXT_SET:
      return or_end(a.next_set(op.cid));
    case CMASK_OP_NEXT_SET_WRAP:
      return or_end(a.next_set_wrap(op.cid));
    case CMASK_OP_SUM_FOR_EACH: {
      std::int64_t sum = 0;
      for (std::uint32_t cid : a.cids()) sum += cid + 1;
      return sum;
    }
  }
  return -22;
}

TEST_F(BpfCmaskOps, RandomOperationListsMatchCxxResultForResultByteForByte) {
  std::mt19937 rng(12345);
  const auto pick = [&](std::uint32_t n) {
    return std::uniform_int_distribution<std::uint32_t>(0, n - 1)(rng);
  };
  std::vector<std::byte> mirror(kOpsOffset);
  for (int round = 0; round < 40; ++round) {
    // Four cmasks with windows of 0..1024 cids at bases that straddle words.
    std::vector<cmask_op> ops;
    std::uint32_t hi = 0;
    for (std::uint32_t s = 0; s < kSlots; ++s) {
      const std::uint32_t base = pick(3) == 0 ? pick(8) * 64 : pick(300);
      const std::uint32_t nr = pick(4) == 0 ? pick(3) : pick(1025);
      const auto addr = reinterpret_cast<std::uint64_t>(base_ + s * kSlotBytes);
      ops.push_back({.code = CMASK_OP_INIT, .cid = base, .nr = nr, .alloc = 1024 + 63, .a = addr});
      hi = std::max(hi, base + nr);
    }
    while (ops.size() < CMASK_OPS_MAX) {
      cmask_op op{.code = pick(CMASK_OP_NR_CODES),
                  .cid = pick(hi + 70),
                  .nr = pick(1025),
                  .a = reinterpret_cast<std::uint64_t>(base_ + pick(kSlots) * kSlotBytes),
                  .b = reinterpret_cast<std::uint64_t>(base_ + pick(kSlots) * kSlotBytes)};
      if (op.code == CMASK_OP_INIT) continue;  // keep windows inside their slots
      if (op.code == CMASK_OP_REFRAME && pick(2)) op.code = CMASK_OP_SET;  // reframe less often
      // Sets dominate so that masks fill up.
      if (pick(3) == 0) op.code = pick(2) ? CMASK_OP_SET : CMASK_OP_ATOMIC_SET;
      op.alloc = 0;
      ops.push_back(op);
    }
    std::vector<cmask_op> kernel = ops;
    run_in_kernel(kernel);
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const std::int64_t want = run_in_cxx(ops[i], mirror.data(), base_);
      ASSERT_EQ(kernel[i].result, want)
          << "round " << round << " op " << i << " code " << ops[i].code << " cid " << ops[i].cid;
    }
    ASSERT_EQ(std::memcmp(mirror.data(), base_, kOpsOffset), 0) << "round " << round;
  }
}

TEST_F(BpfCmaskOps, CxxReadsWhatBpfWroteAtAnArenaAddress) {
  const auto addr = reinterpret_cast<std::uint64_t>(base_);
  std::vector<cmask_op> ops = {
      {.code = CMASK_OP_INIT, .cid = 60, .nr = 8192 - 60, .alloc = 1024, .a = addr}};
  // Window passes the storage the BPF side was told about: refused there too.
  run_in_kernel(ops);
  EXPECT_EQ(ops[0].result, -22);
  ops = {{.code = CMASK_OP_INIT, .cid = 60, .nr = 900, .alloc = 1000, .a = addr}};
  for (std::uint32_t cid : {60u, 63u, 64u, 500u, 959u}) {
    ops.push_back({.code = CMASK_OP_ATOMIC_SET, .cid = cid, .a = addr});
  }
  run_in_kernel(ops);
  auto mask = Cmask::attach({base_, kSlotBytes});
  ASSERT_TRUE(mask) << mask.error().message;
  EXPECT_EQ(mask->base(), 60u);
  EXPECT_EQ(mask->nr_cids(), 900u);
  EXPECT_EQ(mask->alloc_words(), cmask_nr_words(1000));
  EXPECT_EQ(mask->to_cidlist(), "60,63-64,500,959");
}

}  // namespace
}  // namespace scxkit
