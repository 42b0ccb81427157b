#include "harness/log_tail.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace scxkit::internal {
namespace {

namespace fs = std::filesystem;

class LogTailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/scxkit-logtail-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST_F(LogTailTest, KeepsTheLastLinesPastTheStartOffset) {
  const std::string path = write("log", "old run\na\nb\nc\nd\n");
  EXPECT_EQ(tail_lines(path, 2), "c\nd\n");
  EXPECT_EQ(tail_lines(path, 10, 8), "a\nb\nc\nd\n");
  EXPECT_EQ(tail_lines(path, 10, 100), "");
  EXPECT_EQ(tail_lines((dir_ / "missing").string(), 10), "");
}

TEST_F(LogTailTest, CapsLongLinesAndSaysWhatWasCut) {
  const std::string path = write("log", std::string(5000, 'x') + "\nlast\n");
  EXPECT_EQ(tail_lines(path, 5, 0, 1 << 20, 10), "xxxxxxxxxx [4990 bytes cut]\nlast\n");
}

TEST_F(LogTailTest, AWindowInsideOneHugeLineShowsItsEndAndHowMuchWasCut) {
  const std::string path = write("log", std::string(100000, 'y') + "z");
  const std::string tail = tail_lines(path, 5, 0, 1000, 2000);
  EXPECT_EQ(tail, "[99001 bytes cut] " + std::string(999, 'y') + "z\n");
}

TEST_F(LogTailTest, AFifoIsNotReadAndDoesNotBlock) {
  const std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(tail_lines(fifo, 5), "");
}

TEST_F(LogTailTest, AppendBoundedKeepsTheEndFromALineStart) {
  std::string text = "first line\nsecond\n";
  append_bounded(text, "third\n", 12);
  EXPECT_EQ(text, "third\n");
  append_bounded(text, std::string(50, 'q'), 20);
  EXPECT_EQ(text, std::string(20, 'q'));
}

}  // namespace
}  // namespace scxkit::internal
