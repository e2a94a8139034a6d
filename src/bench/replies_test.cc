#include "bench/replies.h"

#include <gtest/gtest.h>

#include "bench/cpu.h"
#include "bench/pop3_client.h"
#include "bench/smtp_client.h"

namespace porcupine::bench {
namespace {

// Feeds `input` in pieces of `chunk` bytes, collecting replies as they
// complete; the result must not depend on the split.
std::vector<SmtpReply> ParseSmtp(std::string_view input, size_t chunk, Status* error) {
  SmtpReplyParser p;
  std::vector<SmtpReply> out;
  for (size_t pos = 0; pos < input.size(); pos += chunk) {
    p.Feed(input.substr(pos, chunk));
    while (true) {
      auto r = p.Next();
      if (!r.ok()) {
        *error = r.status();
        return out;
      }
      if (!r->has_value()) break;
      out.push_back(std::move(**r));
    }
  }
  return out;
}

struct SmtpCase {
  const char* name;
  std::string input;
  std::vector<int> codes;     // of the complete replies
  std::vector<size_t> lines;  // line count of each
  bool error = false;
};

TEST(SmtpReplyParser, TableAtEveryFragmentSize) {
  std::vector<SmtpCase> cases = {
      {"single", "250 2.1.0 Ok\r\n", {250}, {1}},
      {"ehlo", "250-mx\r\n250-PIPELINING\r\n250-SIZE 100\r\n250 SMTPUTF8\r\n", {250}, {4}},
      {"pipelined",
       "250 Ok\r\n250 Ok\r\n550 5.1.1 no\r\n354 go\r\n",
       {250, 250, 550, 354},
       {1, 1, 1, 1}},
      {"bare code", "220\r\n", {220}, {1}},
      {"bare lf", "221 bye\n", {221}, {1}},
      {"incomplete", "250-a\r\n250 b", {}, {}},
      {"mixed codes", "250-a\r\n251 b\r\n", {}, {}, true},
      {"bad code", "hello\r\n", {}, {}, true},
      {"code 600", "600 x\r\n", {}, {}, true},
      {"bad separator", "250x\r\n", {}, {}, true},
  };
  for (const SmtpCase& c : cases) {
    for (size_t chunk = 1; chunk <= c.input.size(); ++chunk) {
      Status error;
      std::vector<SmtpReply> got = ParseSmtp(c.input, chunk, &error);
      ASSERT_EQ(!error.ok(), c.error) << c.name << " chunk " << chunk << " " << error.ToString();
      ASSERT_EQ(got.size(), c.codes.size()) << c.name << " chunk " << chunk;
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].code, c.codes[i]) << c.name;
        EXPECT_EQ(got[i].lines.size(), c.lines[i]) << c.name;
      }
    }
  }
}

TEST(SmtpReplyParser, TextAndKeywords) {
  Status error;
  auto got = ParseSmtp("250-mx.example\r\n250-pipelining\r\n250 SIZE 52428800\r\n", 100, &error);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].HasKeyword("PIPELINING"));
  EXPECT_TRUE(got[0].HasKeyword("SIZE"));
  EXPECT_FALSE(got[0].HasKeyword("mx.example"));  // the first line is the host, not a keyword
  EXPECT_EQ(got[0].Text(), "250 mx.example pipelining SIZE 52428800");
}

TEST(SmtpReplyParser, LimitsLinesAndLength) {
  ReplyLimits limits;
  limits.max_line = 16;
  limits.max_smtp_lines = 3;
  SmtpReplyParser p(limits);
  p.Feed("250-a\r\n250-b\r\n250-c\r\n250 d\r\n");
  EXPECT_FALSE(p.Next().ok());
  SmtpReplyParser q(limits);
  q.Feed("250 " + std::string(20, 'x'));  // no LF yet, already too long
  EXPECT_FALSE(q.Next().ok());
}

TEST(ReplyFault, ClassifiesByCode) {
  SmtpReply r;
  r.lines = {"x"};
  r.code = 451;
  EXPECT_EQ(ReplyFault(r, "RCPT").kind, ErrorKind::kSmtp4xx);
  r.code = 554;
  EXPECT_EQ(ReplyFault(r, "DATA").kind, ErrorKind::kSmtp5xx);
  r.code = 250;
  EXPECT_EQ(ReplyFault(r, "DATA").kind, ErrorKind::kProtocol);
  EXPECT_EQ(ReplyFault(r, "DATA").detail, "unexpected reply to DATA: 250 x");
}

struct Pop3Expect {
  bool ok;
  std::string text;
  std::string body;
};

// Replays `input` split at `chunk`; `multiline[i]` says whether reply i is
// multi-line when +OK.
std::vector<Pop3Reply> ParsePop3(std::string_view input, size_t chunk,
                                 const std::vector<bool>& multiline, Status* error) {
  Pop3ReplyParser p;
  std::vector<Pop3Reply> out;
  for (size_t pos = 0; pos < input.size(); pos += chunk) {
    p.Feed(input.substr(pos, chunk));
    while (out.size() < multiline.size()) {
      auto r = p.Next(multiline[out.size()]);
      if (!r.ok()) {
        *error = r.status();
        return out;
      }
      if (!r->has_value()) break;
      out.push_back(std::move(**r));
    }
  }
  return out;
}

TEST(Pop3ReplyParser, DialogueAtEveryFragmentSize) {
  std::string input =
      "+OK POP3 ready\r\n"
      "+OK 2 320\r\n"
      "+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n"
      "+OK message follows\r\nSubject: x\r\n\r\n..dot line\r\n...\r\nend\r\n.\r\n"
      "-ERR no such message\r\n"  // multi-line command, but -ERR has no body
      "+OK\r\n";
  std::vector<bool> multiline = {false, false, true, true, true, false};
  std::vector<Pop3Expect> want = {
      {true, "POP3 ready", ""},
      {true, "2 320", ""},
      {true, "2 messages", "1 120\r\n2 200\r\n"},
      {true, "message follows", "Subject: x\r\n\r\n.dot line\r\n..\r\nend\r\n"},
      {false, "no such message", ""},
      {true, "", ""},
  };
  for (size_t chunk = 1; chunk <= input.size(); ++chunk) {
    Status error;
    std::vector<Pop3Reply> got = ParsePop3(input, chunk, multiline, &error);
    ASSERT_TRUE(error.ok()) << error.ToString();
    ASSERT_EQ(got.size(), want.size()) << "chunk " << chunk;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].ok, want[i].ok) << i;
      EXPECT_EQ(got[i].text, want[i].text) << i;
      EXPECT_EQ(got[i].body, want[i].body) << i;
    }
  }
}

TEST(Pop3ReplyParser, Errors) {
  Status error;
  ParsePop3("* OK imap?\r\n", 3, {false}, &error);
  EXPECT_FALSE(error.ok());
  ReplyLimits limits;
  limits.max_body = 10;
  Pop3ReplyParser p(limits);
  p.Feed("+OK\r\n0123456789\r\n.\r\n");
  EXPECT_FALSE(p.Next(true).ok());
}

TEST(Pop3Parsers, StatAndList) {
  EXPECT_EQ(ParseStat("2 320"), 2u);
  EXPECT_EQ(ParseStat("0 0"), 0u);
  EXPECT_FALSE(ParseStat("two 320"));
  EXPECT_FALSE(ParseStat("2"));
  auto list = ParseList("1 120\r\n7 200\r\n");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].number, 7u);
  EXPECT_EQ((*list)[1].size, 200u);
  EXPECT_TRUE(ParseList("")->empty());
  EXPECT_FALSE(ParseList("x 1\r\n"));
  EXPECT_FALSE(ParseList("0 1\r\n"));
}

TEST(ProcStat, CpuFieldsAfterTheName) {
  // comm with spaces and a ')' inside; utime=250, stime=50 ticks.
  std::string stat = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0 100";
  auto cpu = ParseProcStatCpu(stat, 100);
  ASSERT_TRUE(cpu.ok());
  EXPECT_DOUBLE_EQ(*cpu, 3.0);
  EXPECT_FALSE(ParseProcStatCpu("1234 (x) S 1 2", 100).ok());
  EXPECT_FALSE(ParseProcStatCpu("garbage", 100).ok());
  EXPECT_TRUE(ProcessCpuSeconds(getpid()).ok());
  EXPECT_FALSE(ProcessCpuSeconds(999999999).ok());
}

}  // namespace
}  // namespace porcupine::bench
