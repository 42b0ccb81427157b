// The OS primitives the arena stands on, behind one small interface.
// Everything here is a thin wrapper over one system call; the guard and
// punch calls are async-signal-safe and used from the fault handler.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "scxkit/error.hpp"

namespace scxkit::internal::os {

// Address space with no access and no backing; nullptr-hint picks anywhere.
Result<std::uintptr_t> reserve(std::size_t size);
// Maps `size` bytes of fd at `offset` over [addr, addr+size), shared, read-write.
// With replace=false the range must be free (MAP_FIXED_NOREPLACE).
Result<void> map_shared(std::uintptr_t addr, std::size_t size, int fd, std::uint64_t offset,
                        bool replace);
// munmap fails only for a range that is not page aligned or not user space,
// which callers never pass; its result is not reported.
void unmap(std::uintptr_t addr, std::size_t size);
// Maps `size` bytes of fd at `offset` wherever the kernel picks, shared, read-write.
Result<std::uintptr_t> map_file(std::size_t size, int fd, std::uint64_t offset);
// Like the kernel's arena_get_unmapped_area(): reserves `size` bytes that do
// not cross a 4 GiB boundary (twice the size is taken, the slack returned).
Result<std::uintptr_t> reserve_within_4gib(std::size_t size);
// Online NUMA nodes: one past the highest id in /sys/devices/system/node/online.
int online_numa_nodes();

// Guard markers (MADV_GUARD_INSTALL/REMOVE, Linux 6.13+): a guarded page of a
// mapping faults with SIGSEGV in this process only, without splitting the VMA.
// Return 0 or an errno value.
int guard_install(std::uintptr_t addr, std::size_t size) noexcept;
int guard_remove(std::uintptr_t addr, std::size_t size) noexcept;

void close_fd(int fd) noexcept;  // close(2) always releases fd; its errors are not about us
// Files. Errors carry the errno (Error::sys_errno), e.g. ENOENT.
Result<int> open_rw(const std::string& path);
// An unnamed file in `dir` (O_TMPFILE), to be linked to a name later.
Result<int> create_unnamed(const char* dir);
Result<int> create_memfd(const char* name);
// Gives the unnamed file behind fd the name `path` (0 or an errno value: EEXIST
// when the name is taken).
int link_fd(int fd, const std::string& path) noexcept;
// 0 or an errno value.
int unlink_path(const std::string& path) noexcept;
// Whether fd and path name the same file right now.
bool same_file(int fd, const std::string& path) noexcept;
Result<void> resize_file(int fd, std::uint64_t size);
Result<std::uint64_t> file_size(int fd);
// The names in `dir` (without "." and "..").
Result<std::vector<std::string>> list_dir(const char* dir);

// Frees the file's pages in [offset, offset+size): every mapping of them reads
// zero afterwards. Returns 0 or an errno value.
int punch_hole(int fd, std::uint64_t offset, std::uint64_t size) noexcept;
// Gives the file zeroed pages in [offset, offset+size) (fallocate): a later
// access in any process is an ordinary minor fault. Returns 0 or an errno value.
int instantiate(int fd, std::uint64_t offset, std::uint64_t size) noexcept;

// userfaultfd, non-blocking and close-on-exec. Falls back to user-mode-only
// faults where the unprivileged kind is all that is allowed.
Result<int> userfaultfd_open();
// Reports every access to a page of [addr, addr+size) that is missing from
// the file behind it as an event on `uffd` (MISSING mode).
Result<void> userfaultfd_register(int uffd, std::uintptr_t addr, std::size_t size);
// The next missing-page event's address, 0 when none is queued, or an errno
// value (negated) on failure.
std::int64_t userfaultfd_next_fault(int uffd) noexcept;
// Lets the threads waiting on [addr, addr+size) retry their access.
int userfaultfd_wake(int uffd, std::uintptr_t addr, std::size_t size) noexcept;

// A server thread's plumbing. event_open() makes an eventfd (non-blocking,
// close-on-exec) that event_signal() makes readable.
Result<int> event_open();
void event_signal(int fd) noexcept;
// Waits until `fd` or `stop_fd` is readable; true when `stop_fd` is. An
// interrupted or failed wait (no memory) is retried after a short sleep: a
// server that stopped serving would leave its callers waiting forever.
bool wait_readable_or_stopped(int fd, int stop_fd) noexcept;
// Starts a thread that takes no signals, so an application's handlers never
// run on it.
Result<pthread_t> start_thread_without_signals(void* (*fn)(void*), void* arg, const char* what);
void join_thread(pthread_t thread) noexcept;

// Open-file-description locks on one byte range of a file: owned by the
// descriptor's open file description, dropped by the kernel when the last
// descriptor of it closes — also when the process dies or execs.
enum class LockKind { shared, exclusive, none };
// Sets the lock; with wait=false fails with EAGAIN when another holder
// conflicts. Returns 0 or an errno value.
int ofd_lock(int fd, LockKind kind, std::uint64_t offset, std::uint64_t size, bool wait) noexcept;
// Whether another open file description holds a lock in the range that
// conflicts with `kind`.
bool ofd_lock_conflicts(int fd, LockKind kind, std::uint64_t offset, std::uint64_t size) noexcept;
// A new open file description of the file behind `fd` (through /proc/self/fd).
Result<int> reopen(int fd);

std::uint64_t monotonic_ns() noexcept;

// Processes and threads, for locks and records shared between processes.
int current_pid() noexcept;
int current_tid() noexcept;
void yield_cpu() noexcept;
void sleep_ns(std::uint64_t ns) noexcept;
// Locks `m`, waiting about `timeout_ns` at most. Returns 0, ETIMEDOUT, or
// what pthread_mutex_timedlock() says (EOWNERDEAD). For short slices: the
// timeout is measured on the wall clock, so a clock jump can stretch or cut
// one wait (pthread_mutex_clocklock would not, but ThreadSanitizer does not
// see it take the mutex).
int mutex_lock_for(pthread_mutex_t* m, std::uint64_t timeout_ns) noexcept;

// This process's page tables in bytes (VmPTE), or 0 if it cannot be read.
std::uint64_t page_table_bytes();

}  // namespace scxkit::internal::os
