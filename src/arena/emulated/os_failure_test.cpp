// What the emulation does when the OS says no. Each test makes one OS call
// fail through the OS layer's test seam (arena/os_fault_injection.hpp) and
// checks the rule: a page that could not be cleared is never handed out, a
// page that could not be given or taken away leaves the arena as it was.
#include <cerrno>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "arena/os_fault_injection.hpp"
#include "arena/test_support.hpp"
#include "scxkit/program.hpp"

namespace scxkit {
namespace {

using internal::os::testing::Call;
using internal::os::testing::fail_next;
using internal::testing_support::make_arena;

// Injects for its scope: a failing test leaves no injection to the next one.
class Injection {
 public:
  Injection(Call c, int err, int times) : c_(c) { fail_next(c, err, times); }
  ~Injection() { fail_next(c_, 0, 0); }
  Injection(const Injection&) = delete;
  Injection& operator=(const Injection&) = delete;

 private:
  Call c_;
};

bool all_zero(const void* p, std::size_t n) {
  const auto* b = static_cast<const volatile unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

// Arena offset of page `i` of the user range.
std::uint32_t page_off(const Arena& a, std::uint32_t i) {
  return Arena::offset_of_user(reinterpret_cast<void*>(a.user_vm_start())) + i * kPageSize;
}

TEST(OsFailures, AnAllocationWhosePagesCannotBeClearedIsRefusedNotHandedOutDirty) {
  Arena a = make_arena(16);
  const std::uint32_t off = page_off(a, 3);
  {
    // A stray write of a program lands in the slot's page of the file: garbage.
    Program prog("stray", &a);
    ProgramScope scope(prog);
    std::memset(a.kern_addr(off), 0x5a, 64);
  }
  ASSERT_EQ(a.page_state(off), PageState::scratch);
  ASSERT_EQ(static_cast<volatile unsigned char*>(a.kern_addr(off))[0], 0x5a);
  {
    Injection punch(Call::punch_hole, EIO, 1);
    auto p = a.alloc_pages(a.user_addr(off), 1);
    ASSERT_FALSE(p) << "handed out a page whose old contents could not be cleared";
    EXPECT_EQ(p.error().code, Errc::system_error);
    EXPECT_EQ(p.error().sys_errno, EIO);
    EXPECT_NE(p.error().message.find("nothing was allocated"), std::string::npos)
        << p.error().message;
    // Without an address the kernel's choice is the same page (the only
    // change since the arena was made is the scratch): refused as well.
    fail_next(Call::punch_hole, EIO, 1);
    auto any = a.alloc_pages(nullptr, 16);
    ASSERT_FALSE(any);
    EXPECT_EQ(any.error().code, Errc::system_error);
  }
  EXPECT_EQ(a.page_state(off), PageState::scratch) << "the slot is as it was";
  EXPECT_EQ(a.stats()->allocated_pages, 0u);
  EXPECT_EQ(a.stats()->free_pages, 16u);
  // The OS works again: the same call gives a zeroed page, in both views.
  auto p = a.alloc_pages(a.user_addr(off), 1);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(all_zero(*p, kPageSize));
  EXPECT_TRUE(all_zero(a.kern_addr(off), kPageSize));
  EXPECT_EQ(a.page_state(off), PageState::allocated);
}

TEST(OsFailures, AnAllocationTheOsCannotBackIsRefusedAndLeavesNothingBehind) {
  Arena a = make_arena(16);
  {
    Injection full(Call::instantiate, ENOSPC, 1);
    auto p = a.alloc_pages(nullptr, 4);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().code, Errc::no_space) << p.error().message;
    EXPECT_NE(p.error().message.find("memory full"), std::string::npos) << p.error().message;
  }
  const auto s = a.stats();
  EXPECT_EQ(s->allocated_pages, 0u);
  EXPECT_EQ(s->free_pages, 16u);
  EXPECT_EQ(s->free_extents, 1u);
  for (std::uint32_t i = 0; i < 16; ++i) EXPECT_EQ(a.page_state(page_off(a, i)), PageState::empty);
  auto p = a.alloc_pages(nullptr, 4);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(all_zero(*p, 4 * kPageSize));
}

TEST(OsFailures, AFreeWhosePagesTheOsKeepsLeavesThemAllocatedWithTheirData) {
  Arena a = make_arena(16);
  auto p = a.alloc_pages(nullptr, 2);
  ASSERT_TRUE(p);
  std::strcpy(static_cast<char*>(*p), "kept");
  {
    Injection punch(Call::punch_hole, EIO, 1);
    auto r = a.free_pages(*p, 2);
    ASSERT_FALSE(r) << "reported a free the OS did not do";
    EXPECT_EQ(r.error().code, Errc::system_error);
    EXPECT_NE(r.error().message.find("2 page(s)"), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(a.page_state(Arena::offset_of_user(*p)), PageState::allocated);
  EXPECT_EQ(a.stats()->allocated_pages, 2u);
  EXPECT_STREQ(static_cast<char*>(*p), "kept");
  ASSERT_TRUE(a.free_pages(*p, 2));
  EXPECT_EQ(a.stats()->allocated_pages, 0u);
  auto again = a.alloc_pages(*p, 2);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(all_zero(*again, 2 * kPageSize));
}

TEST(OsFailures, ALazyPageTheOsCannotGiveYetIsRetriedUntilItCan) {
  Arena a = make_arena(16);
  auto* page = static_cast<volatile char*>(a.user_addr(page_off(a, 5)));
  {
    Injection full(Call::instantiate, ENOMEM, 3);
    EXPECT_EQ(page[10], 0);  // the view server fails three times, then gives it
  }
  EXPECT_EQ(a.page_state(page_off(a, 5)), PageState::allocated);
  EXPECT_EQ(a.stats()->lazy_pages, 1u);
}

}  // namespace
}  // namespace scxkit
