// The thread's current program, readable from a signal handler: an
// initial-exec thread-local never calls __tls_get_addr lazily.
#pragma once

namespace scxkit {
class Program;
}

namespace scxkit::internal {

struct ProgramContext {
  Program* program;
  const void* arena;  // the ArenaImpl the program uses, or null
};

ProgramContext current_program_context() noexcept;
// Writes one record to the program's stderr stream; async-signal-safe.
void report_to_program(Program* program, const char* text, unsigned long length) noexcept;

}  // namespace scxkit::internal
