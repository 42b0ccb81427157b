#include "scxkit/pool.hpp"

#include <cstring>
#include <map>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "alloc/bitmap.hpp"
#include "alloc/test_support.hpp"

namespace scxkit {
namespace {

using testing_support::allocated_pages;
using testing_support::created;

Pool make_pool(Arena& a, PoolOptions o = {}) {
  return created(Pool::create(a, o));
}

// Every suite runs on both arena backends.
using PoolAllocator = testing_support::OnEachBackend;
using PoolViews = testing_support::OnEachBackend;

TEST_P(PoolViews, HandsOutAlignedDistinctMemoryInTheUserView) {
  Arena a = make_arena(256);
  Pool pool = make_pool(a);
  auto u = pool.alloc_user(13);
  auto v = pool.alloc_user(13);
  ASSERT_TRUE(u && v);
  EXPECT_EQ(Arena::offset_of_user(*u) % 8, 0u);
  EXPECT_NE(Arena::offset_of_user(*u), 0u);
  EXPECT_EQ(Arena::offset_of_user(*u) + 16, Arena::offset_of_user(*v));  // 13 rounds up to 16
  std::strcpy(static_cast<char*>(*v), "second");
  std::strcpy(static_cast<char*>(*u), "first, 16 bytes");
  EXPECT_STREQ(static_cast<char*>(*v), "second");
  struct Pair {
    std::uint32_t a, b;
  };
  auto t = pool.alloc_typed<Pair>(10);
  ASSERT_TRUE(t);
  t->in(a.user_view())[9].b = 7;
  EXPECT_EQ(static_cast<Pair*>(a.user_addr(t->offset()))[9].b, 7u);
  EXPECT_TRUE(pool.free_user(*u));
  EXPECT_TRUE(pool.free_user(*v));
  EXPECT_TRUE(pool.free(t->offset()));
  EXPECT_TRUE(pool.check());
  EXPECT_EQ(pool.stats().allocations, 0u);
}

TEST_P(PoolViews, HandsOutKernelViewAddressesOfTheSameMemory) {
  Arena a = make_arena(256);
  Pool pool = make_pool(a);
  if (kernel()) {
    // A kernel arena's kernel view is the kernel's own mapping, not this
    // process's: kernel-view calls are refused, and refused before allocating.
    auto k = pool.alloc_kern(64);
    ASSERT_FALSE(k) << "a kernel arena's kernel view is not mapped in this process";
    EXPECT_EQ(k.error().code, Errc::unsupported);
    EXPECT_NE(k.error().message.find("kernel view"), std::string::npos) << k.error().message;
    EXPECT_EQ(pool.stats().chunks, 0u) << "the refused call allocated";
    auto u = pool.alloc_user(64);
    ASSERT_TRUE(u) << u.error().message;
    const std::uint32_t off = Arena::offset_of_user(*u);
    auto kern_form = reinterpret_cast<void*>(a.kern_vm_start() + off);
    EXPECT_EQ(a.offset_of_kern(kern_form), off);
    auto freed = pool.free_kern(kern_form);
    ASSERT_FALSE(freed);
    EXPECT_EQ(freed.error().code, Errc::unsupported);
    EXPECT_EQ(pool.stats().allocations, 1u);
    EXPECT_TRUE(pool.free_user(*u));
    return;
  }
  auto u = pool.alloc_user(13);
  auto k = pool.alloc_kern(13);
  ASSERT_TRUE(u && k);
  EXPECT_EQ(Arena::offset_of_user(*u) + 16, a.offset_of_kern(*k));
  std::strcpy(static_cast<char*>(*k), "from the kernel");
  EXPECT_STREQ(static_cast<char*>(a.user_addr(a.offset_of_kern(*k))), "from the kernel");
  auto t = pool.alloc_typed<std::uint32_t>(10);
  ASSERT_TRUE(t);
  t->in(a.user_view())[9] = 7;
  EXPECT_EQ(t->in(*a.kern_view())[9], 7u);
  EXPECT_TRUE(pool.free_user(*u));
  EXPECT_TRUE(pool.free_kern(*k));
  EXPECT_TRUE(pool.free(t->offset()));
  EXPECT_TRUE(pool.check());
  EXPECT_EQ(pool.stats().allocations, 0u);
}

TEST_P(PoolAllocator, GrowsByFourPagesOrWhatTheRequestNeeds) {
  Arena a = make_arena(1024);
  Pool pool = make_pool(a);
  ASSERT_TRUE(pool.alloc(8));
  EXPECT_EQ(pool.stats().pages, 4u);
  EXPECT_EQ(pool.stats().chunks, 1u);
  ASSERT_TRUE(pool.alloc(100 * 1024));
  EXPECT_EQ(pool.stats().chunks, 2u);
  EXPECT_GE(pool.stats().pages, 4u + 25u);
  EXPECT_LE(pool.stats().pages, 4u + 27u);
  // Small requests fill the first chunk before another is added.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(pool.alloc(64));
  EXPECT_EQ(pool.stats().chunks, 2u);
  EXPECT_TRUE(pool.check());
}

TEST_P(PoolAllocator, BadRequestsAndBadFreesAreRefusedAndChangeNothing) {
  Arena a = make_arena(256);
  Pool pool = make_pool(a);
  EXPECT_EQ(pool.alloc(0).error().code, Errc::invalid_argument);
  EXPECT_EQ(pool.alloc(std::size_t{1} << 40).error().code, Errc::too_big);
  EXPECT_EQ(pool.alloc(300 * kPageSize).error().code, Errc::too_big);
  EXPECT_FALSE(Pool::create(a, {.min_grow_pages = 0}));
  auto x = pool.alloc(64);
  ASSERT_TRUE(x);
  const PoolStats before = pool.stats();
  const std::pair<std::uint32_t, const char*> bad[] = {
      {*x + 8, "inside an allocation"},    {*x + 3, "not 8-byte aligned"},
      {*x + 64, "not allocated"},          {*x - 8, "chunk header"},
      {*x + 64 * kPageSize, "not in any"},
  };
  for (const auto& [o, why] : bad) {
    auto r = pool.free(o);
    ASSERT_FALSE(r) << why;
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  }
  int local = 0;
  EXPECT_FALSE(pool.free_user(&local));
  EXPECT_FALSE(pool.free_kern(&local));
  EXPECT_EQ(pool.stats().bytes_in_use, before.bytes_in_use);
  EXPECT_TRUE(pool.check());
  ASSERT_TRUE(pool.free(*x));
  auto twice = pool.free(*x);
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("double free"), std::string::npos);
  EXPECT_TRUE(pool.check());
}

TEST_P(PoolAllocator, DestroyGivesEveryPageBackWithAllocationsOutstanding) {
  Arena a = make_arena(1024);
  const std::uint64_t before = allocated_pages(a);
  Pool pool = make_pool(a);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.alloc(1000 + i * 100));
  EXPECT_GT(allocated_pages(a), before);
  pool.destroy();
  EXPECT_EQ(allocated_pages(a), before);
  EXPECT_FALSE(pool.alloc(8));
  EXPECT_FALSE(pool.free(8));
}

// The bitmap primitives against a vector<bool>.
RC_GTEST_PROP(PoolBitmap, RangeOpsAndSearchesMatchAPlainModel, ()) {
  const auto nbits = *rc::gen::inRange<std::size_t>(1, 700);
  std::vector<std::uint64_t> words((nbits + 63) / 64 + 1, 0);
  std::vector<bool> model(nbits, false);
  const auto ops = *rc::gen::inRange(1, 60);
  for (int i = 0; i < ops; ++i) {
    const auto first = *rc::gen::inRange<std::size_t>(0, nbits);
    const auto n = *rc::gen::inRange<std::size_t>(0, nbits - first + 1);
    if (*rc::gen::arbitrary<bool>()) {
      internal::bitmap::set_range(words.data(), first, n);
      for (std::size_t b = first; b < first + n; ++b) model[b] = true;
    } else {
      internal::bitmap::clear_range(words.data(), first, n);
      for (std::size_t b = first; b < first + n; ++b) model[b] = false;
    }
    // Nothing past nbits is ever touched.
    for (std::size_t b = nbits; b < words.size() * 64; ++b) {
      RC_ASSERT(!internal::bitmap::test(words.data(), b));
    }
  }
  std::size_t set = 0;
  for (std::size_t b = 0; b < nbits; ++b) {
    RC_ASSERT(internal::bitmap::test(words.data(), b) == model[b]);
    set += model[b] ? 1 : 0;
  }
  RC_ASSERT(internal::bitmap::count_set(words.data(), nbits) == set);
  const auto from = *rc::gen::inRange<std::size_t>(0, nbits);
  std::size_t want_set = nbits, want_clear = nbits;
  for (std::size_t b = nbits; b-- > from;) (model[b] ? want_set : want_clear) = b;
  RC_ASSERT(internal::bitmap::next_set(words.data(), nbits, from) == want_set);
  RC_ASSERT(internal::bitmap::next_clear(words.data(), nbits, from) == want_clear);
  const auto run = *rc::gen::inRange<std::size_t>(1, nbits + 1);
  std::size_t want_run = nbits;
  for (std::size_t b = 0, len = 0; b < nbits; ++b) {
    len = model[b] ? 0 : len + 1;
    if (len == run) {
      want_run = b + 1 - run;
      break;
    }
  }
  RC_ASSERT(internal::bitmap::find_clear_run(words.data(), nbits, run) == want_run);
}

// The pool against a map of live allocations: whatever the sequence of
// allocations, frees and bad frees, the bitmaps stay consistent, live
// allocations never overlap and the counts match.
RC_GTEST_PROP(PoolBitmap, InvariantsHoldOverAnySequenceOfOperations, ()) {
  // Creating an arena costs more than a whole case; the bitmaps do not
  // depend on the backend.
  static Arena a = created(Arena::create({.max_entries = 512}));
  Pool pool = make_pool(a, {.min_grow_pages = *rc::gen::inRange<std::uint32_t>(1, 8)});
  std::map<std::uint32_t, std::size_t> live;  // offset -> rounded size
  const auto ops = *rc::gen::inRange(1, 120);
  for (int i = 0; i < ops; ++i) {
    const int kind = *rc::gen::inRange(0, 10);
    if (kind < 6 || live.empty()) {
      const auto size = *rc::gen::inRange<std::size_t>(1, 9000);
      auto off = pool.alloc(size);
      RC_ASSERT(off.has_value());
      RC_ASSERT(*off % 8 == 0 && *off != 0);
      live[*off] = (size + 7) & ~std::size_t{7};
    } else {
      auto it = live.begin();
      std::advance(it, *rc::gen::inRange<std::size_t>(0, live.size()));
      if (kind < 9) {
        RC_ASSERT(pool.free(it->first).has_value());
        live.erase(it);
      } else {
        // Inside a live allocation (when it spans more than one granule) or
        // freed twice: refused either way.
        const std::uint32_t bad = it->second > 8 ? it->first + 8 : it->first;
        if (bad == it->first) {
          RC_ASSERT(pool.free(bad).has_value());
          live.erase(it);
        }
        RC_ASSERT(!pool.free(bad).has_value());
      }
    }
    RC_ASSERT(pool.check().has_value());
  }
  std::uint32_t end = 0;
  std::uint64_t bytes = 0;
  for (const auto& [off, size] : live) {
    RC_ASSERT(off >= end);  // no overlap
    end = off + static_cast<std::uint32_t>(size);
    bytes += size;
  }
  RC_ASSERT(pool.stats().allocations == live.size());
  RC_ASSERT(pool.stats().bytes_in_use == bytes);
  pool.destroy();
  RC_ASSERT(a.stats()->allocated_pages == 0u);
}

SCXKIT_ON_EACH_BACKEND(PoolAllocator);
SCXKIT_ON_EACH_BACKEND(PoolViews);

}  // namespace
}  // namespace scxkit
