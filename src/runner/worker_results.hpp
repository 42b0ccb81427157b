// Turning a worker's shared slot into its reported summary. Internal.
#pragma once

#include "scxkit/run.hpp"
#include "workload/shared_stats.hpp"

namespace scxkit::internal {

LatencySummary summarize(const LatencyHistogram& h);
// The CPUs the worker's checkpoints saw under placement epoch `epoch`.
CpuSet ran_on(const WorkerSlot& slot, std::size_t epoch);

}  // namespace scxkit::internal
