#include "protocol/pop3/reply.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace porcupine::pop3 {
namespace {

using namespace std::string_literals;

TEST(ReplyTest, StatusLines) {
  std::string out;
  AppendOk(&out, "");
  AppendOk(&out, "2 320");
  AppendErr(&out, "[SYS/TEMP] try later");
  AppendErr(&out, "evil\r\n+OK smuggled\0"s);
  EXPECT_EQ(out, "+OK\r\n+OK 2 320\r\n-ERR [SYS/TEMP] try later\r\n-ERR evil??+OK smuggled?\r\n");
}

TEST(ReplyTest, ListLinesAreStuffedAndSanitized) {
  std::string out;
  AppendListLine(&out, "1 120");
  AppendListLine(&out, ".odd");
  AppendListLine(&out, "a\nb");
  AppendTerminator(&out);
  EXPECT_EQ(out, "1 120\r\n..odd\r\na?b\r\n.\r\n");
}

TEST(DotStuffTest, Table) {
  struct Case {
    std::string message, wire;
  };
  const Case cases[] = {
      {"", ".\r\n"},
      {"a\r\n", "a\r\n.\r\n"},
      {"a", "a\r\n.\r\n"},  // final CRLF added
      {"a\r\nb", "a\r\nb\r\n.\r\n"},
      {"\r\n", "\r\n.\r\n"},
      {".\r\n", "..\r\n.\r\n"},
      {".", "..\r\n.\r\n"},
      {"..\r\n", "...\r\n.\r\n"},
      {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
      {"a.b\r\n .c\r\n", "a.b\r\n .c\r\n.\r\n"},  // only the first byte counts
      {"a\n.\nb", "a\r\n..\r\nb\r\n.\r\n"},       // bare LF becomes CRLF
      {"a\r", "a\r\n.\r\n"},
      {"a\rb\r\n", "a\rb\r\n.\r\n"},  // a lone CR inside a line stays
      {"\r\n\r\n", "\r\n\r\n.\r\n"},
  };
  for (const Case& c : cases) {
    std::string out = "+OK\r\n";
    AppendDotStuffed(&out, c.message);
    EXPECT_EQ(out, "+OK\r\n" + c.wire) << ::testing::PrintToString(c.message);
  }
}

// Undoes the stuffing the way a client does: the response ends at the
// first ".\r\n" line; a leading '.' of any other line is dropped.
std::string Unstuff(std::string_view wire, bool* terminated) {
  std::string out;
  *terminated = false;
  while (!wire.empty()) {
    size_t end = wire.find("\r\n");
    if (end == std::string_view::npos) return out;
    std::string_view line = wire.substr(0, end);
    wire.remove_prefix(end + 2);
    if (line == ".") {
      *terminated = wire.empty();
      return out;
    }
    if (!line.empty() && line[0] == '.') line.remove_prefix(1);
    out.append(line).append("\r\n");
  }
  return out;
}

// Any message, whatever bytes it holds, comes out as exactly one response
// that unstuffs to the message with CRLF line ends.
TEST(DotStuffTest, RandomMessagesRoundTrip) {
  std::mt19937 rng(1939);
  const char alphabet[] = {'.', '\r', '\n', 'a', ' ', '\0'};
  for (int iter = 0; iter < 5000; ++iter) {
    std::string msg;
    size_t len = rng() % 40;
    for (size_t i = 0; i < len; ++i) msg += alphabet[rng() % sizeof(alphabet)];
    std::string wire;
    AppendDotStuffed(&wire, msg);
    bool terminated = false;
    std::string back = Unstuff(wire, &terminated);
    ASSERT_TRUE(terminated) << ::testing::PrintToString(msg);
    // Expected: every line (split at LF, one trailing CR dropped) + CRLF.
    std::string expected;
    for (size_t pos = 0; pos < msg.size();) {
      size_t lf = std::min(msg.find('\n', pos), msg.size());
      size_t end = (lf > pos && msg[lf - 1] == '\r') ? lf - 1 : lf;
      expected.append(msg, pos, end - pos).append("\r\n");
      pos = lf + 1;
    }
    ASSERT_EQ(back, expected) << ::testing::PrintToString(msg);
  }
}

// 20 MiB of dot lines: one pass, and at most one growth of the buffer past
// the initial reservation.
TEST(DotStuffTest, LargeMessage) {
  std::string line = ".a line of text starting with a dot, seventy-odd bytes long ......\r\n";
  std::string msg;
  while (msg.size() < (20u << 20)) msg += line;
  size_t lines = msg.size() / line.size();
  std::string out;
  AppendDotStuffed(&out, msg);
  EXPECT_EQ(out.size(), msg.size() + lines + 3);
  EXPECT_EQ(out.compare(0, 2, ".."), 0);
  EXPECT_EQ(out.compare(out.size() - 5, 5, "\r\n.\r\n"), 0);
  EXPECT_LE(out.capacity(), 2 * (msg.size() + msg.size() / 256 + 8));
}

TEST(TopOfMessageTest, Table) {
  const std::string m = "A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree\r\n";
  struct Case {
    std::string message;
    uint64_t lines;
    std::string top;
  };
  const Case cases[] = {
      {m, 0, "A: 1\r\nB: 2\r\n\r\n"},
      {m, 1, "A: 1\r\nB: 2\r\n\r\none\r\n"},
      {m, 3, m},
      {m, 4, m},
      {m, UINT64_MAX, m},
      {"A: 1\r\nB: 2\r\n", 0, "A: 1\r\nB: 2\r\n"},  // no body: all header
      {"A: 1", 0, "A: 1"},
      {"", 5, ""},
      {"\r\nbody\r\n", 0, "\r\n"},  // no header
      {"\r\nbody\r\n", 1, "\r\nbody\r\n"},
      {"A: 1\n\nx\ny\n", 1, "A: 1\n\nx\n"},            // LF-only line ends
      {"A: 1\r\n\r\nx\r\ny", 1, "A: 1\r\n\r\nx\r\n"},  // unterminated last line
      {"A: 1\r\n\r\nx\r\ny", 2, "A: 1\r\n\r\nx\r\ny"},
      {"A: 1\r\n \r\nx\r\n", 0, "A: 1\r\n \r\nx\r\n"},  // a space is not a blank line
  };
  for (const Case& c : cases) {
    EXPECT_EQ(TopOfMessage(c.message, c.lines), c.top)
        << ::testing::PrintToString(c.message) << " " << c.lines;
  }
}

}  // namespace
}  // namespace porcupine::pop3
