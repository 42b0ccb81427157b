// Whether BPF code on this kernel can print to its program streams: loads
// progs/stream_probe.bpf.c, runs it, and reads the line back.
#pragma once

#include <string>

#include "scxkit/error.hpp"

namespace scxkit::bpf {

// The line read back ("scxkit stream probe 42\n"). Errors: unsupported (no
// streams, no kfunc, not root), no_space (the kfunc could not allocate the
// message: it returned -ENOMEM), system_error.
Result<std::string> probe_stream_print();

}  // namespace scxkit::bpf
