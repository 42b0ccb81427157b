// The three plots of the HTML report, drawn as inline SVG. Internal.
#pragma once

#include <string>

#include "scxkit/run.hpp"

namespace scxkit::internal {

std::string escape_html(std::string_view text);
// A stable colour for the i-th series.
std::string series_color(std::size_t i);

std::string cpu_share_chart(const ScenarioResult& s);
std::string wake_latency_chart(const ScenarioResult& s);  // "" when nothing woke
std::string timeline_chart(const ScenarioResult& s);

}  // namespace scxkit::internal
