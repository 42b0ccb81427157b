#include "workload/work_loops.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "workload/progress.hpp"

namespace scxkit::internal {

std::uint64_t spin_op(std::uint64_t seed) {
  // xorshift: each step depends on the last, so the compiler cannot fold it.
  std::uint64_t x = seed | 1;
  for (int i = 0; i < 8192; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

namespace {

volatile std::uint64_t g_sink;

void fail(WorkerSlot& slot, const char* what) {
  std::snprintf(slot.failure, sizeof(slot.failure), "%s: %s", what, std::strerror(errno));
}

void sleep_until(std::uint64_t target_ns) {
  timespec ts{static_cast<time_t>(target_ns / 1'000'000'000u),
              static_cast<long>(target_ns % 1'000'000'000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void spin_for(std::uint64_t ns) {
  const std::uint64_t end = monotonic_ns() + ns;
  std::uint64_t x = end;
  do {
    x = spin_op(x);
  } while (monotonic_ns() < end);
  g_sink = x;
}

std::uint64_t ms_ns(Millis m) {
  return static_cast<std::uint64_t>(m.count()) * 1'000'000u;
}

// Burst of CPU (or one spin op when `burst` is 0), then a timed sleep.
void run_sleeper(Millis burst, Millis sleep, WorkerSlot& slot, const SharedHeader& h) {
  Progress p(slot, h);
  for (std::uint64_t x = 1;;) {
    if (burst.count() > 0) {
      spin_for(ms_ns(burst));
    } else {
      x = spin_op(x);
      g_sink = x;
    }
    p.checkpoint();
    const std::uint64_t target = monotonic_ns() + ms_ns(sleep);
    sleep_until(target);
    p.woke_after_sleep(target);
  }
}

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t val) {
  const timespec timeout{1, 0};  // a bounded wait; the loop re-checks
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op | FUTEX_PRIVATE_FLAG, val,
                 op == FUTEX_WAIT ? &timeout : nullptr, nullptr, 0);
}

// Two threads pass a turn back and forth; `pass` hands it over, `await` waits
// for it. Each side records how long after the hand-over it woke.
struct Turn {
  std::atomic<std::uint64_t> sent_ns{0};
};

void run_pipe_pingpong(WorkerSlot& slot, const SharedHeader& h) {
  int ab[2], ba[2];
  if (pipe(ab) != 0 || pipe(ba) != 0) return fail(slot, "pipe");
  Turn turn;
  auto side = [&](int in, int out, bool serves) {
    Progress p(slot, h);
    char byte = 0;
    for (;;) {
      if (serves) {
        turn.sent_ns.store(monotonic_ns(), std::memory_order_release);
        if (write(out, &byte, 1) != 1) return;
      }
      if (read(in, &byte, 1) != 1) return;
      p.woke_by_partner(turn.sent_ns.load(std::memory_order_acquire));
      p.checkpoint();
      if (!serves) {
        turn.sent_ns.store(monotonic_ns(), std::memory_order_release);
        if (write(out, &byte, 1) != 1) return;
      }
    }
  };
  std::thread partner(side, ab[0], ba[1], false);
  side(ba[0], ab[1], true);
  partner.join();
}

void run_futex_pingpong(WorkerSlot& slot, const SharedHeader& h) {
  std::atomic<std::uint32_t> word{0};  // 0: the server's turn, 1: the partner's
  Turn turn;
  auto side = [&](std::uint32_t mine) {
    Progress p(slot, h);
    for (;;) {
      while (word.load(std::memory_order_acquire) != mine) {
        futex(&word, FUTEX_WAIT, 1 - mine);
      }
      p.woke_by_partner(turn.sent_ns.load(std::memory_order_acquire));
      p.checkpoint();
      turn.sent_ns.store(monotonic_ns(), std::memory_order_release);
      word.store(1 - mine, std::memory_order_release);
      futex(&word, FUTEX_WAKE, 1);
    }
  };
  std::thread partner(side, 1u);
  side(0u);
  partner.join();
}

void run_mutex(int threads, WorkerSlot& slot, const SharedHeader& h) {
  std::mutex m;
  std::uint64_t shared = 1;
  auto contend = [&] {
    Progress p(slot, h);
    for (;;) {
      {
        std::lock_guard lock(m);
        shared = spin_op(shared);
      }
      p.checkpoint();
    }
  };
  std::vector<std::thread> others;
  for (int i = 1; i < threads; ++i) others.emplace_back(contend);
  contend();
  for (auto& t : others) t.join();
}

void run_fork_churn(WorkerSlot& slot, const SharedHeader& h) {
  Progress p(slot, h);
  for (;;) {
    const pid_t child = fork();
    if (child < 0) return fail(slot, "fork");
    if (child == 0) _exit(0);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    p.checkpoint();
  }
}

void run_page_fault(WorkerSlot& slot, const SharedHeader& h) {
  constexpr std::size_t kPages = 16, kPage = 4096;
  Progress p(slot, h);
  for (;;) {
    void* mem =
        mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return fail(slot, "mmap");
    for (std::size_t i = 0; i < kPages; ++i) static_cast<volatile char*>(mem)[i * kPage] = 1;
    if (munmap(mem, kPages * kPage) != 0) return fail(slot, "munmap");
    p.checkpoint();
  }
}

}  // namespace

void run_work(const WorkerSpec& spec, WorkerSlot& slot, const SharedHeader& header) {
  slot.last_progress_ns.store(monotonic_ns(), std::memory_order_relaxed);
  switch (spec.work) {
    case WorkType::spin: {
      Progress p(slot, header);
      for (std::uint64_t x = 1;;) {
        x = spin_op(x);
        g_sink = x;
        p.checkpoint();
      }
    }
    case WorkType::yield: {
      Progress p(slot, header);
      for (;;) {
        spin_for(2000);
        sched_yield();
        p.checkpoint();
      }
    }
    case WorkType::bursty:
      return run_sleeper(spec.burst, spec.sleep, slot, header);
    case WorkType::io_sleep:
      return run_sleeper(Millis(0), spec.sleep, slot, header);
    case WorkType::pipe_pingpong:
      return run_pipe_pingpong(slot, header);
    case WorkType::futex_pingpong:
      return run_futex_pingpong(slot, header);
    case WorkType::fork_churn:
      return run_fork_churn(slot, header);
    case WorkType::mutex:
      return run_mutex(spec.threads > 0 ? spec.threads : 4, slot, header);
    case WorkType::page_fault:
      return run_page_fault(slot, header);
  }
}

}  // namespace scxkit::internal
