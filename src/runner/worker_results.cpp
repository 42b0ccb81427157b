#include "runner/worker_results.hpp"

#include <algorithm>

namespace scxkit::internal {

LatencySummary summarize(const LatencyHistogram& h) {
  LatencySummary s;
  std::uint64_t counts[LatencyHistogram::kBuckets];
  for (std::size_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
    counts[b] = h.counts[b].load(std::memory_order_relaxed);
    s.count += counts[b];
  }
  if (s.count == 0) return s;
  auto us = [](std::size_t b) {
    return static_cast<double>(LatencyHistogram::bucket_high(b)) / 1e3;
  };
  // The smallest bucket whose cumulative count reaches q of the total.
  auto quantile = [&](double q) {
    const auto need = static_cast<std::uint64_t>(q * static_cast<double>(s.count) + 0.999999);
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
      seen += counts[b];
      if (seen >= std::max<std::uint64_t>(need, 1)) return us(b);
    }
    return us(LatencyHistogram::kBuckets - 1);
  };
  s.p50_us = quantile(0.50);
  s.p99_us = quantile(0.99);
  for (std::size_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
    if (counts[b] == 0) continue;
    s.buckets.emplace_back(us(b), counts[b]);
    s.max_us = us(b);
  }
  return s;
}

CpuSet ran_on(const WorkerSlot& slot, std::size_t epoch) {
  std::uint64_t words[WorkerSlot::kCpuWords];
  for (std::size_t i = 0; i < WorkerSlot::kCpuWords; ++i) {
    words[i] = slot.ran_on[epoch][i].load(std::memory_order_relaxed);
  }
  return CpuSet::from_words(words, WorkerSlot::kCpuWords);
}

}  // namespace scxkit::internal

namespace scxkit {

double WorkerResult::cpu_share() const {
  return active_s > 0 ? static_cast<double>(cpu_ns) / 1e9 / active_s : 0;
}

double WorkerResult::service() const {
  const std::uint64_t runnable = cpu_ns + wait_ns;
  return runnable > 0 ? static_cast<double>(cpu_ns) / static_cast<double>(runnable) : 0;
}

double WorkerResult::ops_per_s() const {
  return active_s > 0 ? static_cast<double>(ops) / active_s : 0;
}

CpuSet WorkerResult::ran_on() const {
  CpuSet all;
  for (const auto& e : placements) all = all | e.ran_on;
  return all;
}

bool ScenarioResult::passed() const {
  if (!error.empty() || interrupted) return false;
  for (const auto& st : steps) {
    if (!st.error.empty()) return false;
  }
  for (const auto& c : checks) {
    if (c.outcome == CheckOutcome::fail) return false;
  }
  return true;
}

bool RunReport::passed() const {
  if (interrupted || scenarios.empty() || !not_run.empty()) return false;
  return std::all_of(scenarios.begin(), scenarios.end(),
                     [](const ScenarioResult& s) { return s.passed(); });
}

}  // namespace scxkit
