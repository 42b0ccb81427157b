// Sees every access, in this process, to a page of an arena view that is
// missing from the arena's file — and resolves it on a thread of its own.
//
// A page is missing when it was never allocated or when a free punched it
// out of the file; a punch zaps that page in every process's mappings at
// once, like the kernel zaps every mapping of a freed arena page. So a free
// needs to tell no other process anything: their next access is a missing
// page event here (userfaultfd, MISSING mode). The thread that made the
// access sleeps in the kernel until the handler has decided, which also
// serves threads that block every signal.
//
// One server per arena and process; a forked child's mappings are not watched
// (userfaultfd registrations are not inherited).
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "scxkit/error.hpp"

namespace scxkit::internal {

class MissingPageHandler {
 public:
  // Runs on the server thread (it may take locks, but must never touch the
  // watched views); the faulting thread retries its access afterwards.
  virtual void resolve_missing(std::uintptr_t addr) noexcept = 0;

 protected:
  ~MissingPageHandler() = default;
};

class ViewServer {
 public:
  struct Range {
    std::uintptr_t start;
    std::size_t size;
  };
  static Result<std::unique_ptr<ViewServer>> start(MissingPageHandler& handler, Range a, Range b);
  // Stops the thread; after this no resolve_missing() call is running.
  ~ViewServer();
  ViewServer(const ViewServer&) = delete;
  ViewServer& operator=(const ViewServer&) = delete;

 private:
  explicit ViewServer(MissingPageHandler& h) : handler_(h) {}
  static void* run(void* self);
  void serve() noexcept;

  MissingPageHandler& handler_;
  int uffd_ = -1;
  int stop_fd_ = -1;
  pthread_t thread_{};
  bool running_ = false;
  pid_t owner_ = 0;  // a forked child has no thread to stop
};

}  // namespace scxkit::internal
