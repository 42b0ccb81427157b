// scx_reject: tries to load the reject fixture, which the verifier refuses:
// libbpf prints the verifier's log, and the loader exits with status 1
// (examples/common). Were it ever accepted, it would attach like any other.
#include "loader.hpp"
// After loader.hpp: the skeleton names its struct scx_exit_record.
#include "reject.skel.h"

int main() {
  return scx_example::run<reject>({.prog = "scx_reject",
                                   .open = reject__open,
                                   .load = reject__load,
                                   .destroy = reject__destroy,
                                   .ops = [](reject* s) { return s->maps.reject_ops; }});
}
