// The work types' loops. Each runs until the process is killed; a loop that
// cannot run writes why into the slot's `failure` and returns. Internal.
#pragma once

#include "scxkit/scenario.hpp"
#include "workload/shared_stats.hpp"

namespace scxkit::internal {

void run_work(const WorkerSpec& spec, WorkerSlot& slot, const SharedHeader& header);

}  // namespace scxkit::internal
