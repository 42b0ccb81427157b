// scxkit::Program — the C++ stand-in for a loaded BPF program: a name, at most
// one arena it uses, and two bounded streams (stdout, stderr) like BPF streams.
//
// Code running inside a ProgramScope acts on behalf of that program and gets
// the kernel's 2026 direct-access model: it may dereference any pointer into
// its arena's kernel view without bounds checks. A stray access to a page that
// is not allocated is recovered with a scratch page — reads see garbage or
// zeros, writes are dropped into it — and reported as one violation record on
// the program's stderr stream, instead of crashing the process:
//
//   arena violation: WRITE arena offset 0x2000 ip 0x55d1c3a01234 tid 4711
//
// Faults in the lower half-guard, outside any scope, or on the user view are
// not recovered: they reach the previously installed handler or kill the
// process as they would without scxkit.
#pragma once

#include <memory>
#include <string>

#include "scxkit/arena.hpp"
#include "scxkit/stream.hpp"

namespace scxkit {

namespace internal {
struct ProgramContext;
ProgramContext current_program_context() noexcept;
}  // namespace internal

enum class StreamId { out = 1, err = 2 };  // BPF_STDOUT, BPF_STDERR

class Program {
 public:
  // `arena` may be null (a program that uses no arena); it must outlive the program.
  explicit Program(std::string name, Arena* arena = nullptr,
                   std::size_t stream_capacity = 64 * 1024);
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  const std::string& name() const { return name_; }
  Arena* arena() const { return arena_; }
  Stream& stream(StreamId id) { return id == StreamId::out ? out_ : err_; }

 private:
  friend class ProgramScope;
  friend internal::ProgramContext internal::current_program_context() noexcept;
  std::string name_;
  Arena* arena_;
  const void* arena_identity_;  // what the fault handler compares against
  Stream out_;
  Stream err_;
};

// RAII: the calling thread acts on behalf of `program` until the scope ends.
// Scopes nest; the innermost wins. The first scope on a thread gives it an
// alternate signal stack if it has none, so recovery works on small stacks.
class ProgramScope {
 public:
  explicit ProgramScope(Program& program);
  ~ProgramScope();
  ProgramScope(const ProgramScope&) = delete;
  ProgramScope& operator=(const ProgramScope&) = delete;

 private:
  Program* previous_;
};

}  // namespace scxkit
