#include "arena/emulated/view_server.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "arena/os.hpp"

namespace scxkit::internal {

Result<std::unique_ptr<ViewServer>> ViewServer::start(MissingPageHandler& handler, Range a,
                                                      Range b) {
  std::unique_ptr<ViewServer> s(new ViewServer(handler));
  s->owner_ = getpid();
  auto uffd = os::userfaultfd_open();
  if (!uffd) return tl::unexpected(uffd.error());
  s->uffd_ = *uffd;
  for (const Range& r : {a, b}) {
    if (auto reg = os::userfaultfd_register(s->uffd_, r.start, r.size); !reg) {
      return tl::unexpected(reg.error());
    }
  }
  s->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->stop_fd_ < 0) return os_error("eventfd for the arena's view server", errno);
  // The thread takes no signals: the application's handlers never run on it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const int rc = pthread_create(&s->thread_, nullptr, &ViewServer::run, s.get());
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) return os_error("starting the arena's view server thread", rc);
  s->running_ = true;
  return s;
}

void* ViewServer::run(void* self) {
  static_cast<ViewServer*>(self)->serve();
  return nullptr;
}

void ViewServer::serve() noexcept {
  pollfd fds[2] = {{uffd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if ((fds[1].revents & POLLIN) != 0) return;
    for (;;) {
      const std::int64_t addr = os::userfaultfd_next_fault(uffd_);
      if (addr <= 0) break;
      handler_.resolve_missing(static_cast<std::uintptr_t>(addr));
      const std::uintptr_t page = static_cast<std::uintptr_t>(addr) & ~std::uintptr_t{4095};
      os::userfaultfd_wake(uffd_, page, 4096);
    }
  }
}

ViewServer::~ViewServer() {
  if (running_ && getpid() == owner_) {
    const std::uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
    pthread_join(thread_, nullptr);
  }
  if (stop_fd_ >= 0) close(stop_fd_);
  if (uffd_ >= 0) close(uffd_);
}

}  // namespace scxkit::internal
