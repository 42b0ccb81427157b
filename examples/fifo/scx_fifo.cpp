// scx_fifo: loads the fifo scheduler and holds it attached until SIGINT/SIGTERM
// or a kernel kick-out, then prints the kernel's exit record (examples/common).
#include "loader.hpp"
// After loader.hpp: the skeleton names its struct scx_exit_record.
#include "fifo.skel.h"

int main() {
  return scx_example::run<fifo>({.prog = "scx_fifo",
                                 .open = fifo__open,
                                 .load = fifo__load,
                                 .destroy = fifo__destroy,
                                 .ops = [](fifo* s) { return s->maps.fifo_ops; }});
}
