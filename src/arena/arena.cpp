#include "scxkit/arena.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "arena/arena_impl.hpp"

namespace scxkit {

namespace {
std::uint64_t as_u64(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}
}  // namespace

Arena::Arena(std::unique_ptr<internal::ArenaImpl> impl) : impl_(std::move(impl)) {
  user_base_ = impl_->user_vm_start() & ~(k4GiB - 1);
  kern_base_ = impl_->kern_vm_start();
}
Arena::Arena(Arena&&) noexcept = default;
Arena& Arena::operator=(Arena&&) noexcept = default;
Arena::~Arena() = default;

Result<Arena> Arena::create(const ArenaOptions& options) {
  auto impl = internal::ArenaImpl::create(options);
  if (!impl) return tl::unexpected(impl.error());
  return Arena(std::move(*impl));
}

Result<Arena> Arena::open(std::string_view name) {
  auto impl = internal::ArenaImpl::open_named(name);
  if (!impl) return tl::unexpected(impl.error());
  return Arena(std::move(*impl));
}

Result<Arena> Arena::open_fd(int fd) {
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return os_error("duplicating the arena descriptor", errno);
  auto impl = internal::ArenaImpl::open(own);
  if (!impl) return tl::unexpected(impl.error());
  return Arena(std::move(*impl));
}

Result<void*> Arena::alloc_pages(void* addr, std::uint32_t count, int node) {
  auto r = impl_->alloc(as_u64(addr), count, node, true);
  if (!r) return tl::unexpected(r.error());
  return reinterpret_cast<void*>(*r);
}

Result<void*> Arena::try_alloc_pages(void* addr, std::uint32_t count, int node) {
  auto r = impl_->alloc(as_u64(addr), count, node, false);
  if (!r) return tl::unexpected(r.error());
  return reinterpret_cast<void*>(*r);
}

Result<PauseStats> Arena::free_pages(const void* addr, std::uint32_t count) {
  return impl_->free(as_u64(addr), count);
}

Result<void> Arena::reserve_pages(const void* addr, std::uint32_t count) {
  return impl_->reserve(as_u64(addr), count);
}

std::uint32_t Arena::max_entries() const {
  return impl_->max_entries();
}
std::uint32_t Arena::map_flags() const {
  return impl_->map_flags();
}
std::uint64_t Arena::user_vm_start() const {
  return impl_->user_vm_start();
}
std::uint64_t Arena::user_vm_end() const {
  return impl_->user_vm_end();
}
std::uint64_t Arena::kern_vm_start() const {
  return impl_->kern_vm_start();
}
int Arena::fd() const {
  return impl_->fd();
}
PageState Arena::page_state(std::uint32_t off) const {
  return impl_->page_state(off);
}
ArenaStats Arena::stats() const {
  return impl_->stats();
}
PauseStats Arena::teardown() {
  return impl_->teardown();
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
