// SPDX-License-Identifier: GPL-2.0
/* stall: a test fixture that leaves one chosen task runnable forever, so the
 * kernel's watchdog kicks the scheduler out with ERROR_STALL after
 * `timeout_ms` (the loader sets it small). The victim is named by task id or
 * by comm (set by the loader before load); every other task runs from the
 * kernel's global queue. select_cpu never dispatches directly, so every
 * wakeup of the victim reaches enqueue, which keeps it. Linux 7.3 rescues
 * tasks a scheduler leaves waiting (a small CPU budget, SCX_DSQ_RESCUE)
 * unless the scheduler opts out: this one does, or nothing would stall. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "example_exit.bpf.h"

char _license[] SEC("license") = "GPL";

const volatile __s32 victim_pid = 0; /* 0: match by comm */
const volatile char victim_comm[16] = "";

/* How many times the victim was kept off the CPUs. */
__u64 nr_withheld;

static bool is_victim(const struct task_struct* p) {
  if (victim_pid != 0) return p->pid == victim_pid;
  if (victim_comm[0] == '\0') return false;
  for (int i = 0; i < sizeof(p->comm); i++) {
    if (p->comm[i] != victim_comm[i]) return false;
    if (victim_comm[i] == '\0') return true;
  }
  return true;
}

SEC("struct_ops/stall_select_cpu")
s32 BPF_PROG(stall_select_cpu, struct task_struct* p, s32 prev_cpu, u64 wake_flags) {
  return prev_cpu;
}

SEC("struct_ops/stall_enqueue")
void BPF_PROG(stall_enqueue, struct task_struct* p, u64 enq_flags) {
  if (is_victim(p)) {
    /* Neither queued nor dispatched: runnable, and never run again. */
    __sync_fetch_and_add(&nr_withheld, 1);
    return;
  }
  scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops stall_ops = {
    .select_cpu = (void*)stall_select_cpu,
    .enqueue = (void*)stall_enqueue,
    .exit = (void*)example_exit,
    .rescue_bandwidth_ppt = SCX_RESCUE_DISABLE,
    .name = "stall",
};
