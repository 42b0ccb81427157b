// SPDX-License-Identifier: GPL-2.0
/* One line to the program's stdout stream, for `scxkit doctor`: proves BPF
 * code on this kernel can print to a stream, not just that streams exist. */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "scxkit/bpf/stream.h"

SEC("syscall")
int stream_probe(void* ctx) {
  return scxkit_stream_printk(SCXKIT_STDOUT, "scxkit stream probe %d\n", 42);
}

char LICENSE[] SEC("license") = "GPL";
