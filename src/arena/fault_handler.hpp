// One process-wide SIGSEGV/SIGBUS handler shared by every arena.
//
// A fault is offered to each registered claimer in turn; the first that
// claims it has resolved it (mapped a page, installed scratch) and the
// faulting instruction retries. Faults nobody claims, and signals that did not
// come from the kernel, go to the handler that was installed before ours, or
// to the default action so the process dies exactly as it would have without
// scxkit — a sent signal the process ignored before stays ignored. Everything
// on the handler's path is async-signal-safe.
#pragma once

#include <cstdint>

#include "scxkit/error.hpp"

namespace scxkit::internal {

struct FaultInfo {
  std::uintptr_t addr;
  std::uintptr_t ip;  // the faulting instruction
  bool write;
};

class FaultClaimer {
 public:
  // Called from the signal handler: async-signal-safe code only.
  virtual bool claim_fault(const FaultInfo& fault) noexcept = 0;

 protected:
  ~FaultClaimer() = default;
};

// Installs the handler once per process; later calls do nothing.
Result<void> install_fault_handler();
Result<void> register_fault_claimer(FaultClaimer* claimer);
// After this returns no handler is still looking at `claimer`.
void unregister_fault_claimer(FaultClaimer* claimer);

}  // namespace scxkit::internal
