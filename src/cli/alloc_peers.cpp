#include "cli/alloc_peers.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace scxkit::cli {

namespace {

constexpr const char* kJemalloc = "libjemalloc.so.2";
constexpr const char* kMimalloc = "libmimalloc.so.2";
constexpr const char* kReexecMark = "SCXKIT_BENCH_REEXECUTED";

using MallocxFn = void* (*)(std::size_t, int);
using DallocxFn = void (*)(void*, int);
MallocxFn je_mallocx = nullptr;
DallocxFn je_dallocx = nullptr;

void* je_alloc(std::size_t n) {
  return je_mallocx(n, 0);
}
void je_free(void* p) {
  je_dallocx(p, 0);
}

std::string dl_error() {
  const char* e = dlerror();
  return e != nullptr ? e : "unknown dlopen error";
}

}  // namespace

void reexec_for_jemalloc_if_needed() {
  if (std::getenv(kReexecMark) != nullptr) return;
  void* h = dlopen(kJemalloc, RTLD_NOW | RTLD_LOCAL);
  if (h != nullptr || dl_error().find("static TLS") == std::string::npos) return;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string cmdline{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::string> args;
  for (std::size_t i = 0; i < cmdline.size();) {
    const std::size_t end = cmdline.find('\0', i);
    args.push_back(cmdline.substr(i, end - i));
    i = end == std::string::npos ? cmdline.size() : end + 1;
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string tunables = "glibc.rtld.optional_static_tls=65536";
  if (const char* old = std::getenv("GLIBC_TUNABLES")) tunables = std::string(old) + ":" + tunables;
  setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
  setenv(kReexecMark, "1", 1);
  execv("/proc/self/exe", argv.data());
  unsetenv(kReexecMark);  // exec failed: run without jemalloc
}

std::vector<AllocPeer> library_peers() {
  std::vector<AllocPeer> peers;
  AllocPeer mi{"mimalloc"};
  if (void* h = dlopen(kMimalloc, RTLD_NOW | RTLD_LOCAL)) {
    mi.alloc = reinterpret_cast<void* (*)(std::size_t)>(dlsym(h, "mi_malloc"));
    mi.free = reinterpret_cast<void (*)(void*)>(dlsym(h, "mi_free"));
    if (mi.alloc == nullptr || mi.free == nullptr) mi.unavailable = "mi_malloc/mi_free missing";
  } else {
    mi.unavailable = dl_error();
  }
  peers.push_back(mi);
  AllocPeer je{"jemalloc"};
  if (void* h = dlopen(kJemalloc, RTLD_NOW | RTLD_LOCAL)) {
    je_mallocx = reinterpret_cast<MallocxFn>(dlsym(h, "mallocx"));
    je_dallocx = reinterpret_cast<DallocxFn>(dlsym(h, "dallocx"));
    if (je_mallocx != nullptr && je_dallocx != nullptr) {
      je.alloc = je_alloc;
      je.free = je_free;
    } else {
      je.unavailable = "mallocx/dallocx missing";
    }
  } else {
    je.unavailable = dl_error();
  }
  peers.push_back(je);
  return peers;
}

}  // namespace scxkit::cli
