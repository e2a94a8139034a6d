#include "protocol/common/line_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace porcupine::protocol {
namespace {

// Feeds `input` in pieces of `chunk` bytes and records what Next() yields.
std::vector<std::string> Split(const std::string& input, size_t chunk, size_t max_line) {
  LineReader r(max_line);
  std::vector<std::string> out;
  for (size_t i = 0; i < input.size(); i += chunk) {
    r.Feed(std::string_view(input).substr(i, chunk));
    for (;;) {
      Line line;
      LineReader::Kind k = r.Next(&line);
      if (k == LineReader::Kind::kNeedMore) break;
      if (k == LineReader::Kind::kTooLong) {
        out.push_back("<too long>");
        continue;
      }
      std::string tag = line.bare_lf ? "[lf]" : "";
      if (line.bare_cr) tag += "[cr]";
      out.push_back(std::string(line.text) + tag);
    }
  }
  return out;
}

struct Case {
  std::string input;
  size_t max_line;
  std::vector<std::string> want;
};

TEST(LineReader, TableReplayedAtEveryFragmentSize) {
  const std::vector<Case> cases = {
      {"HELO a\r\nNOOP\r\n", 100, {"HELO a", "NOOP"}},
      {"\r\n\r\n", 100, {"", ""}},
      {"bare\nnext\r\n", 100, {"bare[lf]", "next"}},
      {"a\rb\r\n", 100, {"a\rb[cr]"}},
      {"partial", 100, {}},
      {"0123456789\r\nok\r\n", 8, {"<too long>", "ok"}},
      {"0123456789abcdef0123\r\nok\r\n", 8, {"<too long>", "ok"}},
      {"1234567\r\n", 9, {"1234567"}},
      {"12345678\r\n", 9, {"<too long>"}},
  };
  for (const Case& c : cases) {
    for (size_t chunk = c.input.size(); chunk >= 1; --chunk) {
      EXPECT_EQ(Split(c.input, chunk, c.max_line), c.want)
          << "input " << testing::PrintToString(c.input) << " chunk " << chunk;
    }
  }
}

TEST(LineReader, TakeRawReturnsUnconsumedBytes) {
  LineReader r(100);
  r.Feed("line\r\nraw bytes");
  Line line;
  ASSERT_EQ(r.Next(&line), LineReader::Kind::kLine);
  EXPECT_EQ(r.TakeRaw(3), "raw");
  EXPECT_EQ(r.buffered(), 6u);
}

TEST(LineReader, OverlongLineDoesNotGrowTheBuffer) {
  LineReader r(64);
  Line line;
  std::string junk(4096, 'x');
  int too_long = 0;
  for (int i = 0; i < 100; ++i) {
    r.Feed(junk);
    while (r.Next(&line) == LineReader::Kind::kTooLong) ++too_long;
    EXPECT_LE(r.buffered(), junk.size());
  }
  EXPECT_EQ(too_long, 1);
  r.Feed("\r\nafter\r\n");
  ASSERT_EQ(r.Next(&line), LineReader::Kind::kLine);
  EXPECT_EQ(line.text, "after");
}

// STARTTLS drops what the client pipelined, including the skipping of an
// overlong line: the first line after Clear() is read as a line.
TEST(LineReader, ClearDropsBufferedBytesAndSkipping) {
  LineReader r(8);
  Line line;
  r.Feed("a\r\nbcdefghijklmnop");
  ASSERT_EQ(r.Next(&line), LineReader::Kind::kLine);
  ASSERT_EQ(r.Next(&line), LineReader::Kind::kTooLong);
  r.Clear();
  EXPECT_EQ(r.buffered(), 0u);
  r.Feed("next\r\n");
  ASSERT_EQ(r.Next(&line), LineReader::Kind::kLine);
  EXPECT_EQ(line.text, "next");
}

}  // namespace
}  // namespace porcupine::protocol
