// The JSON form of a scenario (docs/RUN.md), shared by the loader and the
// report, which records the scenario it ran. Internal.
#pragma once

#include <nlohmann/json.hpp>

#include "scxkit/scenario.hpp"

namespace scxkit::internal {

nlohmann::json scenario_to_json(const Scenario& s);
// `where` prefixes field names in errors ("scenarios[1]").
Result<Scenario> scenario_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace scxkit::internal
