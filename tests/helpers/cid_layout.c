/* The cid types' layout as the host C compiler sees cid_types.h, for the
 * C/C++ layout test in src/cmask/cmask_bpf_test.cpp. */
#include <linux/types.h>
#include <stddef.h>

#include "scxkit/bpf/cid_types.h"

struct scxkit_c_layout {
  unsigned long cmask_size, cmask_align, base, nr_cids, alloc_words, bits;
  unsigned long topo_size, core_cid, core_idx, llc_cid, llc_idx, node_cid, node_idx, shard_cid,
      shard_idx;
  unsigned long bytes_for_100_cids;
};

struct scxkit_c_layout scxkit_c_cid_layout(void) {
  struct scxkit_c_layout l = {
      .cmask_size = sizeof(struct scx_cmask),
      .cmask_align = _Alignof(struct scx_cmask),
      .base = offsetof(struct scx_cmask, base),
      .nr_cids = offsetof(struct scx_cmask, nr_cids),
      .alloc_words = offsetof(struct scx_cmask, alloc_words),
      .bits = offsetof(struct scx_cmask, bits),
      .topo_size = sizeof(struct scx_cid_topo),
      .core_cid = offsetof(struct scx_cid_topo, core_cid),
      .core_idx = offsetof(struct scx_cid_topo, core_idx),
      .llc_cid = offsetof(struct scx_cid_topo, llc_cid),
      .llc_idx = offsetof(struct scx_cid_topo, llc_idx),
      .node_cid = offsetof(struct scx_cid_topo, node_cid),
      .node_idx = offsetof(struct scx_cid_topo, node_idx),
      .shard_cid = offsetof(struct scx_cid_topo, shard_cid),
      .shard_idx = offsetof(struct scx_cid_topo, shard_idx),
      .bytes_for_100_cids = SCXK_CMASK_BYTES(100),
  };
  return l;
}
