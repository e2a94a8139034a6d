#include "protocol/smtp/command.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "protocol/smtp/path.h"
#include "protocol/smtp/received.h"
#include "protocol/smtp/reply.h"

namespace porcupine::smtp {
namespace {

TEST(SplitCommandTest, Table) {
  struct Case {
    std::string_view line, verb, args;
  } cases[] = {
      {"", "", ""},
      {"NOOP", "NOOP", ""},
      {"noop  ", "noop", ""},
      {"MAIL FROM:<a@b.c>", "MAIL", "FROM:<a@b.c>"},
      {"MAIL   FROM:<a@b.c>  SIZE=1  ", "MAIL", "FROM:<a@b.c>  SIZE=1"},
      {" NOOP", "", "NOOP"},
  };
  for (const Case& c : cases) {
    CommandLine got = SplitCommand(c.line);
    EXPECT_EQ(got.verb, c.verb) << c.line;
    EXPECT_EQ(got.args, c.args) << c.line;
  }
}

struct PathCase {
  std::string_view in;
  bool postmaster_ok;
  bool ok;
  std::string_view mailbox;
  bool non_ascii;
  size_t consumed;
};

TEST(ParsePathTest, Table) {
  const PathCase cases[] = {
      {"<a@b.c>", false, true, "a@b.c", false, 7},
      {"<a@b.c> SIZE=1", false, true, "a@b.c", false, 7},
      {"<>", false, true, "", false, 2},
      {"a@b.c SIZE=1", false, true, "a@b.c", false, 5},
      {"<@x.y,@z.w:a@b.c>", false, true, "a@b.c", false, 17},
      {"<@[IPv6:::1]:a@b.c>", false, true, "a@b.c", false, 19},
      {"<\"a >b\"@b.c>", false, true, "\"a >b\"@b.c", false, 12},
      {"<\"a\\\"b\"@b.c>", false, true, "\"a\\\"b\"@b.c", false, 12},
      {"<first..last.@b.c>", false, true, "first..last.@b.c", false, 18},
      {"<a+tag=x/y@sub-1.b.c>", false, true, "a+tag=x/y@sub-1.b.c", false, 21},
      {"<a@[192.0.2.1]>", false, true, "a@[192.0.2.1]", false, 15},
      {"<a@[IPv6:2001:db8::1]>", false, true, "a@[IPv6:2001:db8::1]", false, 22},
      {"<a@[x-tag:stuff]>", false, true, "a@[x-tag:stuff]", false, 17},
      {"<jörg@bücher.de>", false, true, "jörg@bücher.de", true, 18},
      {"<\"jö\"@b.c>", false, true, "\"jö\"@b.c", true, 11},
      {"<Postmaster>", true, true, "postmaster", false, 12},
      {"<Postmaster>", false, false, "", false, 0},
      {"POSTMASTER", true, true, "postmaster", false, 10},
      {"", false, false, "", false, 0},
      {"<", false, false, "", false, 0},
      {"<a@b.c", false, false, "", false, 0},
      {"<a>", false, false, "", false, 0},
      {"<@b.c>", false, false, "", false, 0},
      {"<a@>", false, false, "", false, 0},
      {"<a@b..c>", false, false, "", false, 0},
      {"<a@b.c.>", false, false, "", false, 0},
      {"<a@-b.c>", false, false, "", false, 0},
      {"<a@b_c.d>", false, false, "", false, 0},
      {"<a b@c.d>", false, false, "", false, 0},
      {"<a@b@c.d>", false, false, "", false, 0},
      {"<a\x01@c.d>", false, false, "", false, 0},
      {"<\"a\x01\"@c.d>", false, false, "", false, 0},
      {"<\"unterminated@c.d>", false, false, "", false, 0},
      {"<a@[300.1.1.1]>", false, false, "", false, 0},
      {"<a@[IPv6:zz::1]>", false, false, "", false, 0},
      {"<a@[1.2.3.4>", false, false, "", false, 0},
      {"<@x.y:>", false, false, "", false, 0},
      {"<@x.y,:a@b.c>", false, false, "", false, 0},
      {"<@x.y a@b.c>", false, false, "", false, 0},
      {"<\xC3(@b.c>", false, false, "", false, 0},             // bad UTF-8
      {"<\xC0\xAF@b.c>", false, false, "", false, 0},          // overlong
      {"<\xED\xA0\x80@b.c>", false, false, "", false, 0},      // surrogate
      {"<\xF4\x90\x80\x80@b.c>", false, false, "", false, 0},  // > U+10FFFF
      {"<\xE2\x82@b.c>", false, false, "", false, 0},          // truncated
  };
  for (const PathCase& c : cases) {
    size_t consumed = 0;
    std::optional<Path> p = ParsePath(c.in, c.postmaster_ok, &consumed);
    ASSERT_EQ(p.has_value(), c.ok) << c.in;
    if (!p) continue;
    EXPECT_EQ(p->mailbox, c.mailbox) << c.in;
    EXPECT_EQ(p->non_ascii, c.non_ascii) << c.in;
    EXPECT_EQ(consumed, c.consumed) << c.in;
  }
}

TEST(ParsePathTest, LengthLimit) {
  std::string domain = "@example.test";
  std::string local(kMaxMailboxOctets - domain.size(), 'a');
  bool utf8 = false;
  EXPECT_TRUE(IsValidMailbox(local + domain, &utf8));
  EXPECT_FALSE(IsValidMailbox(local + "a" + domain, &utf8));
  std::string label(64, 'a');
  EXPECT_FALSE(IsValidDomain(label + ".test", &utf8));
  EXPECT_TRUE(IsValidDomain(label.substr(1) + ".test", &utf8));
}

TEST(Utf8Test, Table) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("Grüße 日本語 \xF0\x9F\x93\xA7"));
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC1\xBF"));
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xF0\x9F\x93"));
}

TEST(ParseMailArgsTest, Accepted) {
  struct Case {
    std::string_view in;
    std::string_view mailbox;
    std::optional<uint64_t> size;
    BodyType body;
    bool smtputf8;
  } cases[] = {
      {"FROM:<a@b.c>", "a@b.c", std::nullopt, BodyType::kUnspecified, false},
      {"from:<>", "", std::nullopt, BodyType::kUnspecified, false},
      {"FROM: <a@b.c>", "a@b.c", std::nullopt, BodyType::kUnspecified, false},
      {"FROM:<a@b.c> SIZE=0", "a@b.c", 0, BodyType::kUnspecified, false},
      {"FROM:<a@b.c> size=123  body=8bitmime", "a@b.c", 123, BodyType::k8BitMime, false},
      {"FROM:<a@b.c> BODY=7BIT SMTPUTF8", "a@b.c", std::nullopt, BodyType::k7Bit, true},
      {"FROM:<a@b.c> SIZE=18446744073709551615", "a@b.c", UINT64_MAX, BodyType::kUnspecified,
       false},
      {"FROM:<a@b.c> SIZE=99999999999999999999", "a@b.c", UINT64_MAX, BodyType::kUnspecified,
       false},
      {"FROM:<a@b.c> AUTH=<>", "a@b.c", std::nullopt, BodyType::kUnspecified, false},
      {"FROM:<a@b.c> AUTH=a+2Bb@b.c", "a@b.c", std::nullopt, BodyType::kUnspecified, false},
  };
  for (const auto& c : cases) {
    MailParse got = ParseMailArgs(c.in);
    ASSERT_TRUE(std::holds_alternative<MailArgs>(got)) << c.in;
    const MailArgs& m = std::get<MailArgs>(got);
    EXPECT_EQ(m.path.mailbox, c.mailbox) << c.in;
    EXPECT_EQ(m.size, c.size) << c.in;
    EXPECT_EQ(m.body, c.body) << c.in;
    EXPECT_EQ(m.smtputf8, c.smtputf8) << c.in;
  }
}

TEST(ParseMailArgsTest, Refused) {
  using K = ArgError::Kind;
  struct Case {
    std::string_view in;
    K kind;
    std::string_view param;
  } cases[] = {
      {"", K::kSyntax, ""},
      {"FROM:", K::kSyntax, ""},
      {"FROM <a@b.c>", K::kSyntax, ""},
      {"TO:<a@b.c>", K::kSyntax, ""},
      {"FROM:<a@b.c>x", K::kSyntax, ""},
      {"FROM:<a>", K::kPath, ""},
      {"FROM:<a@b..c>", K::kPath, ""},
      {"FROM:<postmaster>", K::kPath, ""},
      {"FROM:<a@b.c> SIZE", K::kParamSyntax, "SIZE"},
      {"FROM:<a@b.c> SIZE=", K::kParamSyntax, "SIZE="},
      {"FROM:<a@b.c> SIZE=-1", K::kParamSyntax, "SIZE=-1"},
      {"FROM:<a@b.c> SIZE=1 SIZE=2", K::kParamSyntax, "SIZE=2"},
      {"FROM:<a@b.c> SIZE=123456789012345678901", K::kParamSyntax, "SIZE=123456789012345678901"},
      {"FROM:<a@b.c> BODY", K::kParamSyntax, "BODY"},
      {"FROM:<a@b.c> BODY=7BIT BODY=7BIT", K::kParamSyntax, "BODY=7BIT"},
      {"FROM:<a@b.c> BODY=BINARYMIME", K::kParamUnsupported, "BODY=BINARYMIME"},
      {"FROM:<a@b.c> SMTPUTF8=1", K::kParamSyntax, "SMTPUTF8=1"},
      {"FROM:<a@b.c> SMTPUTF8 SMTPUTF8", K::kParamSyntax, "SMTPUTF8"},
      {"FROM:<a@b.c> AUTH", K::kParamSyntax, "AUTH"},
      {"FROM:<a@b.c> AUTH=<> AUTH=<>", K::kParamSyntax, "AUTH=<>"},
      {"FROM:<a@b.c> =x", K::kParamSyntax, "=x"},
      {"FROM:<a@b.c> -X", K::kParamSyntax, "-X"},
      {"FROM:<a@b.c> X=a=b", K::kParamSyntax, "X=a=b"},
  };
  for (const auto& c : cases) {
    MailParse got = ParseMailArgs(c.in);
    ASSERT_TRUE(std::holds_alternative<ArgError>(got)) << c.in;
    EXPECT_EQ(std::get<ArgError>(got).kind, c.kind) << c.in;
    EXPECT_EQ(std::get<ArgError>(got).param, c.param) << c.in;
  }
}

TEST(ParseRcptArgsTest, Table) {
  using K = ArgError::Kind;
  struct Case {
    std::string_view in;
    std::optional<K> error;  // nullopt: accepted
    std::string_view mailbox;
  } cases[] = {
      {"TO:<a@b.c>", std::nullopt, "a@b.c"},
      {"to: <a@b.c> ", std::nullopt, "a@b.c"},
      {"TO:<postmaster>", std::nullopt, "postmaster"},
      {"TO:<@x.y:a@b.c>", std::nullopt, "a@b.c"},
      {"TO:<>", K::kPath, ""},
      {"TO:", K::kSyntax, ""},
      {"FROM:<a@b.c>", K::kSyntax, ""},
      {"TO:<a@b.c> NOTIFY=NEVER", K::kParamUnsupported, ""},
      {"TO:<a@b.c> ORCPT=rfc822;a@b.c", K::kParamUnsupported, ""},
      {"TO:<a@b.c> !", K::kParamSyntax, ""},
  };
  for (const auto& c : cases) {
    RcptParse got = ParseRcptArgs(c.in);
    if (!c.error) {
      ASSERT_TRUE(std::holds_alternative<RcptArgs>(got)) << c.in;
      EXPECT_EQ(std::get<RcptArgs>(got).path.mailbox, c.mailbox) << c.in;
    } else {
      ASSERT_TRUE(std::holds_alternative<ArgError>(got)) << c.in;
      EXPECT_EQ(std::get<ArgError>(got).kind, *c.error) << c.in;
    }
  }
}

TEST(ReplyTest, Formats) {
  std::string out;
  AppendReply(&out, 250, "2.0.0", "Ok");
  AppendReply(&out, 220, "", "host ESMTP");
  AppendReply(&out, 550, "5.1.1", "<a\r\nb>: bad\x7f");
  AppendMultilineReply(&out, 250, {"host", "PIPELINING", "SMTPUTF8"});
  EXPECT_EQ(out,
            "250 2.0.0 Ok\r\n220 host ESMTP\r\n550 5.1.1 <a??b>: bad?\r\n"
            "250-host\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n");
}

TEST(ReceivedTest, Formats) {
  ReceivedFields f;
  f.helo = "client.example";
  f.peer_ip = "2001:db8::7";
  f.hostname = "mx";
  f.protocol = ReceivedProtocol(true, false);
  f.id = "s9.2";
  f.recipient = "a@b.c";
  f.date = "Mon, 2 Jun 2025 12:00:00 +0000";
  EXPECT_EQ(FormatReceived(f),
            "Received: from client.example ([IPv6:2001:db8::7])\r\n"
            "\tby mx (porcupine) with ESMTP id s9.2\r\n"
            "\tfor <a@b.c>; Mon, 2 Jun 2025 12:00:00 +0000\r\n");
  f.recipient = "";
  f.date = "";
  f.peer_ip = "192.0.2.1";
  EXPECT_EQ(FormatReceived(f),
            "Received: from client.example ([192.0.2.1])\r\n"
            "\tby mx (porcupine) with ESMTP id s9.2;\r\n"
            "\tThu, 1 Jan 1970 00:00:00 +0000\r\n");
  EXPECT_EQ(ReceivedProtocol(false, false), "SMTP");
  EXPECT_EQ(ReceivedProtocol(true, true), "UTF8SMTP");
  EXPECT_EQ(ReceivedProtocol(true, false, true), "ESMTPS");
  EXPECT_EQ(ReceivedProtocol(true, true, true), "UTF8SMTPS");
  EXPECT_EQ(ReceivedProtocol(false, false, true), "SMTP");
  EXPECT_EQ(ReceivedProtocol(true, false, false, true), "ESMTPA");
  EXPECT_EQ(ReceivedProtocol(true, false, true, true), "ESMTPSA");
  EXPECT_EQ(ReceivedProtocol(true, true, false, true), "UTF8SMTPA");
  EXPECT_EQ(ReceivedProtocol(true, true, true, true), "UTF8SMTPSA");
}

TEST(ReceivedTest, Authenticated) {
  ReceivedFields f;
  f.helo = "laptop";
  f.peer_ip = "192.0.2.1";
  f.hostname = "mx";
  f.protocol = ReceivedProtocol(true, false, true, true);
  f.id = "s9.3";
  f.recipient = "a@b.c";
  f.date = "Mon, 2 Jun 2025 12:00:00 +0000";
  f.authenticated = "alice@b.c";
  EXPECT_EQ(FormatReceived(f),
            "Received: from laptop ([192.0.2.1])\r\n"
            "\t(authenticated as alice@b.c)\r\n"
            "\tby mx (porcupine) with ESMTPSA id s9.3\r\n"
            "\tfor <a@b.c>; Mon, 2 Jun 2025 12:00:00 +0000\r\n");
}

}  // namespace
}  // namespace porcupine::smtp
