#include "vm/apt_sources.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace scxkit::vm::internal {
namespace {

namespace fs = std::filesystem;

TEST(AptSources, OneLineFormReadsUriSuiteComponentsAndSignedBy) {
  const auto s = parse_one_line_sources(
      "# comment\n"
      "deb-src http://src.example/debian bookworm main\n"
      "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main contrib # tail\n"
      "deb http://m.example/security bookworm-security main\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].uri, "http://m.example/debian");
  EXPECT_EQ(s[0].suites, std::vector<std::string>{"bookworm"});
  EXPECT_EQ(s[0].components, (std::vector<std::string>{"main", "contrib"}));
  EXPECT_EQ(s[0].signed_by, "/k.gpg");
  EXPECT_EQ(s[1].suites, std::vector<std::string>{"bookworm-security"});
}

TEST(AptSources, Deb822StanzasExpandEveryUriAndHonourEnabledNo) {
  const auto s = parse_deb822_sources(
      "Types: deb deb-src\n"
      "# http://snapshot.example/archive\n"
      "URIs: http://a.example/debian http://b.example/debian\n"
      "Suites: bookworm bookworm-updates\n"
      "Components: main\n"
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
      "\n"
      "Types: deb-src\n"
      "URIs: http://only-src.example/debian\n"
      "Suites: bookworm\n"
      "Components: main\n"
      "\n"
      "Types: deb\n"
      "URIs: http://off.example/debian\n"
      "Suites: bookworm\n"
      "Components: main\n"
      "Enabled: no\n"
      "Signed-By:\n"
      " -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
      " abc\n");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].uri, "http://a.example/debian");
  EXPECT_EQ(s[1].uri, "http://b.example/debian");
  EXPECT_EQ(s[1].suites, (std::vector<std::string>{"bookworm", "bookworm-updates"}));
  EXPECT_EQ(s[0].signed_by, "/usr/share/keyrings/debian-archive-keyring.gpg");
  EXPECT_FALSE(s[2].enabled);
  EXPECT_EQ(s[2].signed_by, "") << "an inline key block is not a keyring path";
}

TEST(AptSources, PicksTheFirstEnabledSourceOfTheReleaseWithMain) {
  const auto s = parse_deb822_sources(
      "Types: deb\nURIs: https://deb.nodesource.example/node_20.x\nSuites: nodistro\nComponents: "
      "main\n\n"
      "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: "
      "no\n\n"
      "Types: deb\nURIs: http://contrib.example/debian\nSuites: bookworm\nComponents: contrib\n\n"
      "Types: deb\nURIs: http://right.example/debian\nSuites: bookworm\nComponents: main\n");
  const AptSource* picked = pick_debian_source(s, "bookworm");
  ASSERT_NE(picked, nullptr);
  EXPECT_EQ(picked->uri, "http://right.example/debian");
  EXPECT_EQ(pick_debian_source(s, "trixie"), nullptr);
}

class AptTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/scxkit-apt-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "apt/sources.list.d");
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const fs::path& rel, const std::string& text) { std::ofstream(root_ / rel) << text; }
  fs::path root_;
};

TEST_F(AptTree, FindsTheMirrorOfTheMachinesReleaseAcrossListAndSourcesFiles) {
  write("os-release", "NAME=\"Debian GNU/Linux\"\nVERSION_CODENAME=bookworm\n");
  write("apt/sources.list.d/a-other.list", "deb http://other.example/x nodistro main\n");
  write("apt/sources.list.d/debian.sources",
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n"
        "Signed-By: /etc/keys/debian.gpg\n");
  auto m = find_debian_mirror((root_ / "apt").string(), (root_ / "os-release").string());
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->uri, "http://mirror.example/debian");
  EXPECT_EQ(m->keyring, "/etc/keys/debian.gpg");
}

TEST_F(AptTree, NoMatchingSourceIsAnErrorThatSaysWhatToDo) {
  write("os-release", "VERSION_CODENAME=trixie\n");
  write("apt/sources.list", "deb http://mirror.example/debian bookworm main\n");
  auto m = find_debian_mirror((root_ / "apt").string(), (root_ / "os-release").string());
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("trixie"), std::string::npos);
  EXPECT_NE(m.error().message.find("--mirror"), std::string::npos);
}

TEST_F(AptTree, AMissingCodenameIsAnError) {
  write("os-release", "NAME=Other\n");
  auto m = find_debian_mirror((root_ / "apt").string(), (root_ / "os-release").string());
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("VERSION_CODENAME"), std::string::npos);
}

}  // namespace
}  // namespace scxkit::vm::internal
