// Pool: chunks of arena pages, each with an allocated bitmap and a start
// bitmap at one bit per 8-byte granule (see include/scxkit/pool.hpp).
#include "scxkit/pool.hpp"

#include <cstring>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "alloc/bitmap.hpp"

namespace scxkit {
namespace internal {

namespace {

constexpr std::uint32_t kChunkMagic = 0x6c6f6f70;  // "pool"
constexpr std::uint32_t kGranulesPerPage = kPageSize / Pool::kGranule;

// At the start of every chunk, in the arena; the bitmaps follow.
struct PoolChunk {
  std::uint32_t magic;
  std::uint32_t pages;
  std::uint32_t granules;
  std::uint32_t header_granules;  // the header's own granules, allocated for good
  std::uint64_t used_granules;    // handed out to callers
  std::uint64_t reserved;
  std::uint64_t* allocated() { return reinterpret_cast<std::uint64_t*>(this + 1); }
  std::uint64_t* starts() { return allocated() + granules / 64; }
};

std::uint32_t header_granules_for(std::uint32_t pages) {
  const std::uint64_t bytes = sizeof(PoolChunk) + 2 * std::uint64_t{pages} * kGranulesPerPage / 8;
  return static_cast<std::uint32_t>((bytes + Pool::kGranule - 1) / Pool::kGranule);
}

}  // namespace

class PoolImpl {
 public:
  PoolImpl(Arena& arena, const PoolOptions& o) : arena_(&arena), options_(o) {}
  ~PoolImpl() { destroy(); }

  Result<std::uint32_t> alloc(std::size_t size) {
    if (size == 0) return make_error(Errc::invalid_argument, "cannot allocate 0 bytes");
    const std::uint64_t view = std::uint64_t{arena_->max_entries()} * kPageSize;
    if (size > view) {
      return make_error(Errc::too_big,
                        fmt::format("{} bytes is more than the arena's {} bytes", size, view));
    }
    const auto n = static_cast<std::uint32_t>((size + Pool::kGranule - 1) / Pool::kGranule);
    std::lock_guard lock(mu_);
    if (destroyed_) return gone();
    for (PoolChunk* c : chunks_) {
      if (auto off = take(c, n)) return off;
    }
    auto c = grow(n);
    if (!c) return tl::unexpected(std::move(c.error()));
    return take(*c, n);
  }

  Result<void> free(std::uint32_t off) {
    std::lock_guard lock(mu_);
    if (destroyed_) return gone();
    PoolChunk* c = chunk_of(off);
    if (c == nullptr) return refuse(off, "it is not in any of the pool's chunks");
    const std::uint32_t delta = off - Arena::offset_of_user(c);
    if (delta % Pool::kGranule != 0) return refuse(off, "it is not 8-byte aligned");
    const std::size_t g = delta / Pool::kGranule;
    if (g < c->header_granules) return refuse(off, "it points into a chunk header");
    if (!bitmap::test(c->starts(), g)) {
      return refuse(off, bitmap::test(c->allocated(), g)
                             ? "it points inside an allocation, not at its start"
                             : "it is not allocated (a double free, or never handed out)");
    }
    const std::size_t end = std::min(bitmap::next_set(c->starts(), c->granules, g + 1),
                                     bitmap::next_clear(c->allocated(), c->granules, g + 1));
    bitmap::clear_range(c->starts(), g, 1);
    bitmap::clear_range(c->allocated(), g, end - g);
    c->used_granules -= end - g;
    return {};
  }

  Result<void> check() const {
    std::lock_guard lock(mu_);
    for (PoolChunk* c : chunks_) {
      const auto where = [&](std::string_view what) {
        return make_error(Errc::invalid_argument,
                          fmt::format("pool chunk at 0x{:x}: {}", Arena::offset_of_user(c), what));
      };
      if (c->magic != kChunkMagic || c->granules != c->pages * kGranulesPerPage) {
        return where("header damaged");
      }
      if (bitmap::next_clear(c->allocated(), c->header_granules, 0) != c->header_granules ||
          !bitmap::test(c->starts(), 0) ||
          bitmap::next_set(c->starts(), c->header_granules, 1) != c->header_granules) {
        return where("its header granules are not one allocation");
      }
      for (std::size_t g = bitmap::next_set(c->starts(), c->granules, 0); g < c->granules;
           g = bitmap::next_set(c->starts(), c->granules, g + 1)) {
        if (!bitmap::test(c->allocated(), g)) return where("a start bit on a free granule");
      }
      // Every allocated run begins with a start bit.
      for (std::size_t g = bitmap::next_set(c->allocated(), c->granules, 0); g < c->granules;) {
        if (!bitmap::test(c->starts(), g)) return where("an allocated run without a start");
        g = bitmap::next_clear(c->allocated(), c->granules, g);
        g = bitmap::next_set(c->allocated(), c->granules, g);
      }
      if (bitmap::count_set(c->allocated(), c->granules) != c->used_granules + c->header_granules) {
        return where("allocated granules do not match its count");
      }
    }
    return {};
  }

  PoolStats stats() const {
    std::lock_guard lock(mu_);
    PoolStats s;
    for (PoolChunk* c : chunks_) {
      ++s.chunks;
      s.pages += c->pages;
      s.allocations += bitmap::count_set(c->starts(), c->granules) - 1;
      s.bytes_in_use += c->used_granules * Pool::kGranule;
    }
    return s;
  }

  void destroy() {
    std::lock_guard lock(mu_);
    for (PoolChunk* c : chunks_) (void)arena_->free_pages(c, c->pages);
    chunks_.clear();
    destroyed_ = true;
  }

  Arena& arena() const { return *arena_; }

 private:
  Result<std::uint32_t> take(PoolChunk* c, std::uint32_t n) {
    const std::size_t g = bitmap::find_clear_run(c->allocated(), c->granules, n);
    if (g == c->granules) return make_error(Errc::no_space, "chunk full");
    bitmap::set_range(c->allocated(), g, n);
    bitmap::set_range(c->starts(), g, 1);
    c->used_granules += n;
    return Arena::offset_of_user(c) + static_cast<std::uint32_t>(g * Pool::kGranule);
  }

  Result<PoolChunk*> grow(std::uint32_t n) {
    std::uint32_t pages = options_.min_grow_pages;
    while (std::uint64_t{pages} * kGranulesPerPage <
           std::uint64_t{n} + header_granules_for(pages)) {
      ++pages;
    }
    if (pages > arena_->max_entries()) {
      return make_error(Errc::too_big, fmt::format("{} bytes need {} pages; the arena has {}",
                                                   std::uint64_t{n} * Pool::kGranule, pages,
                                                   arena_->max_entries()));
    }
    auto p = arena_->alloc_pages(nullptr, pages);
    if (!p) {
      return make_error(p.error().code, fmt::format("the pool cannot grow by {} pages: {}", pages,
                                                    p.error().message));
    }
    auto* c = static_cast<PoolChunk*>(*p);  // fresh pages read zero
    c->magic = kChunkMagic;
    c->pages = pages;
    c->granules = pages * kGranulesPerPage;
    c->header_granules = header_granules_for(pages);
    bitmap::set_range(c->allocated(), 0, c->header_granules);
    bitmap::set_range(c->starts(), 0, 1);
    chunks_.push_back(c);
    return c;
  }

  PoolChunk* chunk_of(std::uint32_t off) const {
    for (PoolChunk* c : chunks_) {
      if (off - Arena::offset_of_user(c) < std::uint64_t{c->pages} * kPageSize) return c;
    }
    return nullptr;
  }

  static tl::unexpected<Error> refuse(std::uint32_t off, std::string_view why) {
    return make_error(
        Errc::invalid_argument,
        fmt::format("pool free(0x{:x}) refused: {}; the pool is unchanged", off, why));
  }
  static tl::unexpected<Error> gone() {
    return make_error(Errc::invalid_argument, "the pool was destroyed");
  }

  Arena* arena_;
  PoolOptions options_;
  mutable std::mutex mu_;
  std::vector<PoolChunk*> chunks_;
  bool destroyed_ = false;
};

}  // namespace internal

Pool::Pool(std::unique_ptr<internal::PoolImpl> impl) : impl_(std::move(impl)) {}
Pool::Pool(Pool&&) noexcept = default;
Pool& Pool::operator=(Pool&&) noexcept = default;
Pool::~Pool() = default;

Result<Pool> Pool::create(Arena& arena, const PoolOptions& options) {
  if (options.min_grow_pages == 0 || options.min_grow_pages > arena.max_entries()) {
    return make_error(
        Errc::invalid_argument,
        fmt::format("min_grow_pages must be 1 .. {} (the arena's pages)", arena.max_entries()));
  }
  return Pool(std::make_unique<internal::PoolImpl>(arena, options));
}

Result<std::uint32_t> Pool::alloc(std::size_t size) {
  return impl_->alloc(size);
}

Result<void*> Pool::alloc_user(std::size_t size) {
  return impl_->alloc(size).map(
      [this](std::uint32_t off) { return impl_->arena().user_addr(off); });
}

Result<void*> Pool::alloc_kern(std::size_t size) {
  // Checked first: on an arena whose kernel view only the kernel maps, an
  // allocation would have no address to return.
  auto view = impl_->arena().kern_view();
  if (!view) return tl::unexpected(std::move(view.error()));
  return impl_->alloc(size).map(
      [base = view->base](std::uint32_t off) { return reinterpret_cast<void*>(base + off); });
}

Result<void> Pool::free(std::uint32_t offset) {
  return impl_->free(offset);
}
Result<void> Pool::free_user(const void* p) {
  const Arena& a = impl_->arena();
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  if (addr < a.user_vm_start() || addr >= a.user_vm_end()) {
    return make_error(Errc::invalid_argument,
                      fmt::format("pool free({}) refused: not in the arena's user view", p));
  }
  return impl_->free(Arena::offset_of_user(p));
}

Result<void> Pool::free_kern(const void* p) {
  const Arena& a = impl_->arena();
  auto view = a.kern_view();
  if (!view) return tl::unexpected(std::move(view.error()));
  if (reinterpret_cast<std::uintptr_t>(p) - view->base >= k4GiB) {
    return make_error(Errc::invalid_argument,
                      fmt::format("pool free({}) refused: not in the arena's kernel view", p));
  }
  return impl_->free(a.offset_of_kern(p));
}
Result<void> Pool::check() const {
  return impl_->check();
}
PoolStats Pool::stats() const {
  return impl_->stats();
}
void Pool::destroy() {
  impl_->destroy();
}

}  // namespace scxkit
