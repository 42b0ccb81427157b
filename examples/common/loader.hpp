// What every example scheduler's loader shares, so each loader is only what
// makes its scheduler different: options, load, attach through a struct_ops
// link, hold until SIGINT/SIGTERM or a kernel kick-out, detach, and print the
// kernel's exit record in one format:
//
//   scx_fifo: exit kind 64 (UNREG) code 0, detached on request; reason: unregistered from user
//   space; message: scx_stall: exit kind 1026 (ERROR_STALL) code 0, kicked out by the kernel;
//   reason: runnable task stall; message: victim[93] failed to run for 2.512s
//
// The harness reads that line from the scheduler's log (docs/HARNESS.md).
// Newlines in the message are written as "\n".
#pragma once

#include <bpf/libbpf.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "exit_record.h"

namespace scx_example {

// Exit codes of every example loader.
inline constexpr int kDetachedOnRequest = 0;
inline constexpr int kFailed = 1;     // open, load (the verifier) or attach failed
inline constexpr int kKickedOut = 2;  // the kernel detached it (stall, scx_bpf_error, sysrq-S, ...)
inline constexpr int kUsage = 64;

// SIGINT and SIGTERM ask attach_and_hold() to detach. Call it before loading,
// so a stop request during a slow load is not lost.
void catch_stop_signals();
bool stop_requested();

// Says what failed to load (libbpf has printed why, the verifier's log
// included) and returns kFailed.
int load_failed(const char* prog);

// Called about every 50 ms while attached, with the time since attaching.
using WhileAttached = std::function<void(std::chrono::milliseconds since_attach)>;

// Attaches the struct_ops map `ops` through a link (a killed loader closes the
// link, and the kernel detaches the scheduler), holds it until a stop signal
// or until `record.kind` says the kernel kicked it out, detaches, prints the
// exit record and returns kDetachedOnRequest or kKickedOut (kFailed if it
// could not attach). `record` is the BPF side's `exit_record` (example_exit.bpf.h).
int attach_and_hold(const char* prog, bpf_map* ops, const scx_exit_record& record,
                    const WhileAttached& while_attached = {});

// One example scheduler: its skeleton's functions, and what its loader
// does beyond the shared part.
template <typename Skel>
struct Scheduler {
  const char* prog;  // the loader's name, first on every line it prints
  Skel* (*open)();
  int (*load)(Skel*);
  void (*destroy)(Skel*);
  bpf_map* (*ops)(Skel*);                // the struct_ops map to attach
  std::function<void(Skel&)> configure;  // after open, before load: rodata, struct_ops fields
  std::function<void(Skel&, std::chrono::milliseconds since_attach)> while_attached;
};

// The whole life of an example loader: stop signals, open, configure, load,
// attach_and_hold, destroy. Returns the loader's exit code.
template <typename Skel>
int run(const Scheduler<Skel>& s) {
  catch_stop_signals();
  Skel* skel = s.open();
  if (skel == nullptr) return load_failed(s.prog);
  if (s.configure) s.configure(*skel);
  if (s.load(skel) != 0) {
    s.destroy(skel);
    return load_failed(s.prog);
  }
  WhileAttached tick;
  if (s.while_attached) tick = [&](std::chrono::milliseconds t) { s.while_attached(*skel, t); };
  const int code = attach_and_hold(s.prog, s.ops(skel), skel->bss->exit_record, tick);
  s.destroy(skel);
  return code;
}

// `--name value` options. Anything else, or a name not in `known`, prints
// the usage line and exits with kUsage.
class Options {
 public:
  Options(const char* prog, int argc, char** argv, std::map<std::string, std::string> known);
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string text(const std::string& name, std::string fallback) const;
  std::uint64_t number(const std::string& name, std::uint64_t fallback) const;

 private:
  [[noreturn]] void usage(const std::string& why) const;
  const char* prog_;
  std::map<std::string, std::string> known_;  // name -> what it means
  std::map<std::string, std::string> values_;
};

}  // namespace scx_example
