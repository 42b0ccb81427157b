/* The exit callback every example scheduler shares: `.exit = (void*)example_exit`
 * in its struct sched_ext_ops. It copies the kernel's exit record into the
 * global `exit_record`, which the loader (examples/common/loader.hpp) polls to
 * notice a kick-out and prints after detaching. Include once, after vmlinux.h
 * and the libbpf headers. */
#pragma once

#include "exit_record.h"

struct scx_exit_record exit_record;

SEC("struct_ops/example_exit")
void BPF_PROG(example_exit, struct scx_exit_info* ei) {
  exit_record.exit_code = ei->exit_code;
  bpf_probe_read_kernel_str(exit_record.reason, sizeof(exit_record.reason), ei->reason);
  bpf_probe_read_kernel_str(exit_record.msg, sizeof(exit_record.msg), ei->msg);
  /* The loader polls `kind` to notice a kick-out, but reads the strings only
   * after detaching (when ops.exit has returned): a plain store does. */
  exit_record.kind = ei->kind;
}
