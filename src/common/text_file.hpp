// A whole text file in memory: scenario files, run reports. Internal.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "scxkit/error.hpp"

namespace scxkit::internal {

// `what` names the file in the error: "cannot read <what> <path>".
inline Result<std::string> read_text_file(const std::string& path, std::string_view what) {
  std::ifstream in(path);
  if (!in) return make_error(Errc::not_found, fmt::format("cannot read {} {}", what, path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace scxkit::internal
