#include "scxkit/program.hpp"

#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <string_view>

#include "arena/emulated/arena_impl.hpp"
#include "arena/program_context.hpp"

namespace scxkit {

namespace {

// One pointer, so a signal never sees a half-switched scope.
thread_local Program* tls_program __attribute__((tls_model("initial-exec"))) = nullptr;

// One alternate signal stack per thread that runs programs, released at thread exit.
class AltStack {
 public:
  void ensure() {
    if (mem_ != nullptr) return;
    stack_t current{};
    if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) == 0) return;
    void* p = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;  // recovery then runs on the thread's own stack
    stack_t ss{};
    ss.ss_sp = p;
    ss.ss_size = kSize;
    if (sigaltstack(&ss, nullptr) != 0) {
      munmap(p, kSize);
      return;
    }
    mem_ = p;
  }
  ~AltStack() {
    if (mem_ == nullptr) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
    munmap(mem_, kSize);
  }

 private:
  static constexpr std::size_t kSize = 64 * 1024;
  void* mem_ = nullptr;
};

thread_local AltStack tls_alt_stack;

}  // namespace

Program::Program(std::string name, Arena* arena, std::size_t stream_capacity)
    : name_(std::move(name)),
      arena_(arena),
      arena_identity_(arena != nullptr ? internal::ArenaAccess::emulation(*arena) : nullptr),
      out_(stream_capacity),
      err_(stream_capacity) {}

ProgramScope::ProgramScope(Program& program) : previous_(tls_program) {
  tls_alt_stack.ensure();
  std::atomic_signal_fence(std::memory_order_seq_cst);
  tls_program = &program;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

ProgramScope::~ProgramScope() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  tls_program = previous_;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

namespace internal {

ProgramContext current_program_context() noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  Program* p = tls_program;
  return ProgramContext{p, p != nullptr ? p->arena_identity_ : nullptr};
}

void report_to_program(Program* program, const char* text, unsigned long length) noexcept {
  program->stream(StreamId::err).write(std::string_view(text, length));
}

}  // namespace internal
}  // namespace scxkit
