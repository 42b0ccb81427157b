// scx_stall: loads the stall fixture with a small watchdog timeout and a
// victim task it keeps off the CPUs, so the kernel kicks it out with
// ERROR_STALL; prints the kernel's exit record (examples/common).
//
//   scx_stall [--timeout-ms 2000] [--pid TID | --comm NAME]
//
// Without --pid or --comm it forks its own victim, "stall_victim", which
// wakes every 10 ms and dies with the loader.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "loader.hpp"
// After loader.hpp: the skeleton names its struct scx_exit_record.
#include "stall.skel.h"

namespace {

// A child that keeps waking up: each wakeup makes it runnable again.
pid_t fork_victim() {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(0);
  prctl(PR_SET_NAME, "stall_victim");
  for (;;) usleep(10 * 1000);
}

}  // namespace

int main(int argc, char** argv) {
  const scx_example::Options opts("scx_stall", argc, argv,
                                  {{"--timeout-ms", "MS (watchdog timeout, default 2000)"},
                                   {"--pid", "TID (the task to stall)"},
                                   {"--comm", "NAME (stall every task of this name)"}});
  const auto timeout_ms = opts.number("--timeout-ms", 2000);
  pid_t victim = static_cast<pid_t>(opts.number("--pid", 0));
  const std::string comm = opts.text("--comm", "");
  pid_t own_victim = 0;
  if (victim == 0 && comm.empty()) {
    own_victim = victim = fork_victim();
    if (victim < 0) {
      std::perror("scx_stall: fork");
      return scx_example::kFailed;
    }
  }
  std::printf("scx_stall: stalling %s, watchdog timeout %llu ms\n",
              comm.empty() ? ("task " + std::to_string(victim)).c_str() : comm.c_str(),
              static_cast<unsigned long long>(timeout_ms));
  const int code = scx_example::run<stall>(
      {.prog = "scx_stall",
       .open = stall__open,
       .load = stall__load,
       .destroy = stall__destroy,
       .ops = [](stall* s) { return s->maps.stall_ops; },
       .configure =
           [&](stall& s) {
             s.struct_ops.stall_ops->timeout_ms = static_cast<__u32>(timeout_ms);
             s.rodata->victim_pid = victim;
             std::strncpy(const_cast<char*>(s.rodata->victim_comm), comm.c_str(),
                          sizeof(s.rodata->victim_comm) - 1);
           },
       .after_detach =
           [](stall& s) {
             std::printf("scx_stall: kept the victim off the CPUs %llu times\n",
                         static_cast<unsigned long long>(s.bss->nr_withheld));
           }});
  if (own_victim > 0) {
    kill(own_victim, SIGKILL);
    waitpid(own_victim, nullptr, 0);
  }
  return code;
}
