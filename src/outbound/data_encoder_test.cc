#include "outbound/data_encoder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace porcupine::outbound {
namespace {

std::string EncodeInPieces(std::string_view message, size_t fragment) {
  DataEncoder e;
  std::string out;
  for (size_t pos = 0; pos < message.size(); pos += fragment) {
    e.Encode(message.substr(pos, fragment), &out);
  }
  EXPECT_EQ(e.bytes_in(), message.size());
  e.Finish(&out);
  return out;
}

struct Case {
  std::string message;
  std::string want;  // the DATA payload including the final ".\r\n"
};

TEST(DataEncoder, TableAtEverySplit) {
  const std::vector<Case> cases = {
      {"", ".\r\n"},
      {"a\r\n", "a\r\n.\r\n"},
      {"a", "a\r\n.\r\n"},                  // an unterminated last line is ended
      {"a\nb\n", "a\r\nb\r\n.\r\n"},        // bare LF
      {"a\rb\r", "a\r\nb\r\n.\r\n"},        // bare CR
      {"a\r\r\nb", "a\r\n\r\nb\r\n.\r\n"},  // CR then CRLF: two line ends
      {"\n\n", "\r\n\r\n.\r\n"},
      {".\r\n", "..\r\n.\r\n"},  // a lone "." line
      {".hidden\r\n..two\r\n", "..hidden\r\n...two\r\n.\r\n"},
      {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},                        // an end-of-data inside
      {"x.\r\n. y", "x.\r\n.. y\r\n.\r\n"},                                // only at line start
      {"a\n.\r\nMAIL FROM:<x>\r\n", "a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"},  // smuggling
      {"a\r.\rb", "a\r\n..\r\nb\r\n.\r\n"},
      {".", "..\r\n.\r\n"},
      {"\r", "\r\n.\r\n"},
      {"caf\xc3\xa9\r\n", "caf\xc3\xa9\r\n.\r\n"},  // 8-bit bytes pass
      {std::string("nul\0byte", 8), std::string("nul\0byte\r\n.\r\n", 13)},
  };
  for (const Case& c : cases) {
    for (size_t f = 1; f <= c.message.size() + 1; ++f) {
      ASSERT_EQ(EncodeInPieces(c.message, f), c.want)
          << "message " << c.message << " fragment " << f;
    }
  }
}

TEST(DataEncoder, ReusableAfterFinish) {
  DataEncoder e;
  std::string out;
  e.Encode("a\r", &out);
  e.Finish(&out);
  e.Encode(".b", &out);
  e.Finish(&out);
  EXPECT_EQ(out, "a\r\n.\r\n..b\r\n.\r\n");
}

TEST(DataEncoder, LargeBodyKeepsItsBytes) {
  std::string line(998, 'x');
  std::string message;
  for (int i = 0; i < 2000; ++i) message += (i % 7 == 0 ? "." : "") + line + "\r\n";
  std::string out = EncodeInPieces(message, 4096);
  size_t dots = 0;
  for (int i = 0; i < 2000; i += 7) ++dots;
  EXPECT_EQ(out.size(), message.size() + dots + 3);
  EXPECT_TRUE(out.ends_with("x\r\n.\r\n"));
}

}  // namespace
}  // namespace porcupine::outbound
