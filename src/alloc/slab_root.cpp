// The heap's root in the arena: built by create(), checked by attach().
#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "alloc/slab_heap.hpp"

namespace scxkit::internal {

namespace {

constexpr std::uint32_t kClassesAt = 512;
constexpr std::uint32_t kThreadsAt = kPageSize;

std::uint32_t map_at_for(std::uint32_t max_threads) {
  return kThreadsAt + ((max_threads * sizeof(ThreadRecord) + 63) & ~63u);
}

std::uint32_t root_pages_for(std::uint32_t max_threads, std::uint32_t map_entries) {
  const std::uint64_t bytes = map_at_for(max_threads) + std::uint64_t{map_entries} * 4;
  return static_cast<std::uint32_t>((bytes + kPageSize - 1) / kPageSize);
}

}  // namespace

SlabHeapImpl::SlabHeapImpl(Arena& arena, std::uint32_t root_offset)
    : arena_(&arena),
      ubase_(arena.user_view().base),
      user_start_(arena.user_vm_start()),
      user_size_(arena.user_vm_end() - arena.user_vm_start()),
      root_off_(root_offset) {}

Result<std::unique_ptr<SlabHeapImpl>> SlabHeapImpl::create(Arena& arena,
                                                           const SlabOptions& options) {
  if (options.max_threads == 0 || options.max_threads > (1u << 20)) {
    return make_error(Errc::invalid_argument, "max_threads must be 1 .. 1048576");
  }
  const std::uint32_t pages = root_pages_for(options.max_threads, arena.max_entries());
  if (pages >= arena.max_entries()) {
    return make_error(Errc::too_big, fmt::format("the heap's root needs {} pages; the arena has {}",
                                                 pages, arena.max_entries()));
  }
  auto p = arena.alloc_pages(nullptr, pages);
  if (!p) {
    return make_error(p.error().code,
                      fmt::format("no room for the heap's root: {}", p.error().message));
  }
  auto* root = static_cast<HeapRoot*>(*p);  // fresh pages read zero
  root->magic = kHeapMagic;
  root->version = kHeapVersion;
  root->root_pages = static_cast<std::uint16_t>(std::min<std::uint32_t>(pages, 0xffff));
  root->page_size = kPageSize;
  root->map_entries = arena.max_entries();
  root->slab_pages = kSlabPages;
  root->slab_header_bytes = kSlabHeaderBytes;
  root->class_count = kClassCount;
  root->classes_at = kClassesAt;
  root->max_threads = options.max_threads;
  root->threads_at = kThreadsAt;
  root->map_at = map_at_for(options.max_threads);
  root->flags = options.debug ? kHeapFlagDebug : 0;
  root->secret = std::random_device{}();
  // Up to 8 empty slabs per class stay for reuse: fewer in small arenas,
  // where 32 classes x 8 x 64 KiB would be most of the memory.
  root->empty_keep = std::clamp<std::uint32_t>(arena.max_entries() / 8192, 1, 8);
  auto* classes = reinterpret_cast<ClassInfo*>(reinterpret_cast<char*>(root) + kClassesAt);
  for (std::uint32_t c = 0; c < kClassCount; ++c) {
    classes[c].object_size = kClassSizes[c];
    classes[c].capacity = (kSlabBytes - kSlabHeaderBytes) / kClassSizes[c];
  }
  std::unique_ptr<SlabHeapImpl> heap(new SlabHeapImpl(arena, Arena::offset_of_user(root)));
  if (auto r = heap->bind(); !r) {
    (void)arena.free_pages(root, pages);
    return tl::unexpected(std::move(r.error()));
  }
  return heap;
}

Result<std::unique_ptr<SlabHeapImpl>> SlabHeapImpl::attach(Arena& arena,
                                                           std::uint32_t root_offset) {
  const auto rel =
      static_cast<std::uint32_t>(root_offset - static_cast<std::uint32_t>(arena.user_vm_start()));
  if (root_offset % kPageSize != 0 || rel >= arena.max_entries() * std::uint64_t{kPageSize} ||
      arena.page_state(root_offset) != PageState::allocated) {
    return make_error(Errc::invalid_argument,
                      fmt::format("offset 0x{:x} is not an allocated page of this arena; pass "
                                  "the root_offset() of the heap you mean",
                                  root_offset));
  }
  const auto* root = static_cast<const HeapRoot*>(arena.user_addr(root_offset));
  if (root->magic != kHeapMagic) {
    return make_error(
        Errc::invalid_argument,
        fmt::format("no slab heap at offset 0x{:x} (magic 0x{:x})", root_offset, root->magic));
  }
  if (root->version != kHeapVersion || root->page_size != kPageSize ||
      root->slab_pages != kSlabPages || root->slab_header_bytes != kSlabHeaderBytes ||
      root->class_count != kClassCount || root->map_entries != arena.max_entries()) {
    return make_error(Errc::unsupported,
                      fmt::format("the slab heap at 0x{:x} has layout version {} (this build "
                                  "reads version {}) or different geometry",
                                  root_offset, root->version, kHeapVersion));
  }
  std::unique_ptr<SlabHeapImpl> heap(new SlabHeapImpl(arena, root_offset));
  if (auto r = heap->bind(); !r) return tl::unexpected(std::move(r.error()));
  return heap;
}

Result<void> SlabHeapImpl::bind() {
  auto* base = static_cast<char*>(arena_->user_addr(root_off_));
  root_ = reinterpret_cast<HeapRoot*>(base);
  classes_ = reinterpret_cast<ClassInfo*>(base + root_->classes_at);
  threads_ = reinterpret_cast<ThreadRecord*>(base + root_->threads_at);
  map_ = reinterpret_cast<std::atomic<std::uint32_t>*>(base + root_->map_at);
  map_entries_ = root_->map_entries;
  secret_ = root_->secret;
  debug_ = (root_->flags & kHeapFlagDebug) != 0;
  self_ = current_process_id();
  auto slot = register_heap(this);
  if (!slot) return tl::unexpected(std::move(slot.error()));
  slot_ = *slot;
  fast_uid_ = debug_ ? ~std::uint64_t{0} : slot_.uid;
  return {};
}

SlabHeapImpl::~SlabHeapImpl() {
  if (root_ == nullptr || slot_.uid == 0) return;
  std::lock_guard lock(registry_mutex());
  std::vector<ThreadCache*> caches;
  {
    std::lock_guard l(caches_mu_);
    for (auto& c : caches_) caches.push_back(c.get());
  }
  for (ThreadCache* c : caches) release_thread(c);
  unregister_heap_locked(slot_.index);
}

}  // namespace scxkit::internal
