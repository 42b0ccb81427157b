// Every cmask operation, with the window edge cases: different bases, empty
// windows, single cids, 8192 cids, windows that do not overlap.
#include "scxkit/cmask.hpp"

#include <array>
#include <thread>

#include <gtest/gtest.h>

#include "scxkit/topo.hpp"

namespace scxkit {
namespace {

using List = std::vector<std::uint32_t>;

CmaskBuffer make(std::uint32_t base, std::uint32_t nr, std::string_view cids = "") {
  auto m = CmaskBuffer::create(base, nr);
  EXPECT_TRUE(m) << m.error().message;
  if (!cids.empty()) {
    auto ok = m->mask().assign_cidlist(cids);
    EXPECT_TRUE(ok) << ok.error().message;
  }
  return std::move(*m);
}

List set_cids(const Cmask& m) {
  return List(m.cids().begin(), m.cids().end());
}

TEST(Cmask, InitWritesTheKernelsHeaderAndZeroesAllStorage) {
  alignas(8) std::array<std::byte, 64> storage;
  storage.fill(std::byte{0xff});
  auto m = Cmask::init(storage, 70, 100, 130);
  ASSERT_TRUE(m) << m.error().message;
  const auto* h = reinterpret_cast<const CmaskHeader*>(storage.data());
  EXPECT_EQ(h->base, 70u);
  EXPECT_EQ(h->nr_cids, 100u);
  EXPECT_EQ(h->alloc_words, 4u);  // SCX_CMASK_NR_WORDS(130) = (130 + 63) / 64 + 1
  for (std::size_t i = 16; i < 48; ++i) EXPECT_EQ(storage[i], std::byte{0}) << i;
  EXPECT_EQ(storage[48], std::byte{0xff});  // beyond alloc_words: untouched
  EXPECT_EQ(m->end(), 170u);
  EXPECT_EQ(m->size_bytes(), 48u);
  EXPECT_EQ(m->data(), storage.data());
}

TEST(Cmask, InitRefusesBadStorageAndWindows) {
  alignas(8) std::array<std::byte, 64> storage{};
  auto exact = Cmask::init(storage, 0, 320);  // needs 16 + 6 * 8 = 64 bytes: fits
  EXPECT_TRUE(exact);
  auto big = Cmask::init(storage, 0, 321);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, Errc::no_space);
  auto misaligned = Cmask::init(std::span(storage).subspan(4), 0, 8);
  ASSERT_FALSE(misaligned);
  EXPECT_NE(misaligned.error().message.find("8-byte aligned"), std::string::npos);
  EXPECT_FALSE(Cmask::init(storage, 0, 10, 5));
  auto overflow = Cmask::init(storage, UINT32_MAX - 3, 8);
  ASSERT_FALSE(overflow);
  EXPECT_EQ(overflow.error().code, Errc::out_of_range);
  EXPECT_EQ(cmask_bytes(8192), 16u + 129 * 8);
}

TEST(Cmask, AttachChecksTheHeaderAgainstTheStorage) {
  auto m = make(60, 10, "60,69");
  std::span<std::byte> bytes(m->data(), m->size_bytes());
  auto again = Cmask::attach(bytes);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->to_cidlist(), "60,69");
  EXPECT_FALSE(Cmask::attach(bytes.first(16)));  // alloc_words words do not fit
  EXPECT_FALSE(Cmask::attach(bytes.first(8)));
  // A padding bit set (cid 59 lies below the window): not a cmask.
  reinterpret_cast<std::uint64_t*>(m->data() + 16)[0] |= 1ULL << 59;
  auto bad = Cmask::attach(bytes);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("padding"), std::string::npos);
}

TEST(Cmask, SingleCidOperationsAndTheirPreviousValues) {
  auto m = make(100, 40);
  EXPECT_FALSE(*m->test(120));
  EXPECT_TRUE(m->set(120));
  EXPECT_TRUE(*m->test(120));
  EXPECT_TRUE(*m->test_and_set(120));
  EXPECT_FALSE(*m->test_and_set(121));
  EXPECT_TRUE(*m->test_and_clear(121));
  EXPECT_FALSE(*m->test_and_clear(121));
  EXPECT_TRUE(m->clear(120));
  EXPECT_EQ(m->weight(), 0u);
  EXPECT_TRUE(m->atomic_set(139));
  EXPECT_FALSE(*m->atomic_test_and_set(100));
  EXPECT_TRUE(*m->atomic_test_and_set(100));
  EXPECT_TRUE(*m->atomic_test_and_clear(139));
  EXPECT_TRUE(m->atomic_clear(100));
  EXPECT_EQ(m->weight(), 0u);
}

TEST(Cmask, CidsOutsideTheWindowAreErrorsAndChangeNothing) {
  auto m = make(100, 40, "100,139");
  for (std::uint32_t cid : {0u, 99u, 140u, UINT32_MAX}) {
    auto t = m->test(cid);
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code, Errc::out_of_range);
    EXPECT_NE(t.error().message.find("window [100, 140)"), std::string::npos);
    EXPECT_FALSE(m->set(cid));
    EXPECT_FALSE(m->clear(cid));
    EXPECT_FALSE(m->test_and_set(cid));
    EXPECT_FALSE(m->test_and_clear(cid));
    EXPECT_FALSE(m->atomic_set(cid));
    EXPECT_FALSE(m->atomic_clear(cid));
    EXPECT_FALSE(m->atomic_test_and_set(cid));
    EXPECT_FALSE(m->atomic_test_and_clear(cid));
  }
  EXPECT_EQ(m->to_cidlist(), "100,139");
  // The padding around the window stays zero.
  EXPECT_TRUE(Cmask::attach({m->data(), m->size_bytes()}));
}

TEST(Cmask, EmptyAndSingleCidWindows) {
  auto empty = make(77, 0);
  EXPECT_TRUE(empty->empty_window());
  EXPECT_EQ(empty->weight(), 0u);
  EXPECT_EQ(empty->first_set(), std::nullopt);
  EXPECT_EQ(empty->next_set_wrap(0), std::nullopt);
  EXPECT_TRUE(empty->used_words().empty());
  EXPECT_FALSE(empty->set(77));
  empty->zero();
  auto one = make(63, 1);
  EXPECT_TRUE(one->set(63));
  EXPECT_EQ(one->used_words().size(), 1u);
  EXPECT_EQ(one->used_words()[0], 1ULL << 63);
  EXPECT_EQ(one->next_set_wrap(64), 63u);
  // An empty mask is a subset of anything and intersects nothing.
  EXPECT_TRUE(empty->subset_of(*one));
  EXPECT_FALSE(empty->intersects(*one));
  EXPECT_FALSE(one->subset_of(*empty));
  EXPECT_TRUE(one->or_with(*empty));  // nothing to do, not an error
  EXPECT_EQ(one->weight(), 1u);
}

TEST(Cmask, EightThousandOneHundredNinetyTwoCids) {
  auto m = make(0, 8192);
  EXPECT_EQ(m->alloc_words(), 129u);
  for (std::uint32_t cid = 0; cid < 8192; cid += 3) ASSERT_TRUE(m->set(cid));
  EXPECT_EQ(m->weight(), 2731u);
  EXPECT_EQ(m->next_set(8190), 8190u);
  EXPECT_EQ(m->next_set(8191), std::nullopt);
  EXPECT_EQ(m->next_set_wrap(8191), 0u);
  auto shifted = make(8191, 8192);  // window on cids 8191..16382, 129 words used
  EXPECT_EQ(shifted->used_words().size(), 129u);
  ASSERT_TRUE(shifted->copy_from(*m));
  EXPECT_EQ(shifted->to_cidlist(), "");  // 8191 is not a multiple of 3
  ASSERT_TRUE(shifted->set(16382));
  EXPECT_EQ(shifted->first_set(), 16382u);
  auto full = make(0, 8192);
  for (std::uint32_t cid = 0; cid < 8192; ++cid) ASSERT_TRUE(full->set(cid));
  EXPECT_EQ(full->to_cidlist(), "0-8191");
  EXPECT_TRUE(m->subset_of(*full));
  EXPECT_FALSE(full->subset_of(*m));
}

TEST(Cmask, BinaryOperationsTouchOnlyTheOverlap) {
  // dst [10, 140), src [100, 300): overlap [100, 140).
  auto src = make(100, 200, "100-110,139-150,299");
  auto dst = make(10, 130, "10,99-105,120-139");
  auto d = make(10, 130);

  ASSERT_TRUE(d->copy_from(*dst));
  ASSERT_TRUE(d->and_with(*src));
  EXPECT_EQ(d->to_cidlist(), "10,99-105,139");

  ASSERT_TRUE(d->copy_from(*dst));
  ASSERT_TRUE(d->or_with(*src));
  EXPECT_EQ(d->to_cidlist(), "10,99-110,120-139");

  ASSERT_TRUE(d->copy_from(*dst));
  ASSERT_TRUE(d->andnot_with(*src));
  EXPECT_EQ(d->to_cidlist(), "10,99,120-138");

  // copy overwrites the overlap only: 10 and 99 stay.
  ASSERT_TRUE(d->copy_from(*src));
  EXPECT_EQ(d->to_cidlist(), "10,99-110,139");
  EXPECT_TRUE(Cmask::attach({d->data(), d->size_bytes()}));
}

TEST(Cmask, DisjointWindowsAreAnErrorThatChangesNothing) {
  auto a = make(0, 64, "1,2");
  auto b = make(64, 64, "64");
  using Op = Result<void> (Cmask::*)(const Cmask&);
  for (Op op : {&Cmask::and_with, &Cmask::or_with, &Cmask::andnot_with, &Cmask::copy_from}) {
    auto r = (a.mask().*op)(b.mask());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("[0, 64) and [64, 128) do not overlap"), std::string::npos)
        << r.error().message;
  }
  EXPECT_EQ(a->to_cidlist(), "1-2");
}

TEST(Cmask, ComparisonsAreAboutSetsOfCidsWhateverTheWindows) {
  auto a = make(0, 200, "5,150");
  auto b = make(100, 100, "150");
  auto c = make(3, 160, "5,150");
  EXPECT_FALSE(a->equal(*b));
  EXPECT_TRUE(a->equal(*c));
  EXPECT_TRUE(c->equal(*a));
  EXPECT_TRUE(b->subset_of(*a));
  EXPECT_FALSE(a->subset_of(*b));  // 5 lies outside b's window
  EXPECT_TRUE(a->intersects(*b));
  ASSERT_TRUE(a->clear(150));
  EXPECT_FALSE(a->intersects(*b));
  auto tail = make(0, 200, "199");
  EXPECT_FALSE(tail->subset_of(*c));  // 199 lies past c's window
}

TEST(Cmask, SearchesAndIteration) {
  auto m = make(60, 200, "61,64,127,128,259");
  EXPECT_EQ(m->first_set(), 61u);
  EXPECT_EQ(m->next_set(0), 61u);
  EXPECT_EQ(m->next_set(62), 64u);
  EXPECT_EQ(m->next_set(129), 259u);
  EXPECT_EQ(m->next_set(260), std::nullopt);
  EXPECT_EQ(m->next_set_wrap(260), 61u);
  EXPECT_EQ(m->next_set_wrap(200), 259u);
  EXPECT_EQ(set_cids(*m), (List{61, 64, 127, 128, 259}));
  EXPECT_EQ(m->weight(), 5u);
  m->zero();
  EXPECT_EQ(m->weight(), 0u);
  EXPECT_EQ(m->next_set_wrap(100), std::nullopt);
  EXPECT_TRUE(set_cids(*m).empty());
}

TEST(Cmask, ReframeKeepsPaddingZeroAndChecksTheStorage) {
  auto buf = CmaskBuffer::create(0, 64, 256);
  ASSERT_TRUE(buf);
  Cmask& m = buf->mask();
  for (std::uint32_t cid = 0; cid < 64; ++cid) ASSERT_TRUE(m.set(cid));
  ASSERT_TRUE(m.reframe(30, 200));
  m.zero();
  EXPECT_EQ(m.weight(), 0u);
  ASSERT_TRUE(m.set(229));
  EXPECT_TRUE(Cmask::attach({m.data(), m.size_bytes()}));
  ASSERT_TRUE(m.reframe(0, 256));
  auto big = m.reframe(0, 257);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, Errc::no_space);
  EXPECT_EQ(m.nr_cids(), 256u);  // unchanged
  // A reframe to a window that ends in a fresh word zeroes that word.
  ASSERT_TRUE(m.reframe(0, 64));
  for (std::uint32_t cid = 0; cid < 64; ++cid) ASSERT_TRUE(m.set(cid));
  ASSERT_TRUE(m.reframe(32, 16));
  EXPECT_EQ(m.weight(), 0u);
}

TEST(Cmask, AtomicSetsFromManyThreadsLoseNothing) {
  auto m = make(0, 512);
  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      // Interleaved cids: every word is written by every thread.
      for (std::uint32_t cid = t; cid < 512; cid += 8) EXPECT_TRUE(m->atomic_set(cid));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m->weight(), 512u);
  threads.clear();
  std::array<std::uint32_t, 8> cleared{};
  for (std::uint32_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint32_t cid = 0; cid < 512; ++cid) cleared[t] += *m->atomic_test_and_clear(cid);
    });
  }
  for (auto& t : threads) t.join();
  std::uint32_t total = 0;
  for (std::uint32_t c : cleared) total += c;
  EXPECT_EQ(total, 512u);  // each bit was cleared by exactly one thread
  EXPECT_EQ(m->weight(), 0u);
}

CidTable smt_split_table() {
  // 2 nodes x 1 LLC x 2 cores x 2 threads, x86 order: cid order 0,4,1,5,2,6,3,7.
  auto m = describe_topology({.nodes = 2,
                              .llcs_per_node = 1,
                              .cores_per_llc = 2,
                              .threads_per_core = 2,
                              .smt_split = true});
  return *CidTable::build(*m);
}

TEST(Cmask, CpuSetsConvertThroughTheCidTable) {
  const CidTable t = smt_split_table();
  auto m = make(0, t.nr_cids());
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(4, &cpus);
  CPU_SET(5, &cpus);
  ASSERT_TRUE(m->assign_cpu_set(cpus, t));
  EXPECT_EQ(m->to_cidlist(), "1,3");  // CPU 4 is cid 1, CPU 5 cid 3
  auto back = m->to_cpu_set(t);
  ASSERT_TRUE(back);
  EXPECT_TRUE(CPU_EQUAL(&*back, &cpus));
  EXPECT_EQ(CPU_COUNT(&*back), 2);

  CPU_SET(9, &cpus);  // not a CPU of this machine
  auto bad = m->assign_cpu_set(cpus, t);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("CPU 9 is not a possible CPU"), std::string::npos);
  EXPECT_EQ(m->to_cidlist(), "1,3");  // unchanged
}

TEST(Cmask, CpulistsConvertThroughTheCidTable) {
  const CidTable t = smt_split_table();
  auto m = make(0, t.nr_cids());
  ASSERT_TRUE(m->assign_cpulist("0-1,4", t));
  EXPECT_EQ(m->to_cidlist(), "0-2");
  EXPECT_EQ(*m->to_cpulist(t), "0-1,4");
  EXPECT_FALSE(m->assign_cpulist("0-9", t));
  EXPECT_FALSE(m->assign_cpulist("zero", t));
  // A cid outside the window is an error, with the CPU and its cid named.
  auto half = make(0, 4);
  auto r = half->assign_cpulist("2", t);  // CPU 2 is cid 4
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("CPU 2 has cid 4, outside the cmask window [0, 4)"),
            std::string::npos)
      << r.error().message;
  // A mask with cids the table does not have cannot become CPUs.
  auto wide = make(0, 16, "12");
  EXPECT_FALSE(wide->to_cpulist(t));
  EXPECT_FALSE(wide->to_cpu_set(t));
}

TEST(Cmask, CidlistsRoundTrip) {
  auto m = make(10, 100);
  ASSERT_TRUE(m->assign_cidlist("10-12,50,109"));
  EXPECT_EQ(m->to_cidlist(), "10-12,50,109");
  auto low = m->assign_cidlist("9");
  ASSERT_FALSE(low);
  EXPECT_EQ(low.error().code, Errc::out_of_range);
  EXPECT_FALSE(m->assign_cidlist("110"));
  EXPECT_EQ(m->to_cidlist(), "10-12,50,109");
}

}  // namespace
}  // namespace scxkit
