#include "cli/password_input.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace porcupine::cli {
namespace {

class PasswordFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "pwfileXXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A file holding `content` with permissions `mode`.
  std::string Write(const std::string& content, mode_t mode = 0600) {
    std::string path = dir_ + "/pw" + std::to_string(++files_);
    std::ofstream(path, std::ios::binary) << content;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string dir_;
  int files_ = 0;
};

TEST_F(PasswordFileTest, TakesTheFirstLineWithoutItsLineEnd) {
  struct Case {
    std::string content;
    std::string password;
  } cases[] = {
      {"s3cret\n", "s3cret"},
      {"s3cret\r\n", "s3cret"},
      {"s3cret", "s3cret"},
      {"first line\nsecond line\n", "first line"},
      {"  spaces kept \t\n", "  spaces kept \t"},
      {"p\xc3\xa4ss\n", "p\xc3\xa4ss"},
  };
  for (const Case& c : cases) {
    Result<std::string> pw = ReadPasswordFile(Write(c.content));
    ASSERT_TRUE(pw.ok()) << pw.status().ToString();
    EXPECT_EQ(*pw, c.password);
  }
  Result<std::string> read_only = ReadPasswordFile(Write("ro\n", 0400));
  ASSERT_TRUE(read_only.ok()) << read_only.status().ToString();
  EXPECT_EQ(*read_only, "ro");
}

TEST_F(PasswordFileTest, RefusesAFileOthersMayReadOrChange) {
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602, 0610, 0660, 0666}) {
    SCOPED_TRACE(mode);
    Result<std::string> pw = ReadPasswordFile(Write("s3cret\n", mode));
    EXPECT_EQ(pw.status().code(), Code::kPermissionDenied);
    EXPECT_NE(pw.status().message().find("chmod 600"), std::string::npos);
  }
}

TEST_F(PasswordFileTest, RefusesAnEmptyOrOverlongPassword) {
  EXPECT_EQ(ReadPasswordFile(Write("")).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadPasswordFile(Write("\nsecond\n")).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadPasswordFile(Write("\r\n")).status().code(), Code::kInvalidArgument);
  std::string longest(kMaxPasswordBytes, 'x');
  Result<std::string> ok = ReadPasswordFile(Write(longest + "\n"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, longest);
  EXPECT_EQ(ReadPasswordFile(Write(longest + "y\n")).status().code(), Code::kInvalidArgument);
}

TEST_F(PasswordFileTest, AMissingFileIsAnIoError) {
  EXPECT_EQ(ReadPasswordFile(dir_ + "/none").status().code(), Code::kIoError);
  EXPECT_EQ(ReadPasswordFile(dir_).status().code(), Code::kIoError);  // a directory
}

TEST_F(PasswordFileTest, APipeIsReadWhateverItsMode) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "piped\n", 6), 6);
  close(fds[1]);
  Result<std::string> pw = ReadPasswordFile("/dev/fd/" + std::to_string(fds[0]));
  close(fds[0]);
  ASSERT_TRUE(pw.ok()) << pw.status().ToString();
  EXPECT_EQ(*pw, "piped");
}

TEST(PasswordPromptTest, NeedsATerminal) {
  if (isatty(STDIN_FILENO)) GTEST_SKIP() << "standard input is a terminal";
  EXPECT_EQ(PromptPassword("Password: ", true).status().code(), Code::kFailedPrecondition);
  PasswordOptions none;
  Result<std::string> pw = ObtainPassword(none, "a@example.test");
  EXPECT_EQ(pw.status().code(), Code::kInvalidArgument);
  EXPECT_NE(pw.status().message().find("--password-file"), std::string::npos);
}

TEST(PasswordPromptTest, TheCommandLineComesFirst) {
  PasswordOptions given;
  given.password_given = true;
  given.password = "typed";
  given.file = "/nonexistent";  // the command line refuses both at once; --password wins here
  Result<std::string> pw = ObtainPassword(given, "a@example.test");
  ASSERT_TRUE(pw.ok());
  EXPECT_EQ(*pw, "typed");
}

}  // namespace
}  // namespace porcupine::cli
