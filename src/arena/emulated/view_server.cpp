#include "arena/emulated/view_server.hpp"

#include "arena/os.hpp"

namespace scxkit::internal {

Result<std::unique_ptr<ViewServer>> ViewServer::start(MissingPageHandler& handler, Range a,
                                                      Range b) {
  std::unique_ptr<ViewServer> s(new ViewServer(handler));
  s->owner_ = os::current_pid();
  auto uffd = os::userfaultfd_open();
  if (!uffd) return tl::unexpected(uffd.error());
  s->uffd_ = *uffd;
  for (const Range& r : {a, b}) {
    if (auto reg = os::userfaultfd_register(s->uffd_, r.start, r.size); !reg) {
      return tl::unexpected(reg.error());
    }
  }
  auto stop = os::event_open();
  if (!stop) return tl::unexpected(stop.error());
  s->stop_fd_ = *stop;
  auto thread =
      os::start_thread_without_signals(&ViewServer::run, s.get(), "the arena's view server thread");
  if (!thread) return tl::unexpected(thread.error());
  s->thread_ = *thread;
  s->running_ = true;
  return s;
}

void* ViewServer::run(void* self) {
  static_cast<ViewServer*>(self)->serve();
  return nullptr;
}

void ViewServer::serve() noexcept {
  while (!os::wait_readable_or_stopped(uffd_, stop_fd_)) {
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
  if (running_ && os::current_pid() == owner_) {
    os::event_signal(stop_fd_);
    os::join_thread(thread_);
  }
  if (stop_fd_ >= 0) os::close_fd(stop_fd_);
  if (uffd_ >= 0) os::close_fd(uffd_);
}

}  // namespace scxkit::internal
