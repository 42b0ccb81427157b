// SPDX-License-Identifier: GPL-2.0
/* error: a test fixture that calls scx_bpf_error() on its N-th dispatch after
 * the loader arms it, so the kernel kicks it out with ERROR_BPF and the
 * fixture's message. Until then every task runs from the kernel's global
 * queue. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "example_exit.bpf.h"

char _license[] SEC("license") = "GPL";

const volatile __u64 error_after = 100; /* dispatches, counted once armed */
bool armed;                             /* set by the loader */
__u64 nr_dispatches;

SEC("struct_ops/error_enqueue")
void BPF_PROG(error_enqueue, struct task_struct* p, u64 enq_flags) {
  scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SEC("struct_ops/error_dispatch")
void BPF_PROG(error_dispatch, s32 cpu, struct task_struct* prev) {
  if (!armed) return;
  const u64 n = __sync_fetch_and_add(&nr_dispatches, 1) + 1;
  if (n != error_after) return;
  static char fmt[] = "error fixture: scx_bpf_error after %llu dispatches, as asked";
  u64 args[] = {n};
  scx_bpf_error_bstr(fmt, args, sizeof(args));
}

SEC(".struct_ops.link")
struct sched_ext_ops error_ops = {
    .enqueue = (void*)error_enqueue,
    .dispatch = (void*)error_dispatch,
    .exit = (void*)example_exit,
    .name = "error",
};
