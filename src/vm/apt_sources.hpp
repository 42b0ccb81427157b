// Reading the machine's apt sources (one-line *.list and deb822 *.sources)
// to find the URI of a Debian mirror, so scxkit never names a host itself.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "scxkit/error.hpp"

namespace scxkit::vm::internal {

struct AptSource {
  std::string uri;
  std::vector<std::string> suites;
  std::vector<std::string> components;
  std::string signed_by;  // a keyring path, or "" (inline keys are not kept)
  bool enabled = true;
};

// "deb [opts] URI SUITE COMPONENTS..." lines; deb-src and comments skipped.
std::vector<AptSource> parse_one_line_sources(std::string_view text);
// Blank-line separated stanzas of "Field: value" (continuation lines start with a blank).
std::vector<AptSource> parse_deb822_sources(std::string_view text);

// The source of the Debian release `codename`: the first enabled one whose
// suites include it and whose components include main; nullptr if none.
const AptSource* pick_debian_source(const std::vector<AptSource>& sources,
                                    std::string_view codename);

struct Mirror {
  std::string uri;
  std::string keyring;  // Signed-By of that source, or Debian's archive keyring
};
// Reads /etc/os-release for the codename, then /etc/apt/sources.list,
// sources.list.d/*.list and *.sources (under `etc_apt`).
Result<Mirror> find_debian_mirror(const std::string& etc_apt = "/etc/apt",
                                  const std::string& os_release = "/etc/os-release");

}  // namespace scxkit::vm::internal
