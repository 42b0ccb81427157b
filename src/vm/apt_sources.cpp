#include "vm/apt_sources.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace scxkit::vm::internal {

namespace {

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

bool contains(const std::vector<std::string>& v, std::string_view item) {
  return std::find(v.begin(), v.end(), item) != v.end();
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::vector<AptSource> parse_one_line_sources(std::string_view text) {
  std::vector<AptSource> out;
  std::istringstream in{std::string(text)};
  std::string raw;
  while (std::getline(in, raw)) {
    std::string line(trim(raw.substr(0, raw.find('#'))));
    if (line.rfind("deb", 0) != 0 || (line.size() > 3 && line[3] != ' ' && line[3] != '\t'))
      continue;
    AptSource src;
    std::string rest = line.substr(3);
    const auto open = rest.find('[');
    if (open != std::string::npos && trim(rest.substr(0, open)).empty()) {
      const auto close = rest.find(']', open);
      if (close == std::string::npos) continue;
      for (const auto& opt : words(rest.substr(open + 1, close - open - 1))) {
        if (opt.rfind("signed-by=", 0) == 0) src.signed_by = opt.substr(10);
      }
      rest = rest.substr(close + 1);
    }
    auto w = words(rest);
    if (w.size() < 2) continue;
    src.uri = w[0];
    src.suites = {w[1]};
    src.components.assign(w.begin() + 2, w.end());
    out.push_back(std::move(src));
  }
  return out;
}

std::vector<AptSource> parse_deb822_sources(std::string_view text) {
  std::vector<AptSource> out;
  std::istringstream in{std::string(text)};
  std::string raw;
  std::vector<std::pair<std::string, std::string>> fields;
  auto flush = [&] {
    if (fields.empty()) return;
    AptSource src;
    std::vector<std::string> types, uris;
    for (const auto& [key, value] : fields) {
      const std::string k = lower(key);
      if (k == "types") types = words(value);
      if (k == "uris") uris = words(value);
      if (k == "suites") src.suites = words(value);
      if (k == "components") src.components = words(value);
      if (k == "enabled") src.enabled = lower(trim(value)) != "no";
      // An inline key block spans lines; only a path is a usable keyring.
      if (k == "signed-by" && trim(value).find('\n') == std::string_view::npos) {
        src.signed_by = std::string(trim(value));
      }
    }
    fields.clear();
    if (!contains(types, "deb")) return;
    for (const auto& uri : uris) {
      AptSource one = src;
      one.uri = uri;
      out.push_back(std::move(one));
    }
  };
  while (std::getline(in, raw)) {
    if (!raw.empty() && raw[0] == '#') continue;
    if (trim(raw).empty()) {
      flush();
      continue;
    }
    if ((raw[0] == ' ' || raw[0] == '\t') && !fields.empty()) {
      fields.back().second += '\n';
      fields.back().second += trim(raw);
      continue;
    }
    const auto colon = raw.find(':');
    if (colon == std::string::npos) continue;
    fields.emplace_back(std::string(trim(raw.substr(0, colon))),
                        std::string(trim(raw.substr(colon + 1))));
  }
  flush();
  return out;
}

const AptSource* pick_debian_source(const std::vector<AptSource>& sources,
                                    std::string_view codename) {
  for (const auto& s : sources) {
    if (s.enabled && contains(s.suites, codename) && contains(s.components, "main")) return &s;
  }
  return nullptr;
}

Result<Mirror> find_debian_mirror(const std::string& etc_apt, const std::string& os_release) {
  std::string codename;
  {
    std::ifstream in(os_release);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VERSION_CODENAME=", 0) == 0) codename = line.substr(17);
    }
    codename.erase(std::remove(codename.begin(), codename.end(), '"'), codename.end());
  }
  if (codename.empty()) {
    return make_error(Errc::not_found,
                      fmt::format("{} names no VERSION_CODENAME, so no Debian mirror can be chosen "
                                  "from the apt sources; pass --mirror URI",
                                  os_release));
  }
  std::vector<AptSource> all;
  namespace fs = std::filesystem;
  auto add = [&all](std::vector<AptSource> more) {
    all.insert(all.end(), more.begin(), more.end());
  };
  if (fs::is_regular_file(etc_apt + "/sources.list")) {
    add(parse_one_line_sources(read_text(etc_apt + "/sources.list")));
  }
  std::vector<fs::path> parts;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(etc_apt + "/sources.list.d", ec))
    parts.push_back(e.path());
  std::sort(parts.begin(), parts.end());  // apt reads them in this order
  for (const auto& p : parts) {
    if (p.extension() == ".list") add(parse_one_line_sources(read_text(p)));
    if (p.extension() == ".sources") add(parse_deb822_sources(read_text(p)));
  }
  if (const AptSource* s = pick_debian_source(all, codename)) {
    return Mirror{s->uri, s->signed_by.empty() ? "/usr/share/keyrings/debian-archive-keyring.gpg"
                                               : s->signed_by};
  }
  return make_error(
      Errc::not_found,
      fmt::format("no apt source under {} serves Debian '{}' with component main; add "
                  "one, or pass --mirror URI",
                  etc_apt, codename));
}

}  // namespace scxkit::vm::internal
