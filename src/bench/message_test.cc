#include "bench/message.h"

#include <gtest/gtest.h>

#include <set>

namespace porcupine::bench {
namespace {

MessageSpec Spec(uint64_t size, int rcpts = 1) {
  MessageSpec spec;
  spec.from = "bench7@example.test";
  for (int i = 0; i < rcpts; ++i) spec.to.push_back("bench" + std::to_string(i) + "@example.test");
  spec.message_id = "n0nce.0.1.2@example.test";
  spec.date = 1748865600;  // Mon, 2 Jun 2025 12:00:00 +0000
  spec.size = size;
  return spec;
}

// Splits DATA payload into lines; checks CRLF everywhere and the terminator,
// undoes dot-stuffing and returns the message.
std::string Unstuff(const std::string& data, size_t* max_line) {
  EXPECT_TRUE(data.ends_with("\r\n.\r\n"));
  std::string msg;
  size_t pos = 0;
  *max_line = 0;
  while (pos < data.size()) {
    size_t crlf = data.find("\r\n", pos);
    EXPECT_NE(crlf, std::string::npos);
    std::string line = data.substr(pos, crlf - pos);
    EXPECT_EQ(line.find('\n'), std::string::npos) << "bare LF";
    EXPECT_EQ(line.find('\r'), std::string::npos) << "bare CR";
    pos = crlf + 2;
    if (line == ".") {
      EXPECT_EQ(pos, data.size()) << "terminator before the end";
      break;
    }
    if (line.starts_with(".")) {
      EXPECT_TRUE(line.starts_with("..")) << "unstuffed dot line: " << line;
      line.erase(0, 1);
    }
    *max_line = std::max(*max_line, line.size());
    msg += line + "\r\n";
  }
  return msg;
}

TEST(MessageFactory, ValidCrlfStuffingAndExactSize) {
  MessageFactory factory(1);
  Rng rng(2);
  bool saw_dot = false;
  for (uint64_t size : {1, 100, 300, 301, 302, 303, 4700, 20000, 1 << 20}) {
    for (int rcpts : {1, 3, 40}) {
      MessageSpec spec = Spec(size, rcpts);
      std::string data;
      uint64_t built = factory.AppendData(spec, rng, &data);
      size_t max_line = 0;
      std::string msg = Unstuff(data, &max_line);
      EXPECT_EQ(msg.size(), built);
      EXPECT_LE(max_line, kMaxLineChars);
      EXPECT_EQ(msg.size(), factory.ActualSize(spec)) << size;
      if (size >= 1000) {
        EXPECT_EQ(msg.size(), size);
      }
      saw_dot = saw_dot || data.find("\r\n..") != std::string::npos;
      // Headers then a blank line then a non-empty body.
      size_t blank = msg.find("\r\n\r\n");
      ASSERT_NE(blank, std::string::npos);
      EXPECT_GT(msg.size(), blank + 4);
      EXPECT_TRUE(msg.starts_with("From: bench7@example.test\r\nTo: bench0@example.test"));
      EXPECT_NE(msg.find("\r\nMessage-ID: <n0nce.0.1.2@example.test>\r\n"), std::string::npos);
      EXPECT_NE(msg.find("\r\nDate: Mon, 02 Jun 2025 12:00:00 +0000\r\n"), std::string::npos);
      EXPECT_NE(msg.find("\r\nSubject: "), std::string::npos);
    }
  }
  EXPECT_TRUE(saw_dot) << "the pool should exercise dot-stuffing";
}

TEST(MessageFactory, FoldedToHeaderListsEveryRecipient) {
  MessageFactory factory(1);
  Rng rng(3);
  std::string data;
  factory.AppendData(Spec(5000, 30), rng, &data);
  size_t max_line = 0;
  std::string msg = Unstuff(data, &max_line);
  for (int i = 0; i < 30; ++i) {
    EXPECT_NE(msg.find("bench" + std::to_string(i) + "@example.test"), std::string::npos);
  }
  EXPECT_NE(msg.find("\r\n bench"), std::string::npos) << "expected a folded To: line";
}

TEST(DotStuff, StuffsAndTerminates) {
  EXPECT_EQ(DotStuff("a\r\n.b\r\n..\r\n."), "a\r\n..b\r\n...\r\n..\r\n.\r\n");
  EXPECT_EQ(DotStuff("bare\nlf"), "bare\r\nlf\r\n.\r\n");
  EXPECT_EQ(DotStuff(""), ".\r\n");
}

TEST(MessageId, UniqueWithinAndAcrossRuns) {
  std::set<std::string> ids;
  std::string a = MakeRunNonce();
  std::string b = MakeRunNonce();
  EXPECT_NE(a, b);
  for (const std::string& nonce : {a, b}) {
    for (uint32_t w = 0; w < 3; ++w) {
      for (uint32_t s = 0; s < 20; ++s) {
        for (uint64_t q = 0; q < 20; ++q) {
          EXPECT_TRUE(ids.insert(MakeMessageId(nonce, w, s, q, "example.test")).second);
        }
      }
    }
  }
  // Digit runs must not collide: (1, 11) vs (11, 1).
  EXPECT_NE(MakeMessageId("n", 1, 11, 0, "d"), MakeMessageId("n", 11, 1, 0, "d"));
  EXPECT_EQ(MakeMessageId("n", 1, 2, 3, "d"), "n.1.2.3@d");
}

TEST(FormatDate, Rfc5322) { EXPECT_EQ(FormatDate(0), "Thu, 01 Jan 1970 00:00:00 +0000"); }

}  // namespace
}  // namespace porcupine::bench
