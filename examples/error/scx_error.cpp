// scx_error: loads the error fixture, arms it --arm-ms after attaching, and it
// calls scx_bpf_error() on the --after-th dispatch from then on; prints the
// kernel's exit record (examples/common).
//
//   scx_error [--after 100] [--arm-ms 0]
#include <cstdio>

#include "loader.hpp"
// After loader.hpp: the skeleton names its struct scx_exit_record.
#include "error.skel.h"

int main(int argc, char** argv) {
  const scx_example::Options opts(
      "scx_error", argc, argv,
      {{"--after", "N (fail on the N-th dispatch once armed, default 100)"},
       {"--arm-ms", "MS (arm this long after attaching, default 0)"}});
  const auto after = opts.number("--after", 100);
  const auto arm_ms = std::chrono::milliseconds(opts.number("--arm-ms", 0));
  if (after == 0) {
    std::fprintf(stderr, "scx_error: --after must be at least 1\n");
    return scx_example::kUsage;
  }
  return scx_example::run<error>({.prog = "scx_error",
                                  .open = error__open,
                                  .load = error__load,
                                  .destroy = error__destroy,
                                  .ops = [](error* s) { return s->maps.error_ops; },
                                  .configure = [&](error& s) { s.rodata->error_after = after; },
                                  .while_attached =
                                      [&](error& s, std::chrono::milliseconds t) {
                                        if (t >= arm_ms) s.bss->armed = true;
                                      },
                                  .after_detach =
                                      [](error& s) {
                                        std::printf(
                                            "scx_error: %llu dispatches counted while armed\n",
                                            static_cast<unsigned long long>(s.bss->nr_dispatches));
                                      }});
}
