// The allocators `scxkit arena bench alloc` compares, behind one interface of
// plain function pointers so that every peer pays the same call overhead.
// mimalloc and jemalloc are Debian's shared libraries, loaded with
// dlopen(RTLD_LOCAL) and called through their own APIs (mi_malloc/mi_free,
// mallocx/dallocx), so neither replaces glibc's malloc in this process.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace scxkit::cli {

struct AllocPeer {
  std::string name;
  void* (*alloc)(std::size_t) = nullptr;
  void (*free)(void*) = nullptr;
  std::string unavailable;  // why the peer cannot run, when it cannot
};

// jemalloc's library needs more static TLS than glibc leaves for dlopen;
// when that is what stops it, this re-executes the program once with a
// glibc tunable that reserves room (returns only when it did not re-execute).
void reexec_for_jemalloc_if_needed();

// Loads mimalloc and jemalloc; always returns both, marked unavailable when
// their libraries cannot be loaded.
std::vector<AllocPeer> library_peers();

}  // namespace scxkit::cli
