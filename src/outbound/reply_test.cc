#include "outbound/reply.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace porcupine::outbound {
namespace {

// Every reply parsed from `pieces` fed one after the other (each followed by
// draining the parser), as "code|enhanced|line1|line2..." and then "error" if
// the parser failed.
std::vector<std::string> ParsePieces(const std::vector<std::string_view>& pieces,
                                     const ReplyLimits& limits = {}) {
  ReplyParser p(limits);
  std::vector<std::string> out;
  for (std::string_view piece : pieces) {
    p.Feed(piece);
    for (;;) {
      Result<std::optional<Reply>> r = p.Next();
      if (!r.ok()) {
        out.push_back("error");
        return out;
      }
      if (!r->has_value()) break;
      std::string s =
          std::to_string((*r)->code) + "|" + ((*r)->enhanced ? (*r)->enhanced->ToString() : "-");
      for (const std::string& l : (*r)->lines) s += "|" + l;
      out.push_back(s);
    }
  }
  return out;
}

// The same, `fragment` bytes at a time.
std::vector<std::string> ParseAll(std::string_view input, size_t fragment,
                                  const ReplyLimits& limits = {}) {
  std::vector<std::string_view> pieces;
  for (size_t pos = 0; pos < input.size(); pos += fragment) {
    pieces.push_back(input.substr(pos, fragment));
  }
  return ParsePieces(pieces, limits);
}

struct Case {
  std::string input;
  std::vector<std::string> want;
};

// Each case is checked whole, at every fragment size down to one byte, and
// split in two at every position.
void CheckEverySplit(const Case& c, const ReplyLimits& limits = {}) {
  EXPECT_EQ(ParseAll(c.input, c.input.size() + 1, limits), c.want) << c.input;
  for (size_t f = 1; f <= c.input.size(); ++f) {
    ASSERT_EQ(ParseAll(c.input, f, limits), c.want) << c.input << " fragment " << f;
  }
  for (size_t cut = 0; cut <= c.input.size(); ++cut) {
    std::string_view in(c.input);
    ASSERT_EQ(ParsePieces({in.substr(0, cut), in.substr(cut)}, limits), c.want)
        << c.input << " cut at " << cut;
  }
}

TEST(ReplyParser, TableAtEverySplit) {
  const std::vector<Case> cases = {
      {"220 mx.test ESMTP\r\n", {"220|-|mx.test ESMTP"}},
      {"250 2.1.0 Ok\r\n", {"250|2.1.0|2.1.0 Ok"}},
      {"550 5.1.1 <x@y>: no such user\r\n", {"550|5.1.1|5.1.1 <x@y>: no such user"}},
      {"250\r\n", {"250|-|"}},
      {"250 \r\n", {"250|-|"}},
      // Multi-line: EHLO, with an empty continuation text.
      {"250-mx.test\r\n250-PIPELINING\r\n250-\r\n250 SIZE 100\r\n",
       {"250|-|mx.test|PIPELINING||SIZE 100"}},
      // Bare LF ends lines too.
      {"250-a\n250 b\n", {"250|-|a|b"}},
      // Two replies in one read (pipelining).
      {"250 2.1.0 ok\r\n550 5.1.1 no\r\n354 go\r\n",
       {"250|2.1.0|2.1.0 ok", "550|5.1.1|5.1.1 no", "354|-|go"}},
      // Enhanced code whose class disagrees with the reply: not taken.
      {"250 5.1.1 odd\r\n", {"250|-|5.1.1 odd"}},
      // Not an enhanced code: four digits, no space after, letters.
      {"550 5.1.1234 x\r\n", {"550|-|5.1.1234 x"}},
      {"550 5.1.1x\r\n", {"550|-|5.1.1x"}},
      {"550 5.1.1\r\n", {"550|5.1.1|5.1.1"}},
      {"451 4.3.0\r\n", {"451|4.3.0|4.3.0"}},
      // Garbage, bad codes, mixed codes.
      {"hello\r\n", {"error"}},
      {"25\r\n", {"error"}},
      {"250x\r\n", {"error"}},
      {"650 no\r\n", {"error"}},
      {"160 no\r\n", {"error"}},
      {"260 no\r\n", {"error"}},
      {"250-a\r\n251 b\r\n", {"error"}},
      {"\r\n", {"error"}},
      // A good reply, then garbage: the first still comes out.
      {"250 ok\r\nxyz\r\n", {"250|-|ok", "error"}},
  };
  for (const Case& c : cases) CheckEverySplit(c);
}

TEST(ReplyParser, LineLimitCountsTheLineEnd) {
  ReplyLimits limits;
  limits.max_line = 10;
  CheckEverySplit({"250 12345\r\n", {"error"}}, limits);      // 11 bytes: too long
  CheckEverySplit({"250 1234\r\n", {"250|-|1234"}}, limits);  // 10: fits
  EXPECT_EQ(ParseAll("250 12345\r\n", 100, limits), std::vector<std::string>{"error"});
  // An endless line without LF fails as soon as it passes the limit.
  ReplyParser p(limits);
  p.Feed("250 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_FALSE(p.Next().ok());
}

TEST(ReplyParser, LineCountLimit) {
  ReplyLimits limits;
  limits.max_lines = 3;
  CheckEverySplit({"250-a\r\n250-b\r\n250 c\r\n", {"250|-|a|b|c"}}, limits);
  CheckEverySplit({"250-a\r\n250-b\r\n250-c\r\n250 d\r\n", {"error"}}, limits);
}

TEST(ReplyParser, StaysBrokenAfterAnError) {
  ReplyParser p;
  p.Feed("bad\r\n");
  EXPECT_FALSE(p.Next().ok());
  p.Feed("250 ok\r\n");
  EXPECT_FALSE(p.Next().ok());
}

TEST(ReplyParser, HasBufferedSeesHalfReplies) {
  ReplyParser p;
  EXPECT_FALSE(p.HasBuffered());
  p.Feed("250-a\r\n");
  Result<std::optional<Reply>> r = p.Next();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(p.HasBuffered());  // one line of a reply read
  p.Feed("250 b\r\n");
  r = p.Next();
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_FALSE(p.HasBuffered());
  p.Feed("2");
  EXPECT_TRUE(p.HasBuffered());
  p.Clear();
  EXPECT_FALSE(p.HasBuffered());
}

TEST(Reply, TextAndStatus) {
  Reply r;
  r.code = 550;
  r.lines = {"5.7.1 refused", "see https://example.test"};
  r.enhanced = ParseEnhancedCode(r.lines[0]);
  EXPECT_EQ(r.Text(), "550 5.7.1 refused see https://example.test");
  EXPECT_EQ(r.StatusOrDefault(), (EnhancedCode{5, 7, 1}));
  r.enhanced.reset();
  EXPECT_EQ(r.StatusOrDefault().ToString(), "5.0.0");
  r.code = 452;
  EXPECT_EQ(r.StatusOrDefault().ToString(), "4.0.0");
}

TEST(EnhancedCode, Parse) {
  EXPECT_EQ(ParseEnhancedCode("2.0.0"), (EnhancedCode{2, 0, 0}));
  EXPECT_EQ(ParseEnhancedCode("5.7.26 x"), (EnhancedCode{5, 7, 26}));
  EXPECT_EQ(ParseEnhancedCode("4.123.999 x"), (EnhancedCode{4, 123, 999}));
  EXPECT_FALSE(ParseEnhancedCode("3.0.0"));
  EXPECT_FALSE(ParseEnhancedCode("5.1"));
  EXPECT_FALSE(ParseEnhancedCode("5..1 x"));
  EXPECT_FALSE(ParseEnhancedCode("5.1.1000"));
  EXPECT_FALSE(ParseEnhancedCode("5.1.1: x"));
  EXPECT_FALSE(ParseEnhancedCode(""));
}

}  // namespace
}  // namespace porcupine::outbound
