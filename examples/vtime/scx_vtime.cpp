// scx_vtime: loads the weighted virtual-time scheduler and holds it attached
// until SIGINT/SIGTERM or a kernel kick-out, then prints the kernel's exit
// record (examples/common).
#include "loader.hpp"
// After loader.hpp: the skeleton names its struct scx_exit_record.
#include "vtime.skel.h"

int main() {
  return scx_example::run<vtime>({.prog = "scx_vtime",
                                  .open = vtime__open,
                                  .load = vtime__load,
                                  .destroy = vtime__destroy,
                                  .ops = [](vtime* s) { return s->maps.vtime_ops; }});
}
