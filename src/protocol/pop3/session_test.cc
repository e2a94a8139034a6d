// Unit tests of pop3::Session that the golden transcripts cannot express:
// counters, stepping by hand, large messages, broken driver invariants, and
// randomised dialogues (fragment-size independence, framing).
#include "protocol/pop3/session.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "protocol/pop3/session_test_util.h"

namespace porcupine::pop3 {
namespace {

using testing::Driver;

// Feeds `input` in one piece, then EOF; returns the transcript.
std::string RunDialogue(Driver* d, std::string_view input) {
  d->Start();
  d->Feed(input);
  d->Eof();
  return d->transcript();
}

TEST(SessionTest, CountersCountRepliesAndErrors) {
  Driver d(Limits{});
  d.backend().AddMessage("u1", "Subject: x\r\n\r\nx\r\n");
  RunDialogue(&d,
              "BOGUS\r\nUSER alice\r\nPASS wrong\r\nUSER alice\r\nPASS secret\r\nSTAT\r\n"
              "LIST 7\r\nRETR 1\r\nQUIT\r\n");
  const Session::Counters& c = d.session().counters();
  // +OK: greeting, USER x2, login, STAT, RETR, QUIT.
  EXPECT_EQ(c.ok, 7u);
  // -ERR: BOGUS, failed PASS, LIST 7.
  EXPECT_EQ(c.err, 3u);
  // Counted errors: BOGUS and the failed login; "no such message" is not one.
  EXPECT_EQ(c.errors, 2u);
  EXPECT_TRUE(d.closed());
}

TEST(SessionTest, StepByStepRequestsAndClose) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  EXPECT_EQ(s.TakeOutput(), "+OK pop.example.test POP3 ready\r\n");
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  s.Feed("USER alice\r\nPASS se");
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(s.TakeOutput(), "+OK send PASS\r\n");
  s.Feed("cret\r\nDELE 1\r\n");
  Step step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  const Login& login = std::get<Login>(*step.request);
  EXPECT_EQ(login.user, "alice");
  EXPECT_EQ(login.password, "secret");
  EXPECT_FALSE(s.HasOutput());
  s.Complete(LoginResult(std::vector<MessageEntry>{{"a", 10}, {"b", 20}}));
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(s.TakeOutput(), "+OK maildrop has 2 messages (30 octets)\r\n+OK message 1 deleted\r\n");
  s.Feed("QUIT\r\n");
  step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  const Commit& commit = std::get<Commit>(*step.request);
  EXPECT_EQ(commit.user, "alice");
  EXPECT_EQ(commit.uids, std::vector<std::string>{"a"});
  EXPECT_FALSE(s.HasOutput());  // no +OK before the Commit is durable
  s.Complete(Status::Ok());
  EXPECT_EQ(s.Next().kind, Step::Kind::kClose);
  EXPECT_EQ(s.TakeOutput(), "+OK pop.example.test POP3 server signing off (1 message deleted)\r\n");
  // Closed for good: input is ignored, every step is kClose.
  s.Feed("NOOP\r\n");
  s.OnIdleTimeout();
  s.OnShutdown();
  EXPECT_EQ(s.Next().kind, Step::Kind::kClose);
  EXPECT_FALSE(s.HasOutput());
}

TEST(SessionTest, TarpitDelayZeroMeansNoDelaySteps) {
  Limits limits;
  limits.soft_error_limit = 0;
  limits.tarpit_delay = std::chrono::milliseconds(0);
  Driver d(limits);
  std::string t = RunDialogue(&d, "A\r\nB\r\nC\r\n");
  EXPECT_EQ(t.find("-- delay"), std::string::npos) << t;
}

TEST(SessionTest, LargeMessageIsStuffedOnce) {
  std::string line = ".leading dot and some text to make a realistic line length.......\r\n";
  std::string body = "Subject: big\r\n\r\n";
  while (body.size() < (20u << 20)) body += line;
  size_t dot_lines = (body.size() - 16) / line.size();
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  s.Feed("USER alice\r\nPASS secret\r\nRETR 1\r\n");
  Step step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  s.Complete(LoginResult(std::vector<MessageEntry>{{"big", body.size()}}));
  step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  EXPECT_EQ(std::get<Retrieve>(*step.request).uid, "big");
  s.TakeOutput();
  s.Complete(RetrieveResult(body));
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  std::string out = s.TakeOutput();
  std::string head = "+OK " + std::to_string(body.size()) + " octets\r\n";
  ASSERT_EQ(out.size(), head.size() + body.size() + dot_lines + 3);
  EXPECT_EQ(out.compare(0, head.size(), head), 0);
  EXPECT_EQ(out.compare(head.size() + 16, 2, ".."), 0);
  EXPECT_EQ(out.compare(out.size() - 5, 5, "\r\n.\r\n"), 0);
}

TEST(SessionTest, PasswordWithSpacesAndLeadingSpace) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  s.Feed("USER bob\r\nPASS  two  spaces \r\n");
  Step step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  EXPECT_EQ(std::get<Login>(*step.request).password, " two  spaces ");
}

TEST(SessionTest, LoginResultOtherErrorsAreTemporary) {
  for (Code code : {Code::kUnavailable, Code::kIoError, Code::kInternal}) {
    Session s(Limits{}, testing::TestInfo());
    s.Start();
    s.Feed("USER alice\r\nPASS secret\r\n");
    ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
    s.TakeOutput();
    s.Complete(LoginResult(Status(code, "x")));
    EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
    EXPECT_EQ(s.TakeOutput(), "-ERR [SYS/TEMP] maildrop unavailable, try again later\r\n");
    EXPECT_EQ(s.counters().errors, 0u);
  }
}

TEST(SessionTest, ThrottledLoginIsTemporaryAndCounted) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  s.Feed("USER alice\r\nPASS secret\r\n");
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.TakeOutput();
  s.Complete(LoginResult(Status::ResourceExhausted("too many failed logins")));
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(s.TakeOutput(), "-ERR [SYS/TEMP] too many failed logins, try again later\r\n");
  EXPECT_EQ(s.counters().errors, 1u);
}

TEST(SessionTest, IdleTimeoutWhileRequestOutIsIgnored) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  s.Feed("USER alice\r\nPASS secret\r\n");
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.TakeOutput();
  s.OnIdleTimeout();
  EXPECT_FALSE(s.HasOutput());
  s.Complete(LoginResult(std::vector<MessageEntry>{}));
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
}

// STLS transitions (RFC 2595), replayed at every fragment size
// (protocol::testing::ExpectTlsTranscripts).
using protocol::testing::TlsCase;

constexpr protocol::Transport kTlsAvailable{false, true, true};  // a loopback peer
constexpr protocol::Transport kTlsSecure{true, true, true};
constexpr char kCapaHead[] =
    "S: +OK Capability list follows\nS: TOP\nS: UIDL\nS: USER\nS: RESP-CODES\n"
    "S: PIPELINING\nS: AUTH-RESP-CODE\nS: SASL SCRAM-SHA-256 PLAIN\n";
constexpr char kCapaTail[] = "S: IMPLEMENTATION porcupine-test\nS: .\n";

std::vector<TlsCase> TlsCases() {
  const std::string capa_tls = std::string(kCapaHead) + "S: STLS\n" + kCapaTail;
  const std::string capa = std::string(kCapaHead) + kCapaTail;
  return {
      {"offered_then_not",
       kTlsAvailable,
       {"CAPA\r\nSTLS\r\n", "CAPA\r\n"},
       capa_tls + "S: +OK Begin TLS negotiation\n-- starttls\n" + capa + "-- close\n",
       false,
       true},
      {"pipelined_login_dropped",
       kTlsAvailable,
       {"USER alice\r\nSTLS\r\nPASS secret\r\nSTAT\r\n", "PASS secret\r\nSTAT\r\n"},
       "S: +OK send PASS\nS: +OK Begin TLS negotiation\n-- starttls\n"
       "S: -ERR send USER first\nS: -ERR command not valid in this state\n-- close\n",
       false,
       true},
      {"not_configured", {}, {"STLS\r\n"}, "S: -ERR unknown command\n-- close\n"},
      {"already_secure",
       kTlsSecure,
       {"CAPA\r\nSTLS\r\n"},
       capa + "S: -ERR command not permitted when TLS active\n-- close\n",
       false,
       true},
      {"handshake_failed",
       kTlsAvailable,
       {"STLS\r\nNOOP\r\n", "NOOP\r\n"},
       "S: +OK Begin TLS negotiation\n-- starttls failed\n-- close\n",
       true},
  };
}

TEST(SessionTlsTest, EveryFragmentSizeGivesTheSameTranscript) {
  protocol::testing::ExpectTlsTranscripts<Driver>(
      TlsCases(), Limits{}, testing::TestInfo(), [](const protocol::Transport&) {
        return std::string("S: +OK pop.example.test POP3 ready\n");
      });
}

// The engine itself drops what was pipelined behind STLS in one read.
TEST(SessionTlsTest, EngineDropsBufferedInput) {
  SessionInfo info = testing::TestInfo();
  info.transport = kTlsAvailable;
  Session s(Limits{}, info);
  s.Start();
  std::string before;
  protocol::testing::ExpectStartTlsDropsBufferedInput(s, "USER alice\r\nSTLS\r\nPASS secret\r\n",
                                                      &before);
  EXPECT_EQ(before,
            "+OK pop.example.test POP3 ready\r\n+OK send PASS\r\n+OK Begin TLS negotiation\r\n");
}

TEST(SessionTlsTest, ShutdownDuringHandshakeClosesAfterIt) {
  SessionInfo info = testing::TestInfo();
  info.transport = kTlsAvailable;
  Session s(Limits{}, info);
  s.Start();
  protocol::testing::ExpectShutdownWaitsForHandshake(s, "STLS\r\n",
                                                     "-ERR [SYS/TEMP] server shutting down\r\n");
}

#ifndef NDEBUG
TEST(SessionDeathTest, MismatchedResponseAsserts) {
  EXPECT_DEATH(
      {
        Session s(Limits{}, testing::TestInfo());
        s.Start();
        s.Feed("USER alice\r\nPASS secret\r\n");
        (void)s.Next();
        s.Complete(Status::Ok());
      },
      "response type");
}

TEST(SessionDeathTest, CompleteWithoutRequestAsserts) {
  EXPECT_DEATH(
      {
        Session s(Limits{}, testing::TestInfo());
        s.Start();
        s.Complete(Status::Ok());
      },
      "outstanding");
}
#endif

// Randomised dialogues: commands and junk drawn from a vocabulary. Whatever
// the client sends, the output is whole CRLF lines (no bare LF or CR from
// the session's own text), and the transcript does not depend on how the
// bytes were split.
std::string RandomDialogue(std::mt19937* rng) {
  static const char* const kPieces[] = {"USER alice\r\n",
                                        "PASS secret\r\n",
                                        "PASS bad\r\n",
                                        "AUTH PLAIN\r\n",
                                        "AGFsaWNlAHNlY3JldA==\r\n",
                                        "*\r\n",
                                        "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
                                        "STAT\r\n",
                                        "LIST\r\n",
                                        "LIST 1\r\n",
                                        "UIDL 2\r\n",
                                        "RETR 1\r\n",
                                        "RETR 3\r\n",
                                        "TOP 2 1\r\n",
                                        "DELE 1\r\n",
                                        "DELE 2\r\n",
                                        "RSET\r\n",
                                        "NOOP\r\n",
                                        "CAPA\r\n",
                                        "QUIT\r\n",
                                        "\r\n",
                                        "\n",
                                        "\r",
                                        "\0",
                                        ".",
                                        "BOGUS x\r\n",
                                        "LIST 99999999999999999999\r\n",
                                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
  std::string input;
  size_t n = 1 + (*rng)() % 30;
  for (size_t i = 0; i < n; ++i) {
    const char* p = kPieces[(*rng)() % std::size(kPieces)];
    input += p[0] == '\0' ? std::string(1, '\0') : std::string(p);
  }
  return input;
}

TEST(SessionFuzzTest, RandomDialoguesAreFramedAndSplitIndependent) {
  std::mt19937 rng(5034);
  Limits limits;
  limits.max_command_line = 48;
  limits.soft_error_limit = 3;
  limits.hard_error_limit = 12;
  for (int iter = 0; iter < 400; ++iter) {
    std::string input = RandomDialogue(&rng);
    auto run = [&](size_t fragment) {
      Driver d(limits);
      d.backend().AddMessage("m1", ".x\r\n\r\nbody\r\n.\r\n");
      d.backend().AddMessage("m2", "Subject: y\r\n\r\na\r\nb");
      d.backend().AddMessage("m3", "");
      d.Start();
      d.FeedInPieces(input, fragment);
      d.Eof();
      EXPECT_TRUE(d.closed());
      EXPECT_FALSE(d.unterminated());
      return d.transcript();
    };
    ASSERT_NO_FATAL_FAILURE(protocol::testing::ExpectSplitIndependent(input, &rng, run));
  }
}

}  // namespace
}  // namespace porcupine::pop3
