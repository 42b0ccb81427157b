/* BPF arenas from BPF C: the `__arena` address space, the arena kfuncs and
 * arena pointers that C++ reads as scxkit::ArenaPtr<T>.
 *
 * Include after vmlinux.h with BPF_NO_KFUNC_PROTOTYPES defined (vmlinux.h
 * from a 6.18 kernel declares the kfuncs with BTF type tags clang then
 * rejects next to `__arena`):
 *
 *   #define BPF_NO_KFUNC_PROTOTYPES
 *   #include "vmlinux.h"
 *   #include <bpf/bpf_helpers.h>
 *   #include "scxkit/bpf/arena.h"
 *
 * A struct shared by BPF and C++ stores links as SCXKIT_ARENA_PTR(T): a
 * 32-bit arena offset, `T __arena *` once converted with scxkit_arena_ptr()
 * on the BPF side and ArenaPtr<T> on the C++ side. Offset 0 is null in both. */
#ifndef SCXKIT_BPF_ARENA_H
#define SCXKIT_BPF_ARENA_H

#ifdef __bpf__

#define __arena __attribute__((address_space(1)))

void __arena* bpf_arena_alloc_pages(void* map, void __arena* addr, __u32 page_cnt, int node_id,
                                    __u64 flags) __ksym __weak;
void bpf_arena_free_pages(void* map, void __arena* ptr, __u32 page_cnt) __ksym __weak;
int bpf_arena_reserve_pages(void* map, void __arena* ptr, __u32 page_cnt) __ksym __weak;

/* The verifier ties a program to its arena when the program names the arena
 * map; a program that only dereferences arena pointers it was handed must
 * still name it, or it is refused ("addr_space_cast insn can only be used in a
 * program that has an associated arena"). Call this once in such a program. */
#define scxkit_arena_use(map) asm volatile("" : : "r"(&(map)))

#define SCXKIT_ARENA_PTR(T) __u32
/* The arena pointer for a 32-bit arena offset (0 gives NULL). */
#define scxkit_arena_ptr(type, off) ((type __arena*)(__u64)(__u32)(off))
/* The 32-bit arena offset of an arena pointer (NULL gives 0). */
#define scxkit_arena_off(ptr) ((__u32)(__u64)(ptr))

#else /* C++ */

#include "scxkit/arena_ptr.hpp"
#define SCXKIT_ARENA_PTR(T) scxkit::ArenaPtr<T>

#endif

#endif
