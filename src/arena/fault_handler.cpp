#include "arena/fault_handler.hpp"

#include <sched.h>
#include <signal.h>
#include <ucontext.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <mutex>

namespace scxkit::internal {

namespace {

constexpr std::size_t kMaxClaimers = 1024;
std::array<std::atomic<FaultClaimer*>, kMaxClaimers> g_claimers{};
std::atomic<std::size_t> g_claimers_used{0};  // slots [0, used) may be non-null
std::atomic<int> g_handlers_running{0};
struct sigaction g_prev_segv {};
struct sigaction g_prev_bus {};

void pass_on(int sig, siginfo_t* info, void* uctx) {
  const struct sigaction& prev = sig == SIGSEGV ? g_prev_segv : g_prev_bus;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, uctx);
    return;
  }
  if ((prev.sa_flags & SA_SIGINFO) == 0 && prev.sa_handler != SIG_DFL &&
      prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Sent with kill() to a process that ignored it: ignored, as without us. (A
  // real fault cannot be ignored; the kernel kills for it below either way.)
  if ((prev.sa_flags & SA_SIGINFO) == 0 && prev.sa_handler == SIG_IGN && info->si_code <= 0) {
    return;
  }
  // Default action. A fault re-executes the instruction and dies of it with
  // the kernel's own siginfo; a sent signal is raised again (it stays pending
  // until this handler returns).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  if (info->si_code <= 0) raise(sig);
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
  const int saved_errno = errno;
  // si_code > 0: raised by the kernel for a real fault, not by kill/raise/sigqueue.
  if (info->si_code > 0) {
    const auto* uc = static_cast<const ucontext_t*>(uctx);
    const FaultInfo fault{
        reinterpret_cast<std::uintptr_t>(info->si_addr),
        static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]),
        (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0,  // x86 page-fault error code: W bit
    };
    g_handlers_running.fetch_add(1);
    bool claimed = false;
    const std::size_t used = g_claimers_used.load();
    for (std::size_t i = 0; i < used; ++i) {
      FaultClaimer* c = g_claimers[i].load();
      if (c != nullptr && c->claim_fault(fault)) {
        claimed = true;
        break;
      }
    }
    g_handlers_running.fetch_sub(1);
    if (claimed) {
      errno = saved_errno;
      return;
    }
  }
  errno = saved_errno;
  pass_on(sig, info, uctx);
}

}  // namespace

Result<void> install_fault_handler() {
  static std::once_flag once;
  static int install_errno = 0;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &g_prev_segv) != 0 || sigaction(SIGBUS, &sa, &g_prev_bus) != 0) {
      install_errno = errno;
    }
  });
  if (install_errno != 0) return os_error("installing the arena fault handler", install_errno);
  return {};
}

Result<void> register_fault_claimer(FaultClaimer* claimer) {
  for (std::size_t i = 0; i < kMaxClaimers; ++i) {
    FaultClaimer* expected = nullptr;
    if (g_claimers[i].compare_exchange_strong(expected, claimer)) {
      std::size_t used = g_claimers_used.load();
      while (used < i + 1 && !g_claimers_used.compare_exchange_weak(used, i + 1)) {
      }
      return {};
    }
  }
  return make_error(Errc::no_space,
                    "too many arenas open in this process (limit 1024); "
                    "tear down arenas that are no longer used");
}

void unregister_fault_claimer(FaultClaimer* claimer) {
  for (auto& slot : g_claimers) {
    FaultClaimer* expected = claimer;
    slot.compare_exchange_strong(expected, nullptr);
  }
  // A handler that loaded `claimer` before it was cleared is still counted.
  while (g_handlers_running.load() != 0) sched_yield();
}

}  // namespace scxkit::internal
