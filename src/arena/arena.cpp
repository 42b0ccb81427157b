#include "scxkit/arena.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "arena/emulated/emulated_backend.hpp"
#include "arena/kernel/kernel_backend.hpp"
#include "bpf/bpf_objects.hpp"

namespace scxkit {

namespace {
std::uint64_t as_u64(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}

Result<Arena> wrap(Result<std::unique_ptr<internal::Backend>> backend) {
  if (!backend) return tl::unexpected(backend.error());
  return internal::ArenaAccess::make(std::move(*backend));
}

template <class Impl>
Result<std::unique_ptr<internal::Backend>> emulated(Result<std::unique_ptr<Impl>> impl) {
  if (!impl) return tl::unexpected(impl.error());
  return std::make_unique<internal::EmulatedBackend>(std::move(*impl));
}
}  // namespace

namespace internal {

std::string_view to_string(ArenaBackend kind) {
  return kind == ArenaBackend::kernel ? "kernel" : "emulated";
}

tl::unexpected<Error> unsupported(ArenaBackend kind, std::string_view what, std::string_view why) {
  return make_error(
      Errc::unsupported,
      fmt::format("{} is not available on the {} arena backend: {}", what, to_string(kind), why));
}

}  // namespace internal

Arena::Arena(std::unique_ptr<internal::Backend> backend) : backend_(std::move(backend)) {
  user_base_ = backend_->user_vm_start() & ~(k4GiB - 1);
  kern_start_ = backend_->kern_vm_start();
  kern_base_ = backend_->maps_kern_view() ? kern_start_ : 0;
}
Arena::Arena(Arena&&) noexcept = default;
Arena& Arena::operator=(Arena&&) noexcept = default;
Arena::~Arena() = default;

Result<Arena> Arena::create(const ArenaOptions& options) {
  // The one place that picks a backend.
  switch (options.backend) {
    case ArenaBackend::emulated:
      return wrap(emulated(internal::ArenaImpl::create(options)));
    case ArenaBackend::kernel:
      return wrap(internal::KernelBackend::create(options));
  }
  return make_error(Errc::invalid_argument,
                    "ArenaOptions::backend must be ArenaBackend::emulated or ArenaBackend::kernel");
}

Result<Arena> Arena::open(std::string_view name) {
  return wrap(emulated(internal::ArenaImpl::open_named(name)));
}

Result<Arena> Arena::open_fd(int fd) {
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return os_error("duplicating the arena descriptor", errno);
  // A BPF map answers BPF_OBJ_GET_INFO_BY_FD; a memory file does not.
  if (internal::KernelBackend::is_arena_map(own)) {
    return wrap(internal::KernelBackend::open(bpf::Fd(own)));
  }
  return wrap(emulated(internal::ArenaImpl::open(own)));
}

Result<Arena> Arena::open_map_id(std::uint32_t id) {
  auto fd = bpf::open_map_by_id(id);
  if (!fd) return tl::unexpected(fd.error());
  return wrap(internal::KernelBackend::open(std::move(*fd)));
}

Result<Arena> Arena::open_pinned(const std::string& path) {
  auto fd = bpf::open_pinned_map(path);
  if (!fd) return tl::unexpected(fd.error());
  return wrap(internal::KernelBackend::open(std::move(*fd)));
}

Result<void*> Arena::alloc_pages(void* addr, std::uint32_t count, int node) {
  auto r = backend_->alloc(as_u64(addr), count, node, true);
  if (!r) return tl::unexpected(r.error());
  return reinterpret_cast<void*>(*r);
}

Result<void*> Arena::try_alloc_pages(void* addr, std::uint32_t count, int node) {
  auto r = backend_->alloc(as_u64(addr), count, node, false);
  if (!r) return tl::unexpected(r.error());
  return reinterpret_cast<void*>(*r);
}

Result<PauseStats> Arena::free_pages(const void* addr, std::uint32_t count) {
  return backend_->free(as_u64(addr), count);
}

Result<void> Arena::reserve_pages(const void* addr, std::uint32_t count) {
  return backend_->reserve(as_u64(addr), count);
}

std::uint32_t Arena::max_entries() const {
  return backend_->max_entries();
}
std::uint32_t Arena::map_flags() const {
  return backend_->map_flags();
}
std::uint64_t Arena::user_vm_start() const {
  return backend_->user_vm_start();
}
std::uint64_t Arena::user_vm_end() const {
  return backend_->user_vm_start() + std::uint64_t{backend_->max_entries()} * kPageSize;
}
std::uint64_t Arena::kern_vm_start() const {
  return backend_->kern_vm_start();
}
ArenaBackend Arena::backend() const {
  return backend_->kind();
}
Result<ArenaView> Arena::kern_view() const {
  if (kern_base_ == 0) {
    return internal::unsupported(backend_->kind(), "the kernel view",
                                 "the kernel's own view of a BPF arena is not mapped in user "
                                 "space; use user_view()");
  }
  return ArenaView{kern_base_};
}
int Arena::fd() const {
  return backend_->fd();
}
Result<std::uint32_t> Arena::map_id() const {
  return backend_->map_id();
}
Result<void> Arena::pin(const std::string& path) const {
  return backend_->pin(path);
}
Result<void> Arena::attach_to(::bpf_map* map) const {
  return backend_->attach_to(map);
}
PageState Arena::page_state(std::uint32_t off) const {
  return backend_->page_state(off);
}
Result<ArenaStats> Arena::stats() const {
  return backend_->stats();
}
PauseStats Arena::teardown() {
  return backend_->teardown();
}

namespace {
// One byte of payload plus room for one descriptor: the message both sides use.
struct FdMessage {
  char byte = 'A';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};

  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
  }
  FdMessage(const FdMessage&) = delete;
};
}  // namespace

Result<void> send_arena_fd(int unix_socket, const Arena& arena) {
  const int fd = arena.fd();
  FdMessage m;
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (sendmsg(unix_socket, &m.msg, MSG_NOSIGNAL) != 1) {
    return os_error("sending the arena descriptor", errno);
  }
  return {};
}

Result<int> receive_arena_fd(int unix_socket) {
  FdMessage m;
  const ssize_t n = recvmsg(unix_socket, &m.msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return os_error("receiving the arena descriptor", errno);
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  if (n != 1 || c == nullptr || c->cmsg_type != SCM_RIGHTS) {
    return make_error(Errc::invalid_argument,
                      "the peer sent no descriptor; it must call send_arena_fd()");
  }
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return fd;
}

}  // namespace scxkit
