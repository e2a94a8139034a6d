#include "protocol/smtp/session.h"

#include <gtest/gtest.h>

#include <string>

#include "protocol/common/sasl.h"
#include "protocol/smtp/session_test_util.h"

namespace porcupine::smtp {
namespace {

using testing::Driver;
using testing::RunScript;
using std::string_literals::operator""s;

constexpr char kGreeting[] = "S: 220 mx.example.test ESMTP porcupine\n";
constexpr char kEhloReply[] =
    "S: 250-mx.example.test\n"
    "S: 250-PIPELINING\n"
    "S: 250-SIZE 1000\n"
    "S: 250-8BITMIME\n"
    "S: 250-ENHANCEDSTATUSCODES\n"
    "S: 250 SMTPUTF8\n";

Limits SmallLimits() {
  Limits l;
  l.max_message_bytes = 1000;
  l.max_command_line = 64;
  l.max_data_line = 100;
  l.max_recipients = 3;
  l.soft_error_limit = 3;
  l.hard_error_limit = 6;
  l.tarpit_delay = std::chrono::milliseconds(5);
  l.max_commands = 50;
  return l;
}

// Replays `input` at every fragment size from its full length down to one
// byte; every replay must produce `expected`.
void ExpectAtEveryFragmentSize(const Limits& limits, const std::string& input,
                               const std::string& expected) {
  for (size_t k = std::max<size_t>(input.size(), 1); k >= 1; --k) {
    std::string got = RunScript(limits, input, k);
    ASSERT_EQ(got, expected) << "fragment size " << k;
  }
}

struct ScriptCase {
  const char* name;
  std::string input;
  std::string expected;  // after the greeting
};

// Short scripts with their exact transcripts; the golden files under
// testdata/ hold the longer dialogues.
std::vector<ScriptCase> ScriptCases() {
  return {
      {"quit", "QUIT\r\n", "S: 221 2.0.0 Bye\n-- close\n"},
      {"eof_without_reply", "NOOP\r\nNOO", "S: 250 2.0.0 Ok\n-- close\n"},
      {"lower_case_verbs", "ehlo c.test\r\nnoop\r\nquit\r\n",
       std::string(kEhloReply) + "S: 250 2.0.0 Ok\nS: 221 2.0.0 Bye\n-- close\n"},
      {"empty_line", "\r\n", "S: 500 5.5.2 Error: command not recognized\n-- close\n"},
      {"nul", std::string("NOOP\0x\r\n", 8),
       "S: 500 5.5.2 Error: NUL character in command\n-- close\n"},
      {"bare_lf_command", "NOOP\nQUIT\r\n",
       "S: 500 5.5.2 Error: syntax error (bare CR or LF)\nS: 221 2.0.0 Bye\n-- close\n"},
      {"bare_cr_command", "NOOP\rRSET\r\n",
       "S: 500 5.5.2 Error: syntax error (bare CR or LF)\n-- close\n"},
      {"overlong_command", std::string(70, 'A') + "\r\nNOOP\r\n",
       "S: 500 5.5.2 Error: line too long\nS: 250 2.0.0 Ok\n-- close\n"},
      {"quit_args", "QUIT now\r\n", "S: 501 5.5.4 Syntax: QUIT takes no arguments\n-- close\n"},
      {"mail_before_helo", "MAIL FROM:<a@b.test>\r\n",
       "S: 503 5.5.1 Error: send HELO/EHLO first\n-- close\n"},
      {"minimal_delivery",
       "HELO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nhi\r\n.\r\n",
       "S: 250 mx.example.test\n"
       "S: 250 2.1.0 Ok\n"
       "S: 250 2.1.5 Ok\n"
       "S: 354 End data with <CR><LF>.<CR><LF>\n"
       "D: from=<> to=<bob@example.test> smtputf8=0 8bitmime=0\n"
       "M: Return-Path: <>\n"
       "M: Received: from c.test ([192.0.2.7])\n"
       "M: \\tby mx.example.test (porcupine) with SMTP id s1.1\n"
       "M: \\tfor <bob@example.test>; Mon, 2 Jun 2025 12:00:00 +0000\n"
       "M: hi\n"
       "S: 250 2.0.0 Ok: queued as s1.1\n"
       "-- close\n"},
      // NUL inside DATA: the message is read to its end, refused there and
      // not delivered (no D: line); the session goes on.
      {"nul_in_data",
       "HELO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
       "head\r\nNUL \0 here\r\ntail\r\n.\r\nNOOP\r\n"s,
       "S: 250 mx.example.test\nS: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
       "S: 354 End data with <CR><LF>.<CR><LF>\n"
       "S: 550 5.6.0 Error: NUL character in message\n"
       "S: 250 2.0.0 Ok\n-- close\n"},
      {"nul_alone_then_clean_message",
       "HELO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
       "\0\r\n.\r\nRCPT TO:<bob@example.test>\r\n"
       "MAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nok\r\n.\r\n"s,
       "S: 250 mx.example.test\nS: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
       "S: 354 End data with <CR><LF>.<CR><LF>\n"
       "S: 550 5.6.0 Error: NUL character in message\n"
       "S: 503 5.5.1 Error: need MAIL command\n"
       "S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
       "S: 354 End data with <CR><LF>.<CR><LF>\n"
       "D: from=<> to=<bob@example.test> smtputf8=0 8bitmime=0\n"
       "M: Return-Path: <>\n"
       "M: Received: from c.test ([192.0.2.7])\n"
       "M: \\tby mx.example.test (porcupine) with SMTP id s1.2\n"
       "M: \\tfor <bob@example.test>; Mon, 2 Jun 2025 12:00:00 +0000\n"
       "M: ok\n"
       "S: 250 2.0.0 Ok: queued as s1.2\n"
       "-- close\n"},
      // A dot followed by NUL is a stuffed line, not the end of the data.
      {"dot_nul_is_not_the_end",
       "HELO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
       ".\0\r\n.\r\n"s,
       "S: 250 mx.example.test\nS: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
       "S: 354 End data with <CR><LF>.<CR><LF>\n"
       "S: 550 5.6.0 Error: NUL character in message\n-- close\n"},
      {"eof_mid_data",
       "HELO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nhi\r\n",
       "S: 250 mx.example.test\nS: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\n"
       "S: 354 End data with <CR><LF>.<CR><LF>\n-- close\n"},
  };
}

TEST(SessionScriptTest, EveryFragmentSizeGivesTheSameTranscript) {
  for (const ScriptCase& c : ScriptCases()) {
    SCOPED_TRACE(c.name);
    ExpectAtEveryFragmentSize(SmallLimits(), c.input, kGreeting + c.expected);
  }
}

std::string Repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// STARTTLS transitions (RFC 3207), replayed at every fragment size down to
// one byte (protocol::testing::ExpectTlsTranscripts).
using protocol::testing::TlsCase;

constexpr protocol::Transport kTlsAvailable{false, true, false};
constexpr protocol::Transport kTlsSecure{true, true, false};
constexpr char kEhloTls[] =
    "S: 250-mx.example.test\n"
    "S: 250-PIPELINING\n"
    "S: 250-SIZE 1000\n"
    "S: 250-8BITMIME\n"
    "S: 250-ENHANCEDSTATUSCODES\n"
    "S: 250-SMTPUTF8\n"
    "S: 250 STARTTLS\n";

std::vector<TlsCase> TlsCases() {
  const std::string ehlo = "EHLO c.test\r\n";
  return {
      {"offered_then_not",
       kTlsAvailable,
       {ehlo, "STARTTLS\r\n", ehlo + "QUIT\r\n"},
       std::string(kEhloTls) + "S: 220 2.0.0 Ready to start TLS\n-- starttls\n" + kEhloReply +
           "S: 221 2.0.0 Bye\n-- close\n",
       false,
       true},
      {"pipelined_plaintext_dropped",
       kTlsAvailable,
       {"STARTTLS\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<bob@example.test>\r\nQUIT\r\n",
        "RCPT TO:<bob@example.test>\r\nQUIT\r\n"},
       "S: 220 2.0.0 Ready to start TLS\n-- starttls\n"
       "S: 503 5.5.1 Error: need MAIL command\nS: 221 2.0.0 Bye\n-- close\n",
       false,
       true},
      {"helo_forgotten",
       kTlsAvailable,
       {"HELO c.test\r\nSTARTTLS\r\n", "MAIL FROM:<>\r\n"},
       "S: 250 mx.example.test\nS: 220 2.0.0 Ready to start TLS\n-- starttls\n"
       "S: 503 5.5.1 Error: send HELO/EHLO first\n-- close\n",
       false,
       true},
      {"not_configured",
       {},
       {ehlo + "STARTTLS\r\n"},
       std::string(kEhloReply) + "S: 502 5.5.1 Error: command not implemented\n-- close\n"},
      {"already_secure",
       kTlsSecure,
       {ehlo + "STARTTLS\r\n"},
       std::string(kEhloReply) + "S: 503 5.5.1 Error: TLS already active\n-- close\n",
       false,
       true},
      {"argument",
       kTlsAvailable,
       {"STARTTLS x\r\n"},
       "S: 501 5.5.4 Syntax: STARTTLS takes no arguments\n-- close\n"},
      {"in_transaction",
       kTlsAvailable,
       {"HELO c.test\r\nMAIL FROM:<>\r\nSTARTTLS\r\n"},
       "S: 250 mx.example.test\nS: 250 2.1.0 Ok\n"
       "S: 503 5.5.1 Error: MAIL transaction in progress\n-- close\n"},
      {"handshake_failed",
       kTlsAvailable,
       {"STARTTLS\r\nNOOP\r\n", "NOOP\r\n"},
       "S: 220 2.0.0 Ready to start TLS\n-- starttls failed\n-- close\n",
       true},
  };
}

TEST(SessionTlsTest, EveryFragmentSizeGivesTheSameTranscript) {
  protocol::testing::ExpectTlsTranscripts<Driver>(
      TlsCases(), SmallLimits(), testing::TestInfo(),
      [](const protocol::Transport&) { return std::string(kGreeting); });
}

// The engine itself drops what was pipelined behind STARTTLS in one read,
// whatever the driver does with the rest of the write.
TEST(SessionTlsTest, EngineDropsBufferedInput) {
  SessionInfo info = testing::TestInfo();
  info.transport = kTlsAvailable;
  Session s(SmallLimits(), info);
  s.Start();
  ASSERT_NO_FATAL_FAILURE(protocol::testing::ExpectStartTlsDropsBufferedInput(
      s, "STARTTLS\r\nHELO evil.test\r\nMAIL FROM:<>\r\n"));
  s.Feed("MAIL FROM:<>\r\n");
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(s.TakeOutput(), "503 5.5.1 Error: send HELO/EHLO first\r\n");
}

TEST(SessionTlsTest, ShutdownDuringHandshakeClosesAfterIt) {
  SessionInfo info = testing::TestInfo();
  info.transport = kTlsAvailable;
  Session s(SmallLimits(), info);
  s.Start();
  protocol::testing::ExpectShutdownWaitsForHandshake(
      s, "STARTTLS\r\n", "421 4.3.2 Service shutting down, closing transmission channel\r\n");
}

TEST(SessionScriptTest, ThousandPipelinedNoops) {
  Limits limits;  // defaults: 100000 commands
  std::string input = Repeat("NOOP\r\n", 1000) + "QUIT\r\n";
  std::string expected =
      kGreeting + Repeat("S: 250 2.0.0 Ok\n", 1000) + "S: 221 2.0.0 Bye\n-- close\n";
  ExpectAtEveryFragmentSize(limits, input, expected);
}

TEST(SessionScriptTest, PipelinedNoopsAnsweredInOneBatch) {
  Driver d(Limits{});
  d.Start();
  d.session().Feed(Repeat("NOOP\r\n", 1000));
  // One Next() runs every buffered command before asking for input.
  EXPECT_EQ(d.session().Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(d.session().TakeOutput(), Repeat("250 2.0.0 Ok\r\n", 1000));
  EXPECT_EQ(d.session().counters().replies[2], 1001u);  // + the 220 greeting
}

TEST(SessionTest, MaxCommandsCloses) {
  Limits limits = SmallLimits();
  limits.max_commands = 3;
  std::string got = RunScript(limits, Repeat("NOOP\r\n", 5), 0);
  EXPECT_EQ(got, kGreeting + Repeat("S: 250 2.0.0 Ok\n", 3) +
                     "S: 421 4.7.0 Error: too many commands\n-- close\n");
}

TEST(SessionTest, TarpitThenHardLimit) {
  Limits limits = SmallLimits();  // soft 3, hard 6, delay 5ms
  std::string got = RunScript(limits, Repeat("BOGUS\r\n", 8), 1);
  std::string bad = "S: 500 5.5.2 Error: command not recognized\n";
  EXPECT_EQ(got, kGreeting + Repeat(bad, 4) + Repeat("-- delay 5ms\n" + bad, 2) +
                     "S: 421 4.7.0 Error: too many errors\n-- close\n");
  Driver d(limits);
  d.Start();
  d.Feed(Repeat("BOGUS\r\n", 8));
  EXPECT_EQ(d.session().counters().errors, 6u);
  EXPECT_EQ(d.session().counters().replies[5], 6u);
  EXPECT_EQ(d.session().counters().replies[4], 1u);
}

TEST(SessionTest, DeliverCarriesEnvelopeAndMessage) {
  Driver d(SmallLimits());
  d.Start();
  d.Feed(
      "EHLO c.test\r\nMAIL FROM:<s@x.test> BODY=8BITMIME SMTPUTF8\r\n"
      "RCPT TO:<Alice@Example.TEST>\r\nRCPT TO:<bob@example.test>\r\n"
      "RCPT TO:<alice@example.test>\r\nDATA\r\n");
  d.Feed("Subject: x\r\n\r\n..dot\r\n.\r\n");
  ASSERT_EQ(d.deliveries().size(), 1u);
  const Deliver& m = d.deliveries()[0];
  EXPECT_EQ(m.reverse_path, "s@x.test");
  // The duplicate (case-folded) recipient is accepted once and not rechecked.
  EXPECT_EQ(m.recipients, (std::vector<std::string>{"Alice@Example.TEST", "bob@example.test"}));
  EXPECT_EQ(d.checked().size(), 2u);
  EXPECT_TRUE(m.smtputf8);
  EXPECT_TRUE(m.eight_bit_mime);
  EXPECT_EQ(m.message,
            "Return-Path: <s@x.test>\r\n"
            "Received: from c.test ([192.0.2.7])\r\n"
            "\tby mx.example.test (porcupine) with UTF8SMTP id s1.1;\r\n"
            "\tMon, 2 Jun 2025 12:00:00 +0000\r\n"
            "Subject: x\r\n\r\n.dot\r\n");
}

TEST(SessionTest, NoClockUsesFallbackDateAndNoSessionId) {
  SessionInfo info;
  info.server_hostname = "h";
  Driver d(SmallLimits(), info);
  d.Start();
  d.Feed("HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nDATA\r\n.\r\n");
  ASSERT_EQ(d.deliveries().size(), 1u);
  EXPECT_EQ(d.deliveries()[0].message,
            "Return-Path: <>\r\n"
            "Received: from c (unknown)\r\n\tby h (porcupine) with SMTP id 1\r\n"
            "\tfor <postmaster>; Thu, 1 Jan 1970 00:00:00 +0000\r\n");
  EXPECT_NE(d.transcript().find("S: 250 2.0.0 Ok: queued as 1\n"), std::string::npos);
}

// RFC 5321 §4.4: the reverse path as the client gave it (source route
// dropped), quoted local parts and UTF-8 included, first in the message.
TEST(SessionTest, ReturnPathIsTheEnvelopeSender) {
  Driver d(SmallLimits());
  d.Start();
  d.Feed(
      "EHLO c.test\r\nMAIL FROM:<@relay.test:\"Jo Doe\"@x.test>\r\n"
      "RCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.\r\n"
      "MAIL FROM:<j\xc3\xb6rg@x.test> SMTPUTF8\r\n"
      "RCPT TO:<bob@example.test>\r\nDATA\r\ny\r\n.\r\n");
  ASSERT_EQ(d.deliveries().size(), 2u);
  auto starts = [](const std::string& s, std::string_view prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
  };
  EXPECT_TRUE(starts(d.deliveries()[0].message, "Return-Path: <\"Jo Doe\"@x.test>\r\nReceived: "))
      << d.deliveries()[0].message;
  EXPECT_TRUE(starts(d.deliveries()[1].message, "Return-Path: <j\xc3\xb6rg@x.test>\r\nReceived: "))
      << d.deliveries()[1].message;
}

// Drives the session by hand to hold a request outstanding.
struct ManualSession {
  ManualSession() : s(SmallLimits(), testing::TestInfo()) {
    s.Start();
    s.Feed("EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\n");
    Step step = s.Next();
    EXPECT_EQ(step.kind, Step::Kind::kRequest);
    s.TakeOutput();
  }
  Session s;
};

TEST(SessionTest, ShutdownWaitsForTheOutstandingRequest) {
  ManualSession m;
  m.s.Feed("NOOP\r\n");
  m.s.OnShutdown();
  EXPECT_FALSE(m.s.HasOutput());
  m.s.Complete(RecipientVerdict::kAccept);
  EXPECT_EQ(m.s.TakeOutput(),
            "250 2.1.5 Ok\r\n421 4.3.2 Service shutting down, closing transmission channel\r\n");
  EXPECT_EQ(m.s.Next().kind, Step::Kind::kClose);
  EXPECT_EQ(m.s.Next().kind, Step::Kind::kClose);
}

TEST(SessionTest, IdleTimeoutIgnoredWhileRequestOutstanding) {
  ManualSession m;
  m.s.OnIdleTimeout();
  EXPECT_FALSE(m.s.HasOutput());
  m.s.Complete(RecipientVerdict::kTempFail);
  EXPECT_EQ(m.s.TakeOutput(),
            "451 4.4.3 <bob@example.test>: Recipient lookup failed, try again later\r\n");
  EXPECT_EQ(m.s.Next().kind, Step::Kind::kNeedInput);
  m.s.OnIdleTimeout();
  EXPECT_EQ(m.s.TakeOutput(), "421 4.4.2 mx.example.test Error: timeout exceeded\r\n");
  EXPECT_EQ(m.s.Next().kind, Step::Kind::kClose);
  m.s.Feed("NOOP\r\n");  // ignored after close
  EXPECT_EQ(m.s.Next().kind, Step::Kind::kClose);
  EXPECT_FALSE(m.s.HasOutput());
}

TEST(SessionTest, EofWhileRequestOutstandingClosesAfterReply) {
  ManualSession m;
  m.s.OnEof();
  m.s.Complete(RecipientVerdict::kAccept);
  EXPECT_EQ(m.s.Next().kind, Step::Kind::kClose);
  EXPECT_EQ(m.s.TakeOutput(), "250 2.1.5 Ok\r\n");
}

TEST(SessionTest, RequestCarriesTheMailboxAsSent) {
  ManualSession m;
  m.s.Complete(RecipientVerdict::kAccept);
  m.s.Feed("RCPT TO:<@relay.test,@b.test:Alice@Example.Test>\r\n");
  Step step = m.s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  EXPECT_EQ(std::get<CheckRecipient>(*step.request).address, "Alice@Example.Test");
}

TEST(SessionDeathTest, CompleteWithoutRequestIsABrokenInvariant) {
  Session s(SmallLimits(), testing::TestInfo());
  s.Start();
  EXPECT_DEBUG_DEATH(s.Complete(RecipientVerdict::kAccept), "outstanding request");
}

TEST(SessionDeathTest, MismatchedResponseIsABrokenInvariant) {
  ManualSession m;
  EXPECT_DEBUG_DEATH(m.s.Complete(Status::Ok()), "answered with a Status");
}

}  // namespace
}  // namespace porcupine::smtp

// ---- AUTH lines may be longer than other commands (RFC 4954 §4)

namespace porcupine::smtp {
namespace {

SessionInfo SubmissionInfo() {
  SessionInfo info = testing::TestInfo();
  info.submission = true;
  return info;
}

// A PLAIN response (base64) of exactly `octets` octets for alice, whose
// password is padded to make up the length. REQUIRES: octets % 4 == 0.
std::string LongPlainResponse(size_t octets, std::string* password) {
  const size_t decoded = octets / 4 * 3;
  *password = std::string(decoded - std::string_view("\0alice\0", 7).size(), 'p');
  std::string response = protocol::EncodeBase64(std::string("\0alice\0", 7) + *password);
  EXPECT_EQ(response.size(), octets);
  return response;
}

// Feeds `input` in pieces of each size (a whole replay per size; the lines
// are too long to replay at every size down to one byte) and returns the
// transcripts, which must all be equal.
std::string RunAtSomeFragmentSizes(const Limits& limits, const std::string& input) {
  std::string first;
  for (size_t k : {input.size(), size_t{4096}, size_t{513}, size_t{97}, size_t{7}, size_t{1}}) {
    Driver d(limits, SubmissionInfo());
    d.Start();
    d.FeedInPieces(input, k);
    d.Eof();
    if (first.empty()) first = d.transcript();
    EXPECT_EQ(d.transcript(), first) << "fragment size " << k;
  }
  return first;
}

TEST(SessionAuthLineTest, InitialResponseOf12000OctetsIsParsed) {
  Limits limits;  // defaults: 512 for commands, 12288 for AUTH
  std::string password;
  const std::string response = LongPlainResponse(12000, &password);
  const std::string got =
      RunAtSomeFragmentSizes(limits, "EHLO c.test\r\nAUTH PLAIN " + response + "\r\nNOOP\r\n");
  // The credentials reached the backend whole: the line was parsed, not cut.
  EXPECT_NE(got.find("A: user=<alice> password=<" + password + ">\n"), std::string::npos) << got;
  EXPECT_NE(got.find("S: 535 5.7.8 Error: authentication failed\nS: 250 2.0.0 Ok\n"),
            std::string::npos);
  EXPECT_EQ(got.find("line too long"), std::string::npos);
}

TEST(SessionAuthLineTest, InitialResponseOf13000OctetsIsRefusedAndTheSessionGoesOn) {
  Limits limits;
  std::string password;
  const std::string response = LongPlainResponse(13000, &password);
  const std::string got =
      RunAtSomeFragmentSizes(limits, "EHLO c.test\r\nAUTH PLAIN " + response + "\r\nNOOP\r\n");
  EXPECT_EQ(got.find("A: user="), std::string::npos) << "no Login for a cut line";
  EXPECT_NE(got.find("S: 500 5.5.2 Error: line too long\nS: 250 2.0.0 Ok\n-- close\n"),
            std::string::npos)
      << got.substr(0, 2000);
}

TEST(SessionAuthLineTest, ContinuationLinesHaveTheAuthLimit) {
  Limits limits;
  std::string password;
  const std::string ok = LongPlainResponse(12000, &password);
  std::string got =
      RunAtSomeFragmentSizes(limits, "EHLO c.test\r\nAUTH PLAIN\r\n" + ok + "\r\nNOOP\r\n");
  EXPECT_NE(got.find("S: 334 \nA: user=<alice> password=<" + password + ">\nS: 535 5.7.8"),
            std::string::npos)
      << got.substr(0, 2000);
  const std::string too_long = LongPlainResponse(13000, &password);
  got = RunAtSomeFragmentSizes(limits, "EHLO c.test\r\nAUTH PLAIN\r\n" + too_long +
                                           "\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
  EXPECT_NE(got.find("S: 334 \nS: 500 5.5.6 Authentication Exchange line is too long\n"
                     "A: user=<alice> password=<secret>\nS: 235 2.7.0 Authentication successful\n"),
            std::string::npos)
      << got.substr(0, 2000);
}

TEST(SessionAuthLineTest, OtherCommandsKeepTheCommandLineLimit) {
  Limits limits;
  // 600 octets: within the AUTH limit, over the 512 of every other command.
  const std::string rcpt = "RCPT TO:<" + std::string(580, 'a') + "@example.test>\r\n";
  ASSERT_GT(rcpt.size(), 512u);
  const std::string noop = "NOOP " + std::string(505, 'x') + "\r\n";  // exactly 512: fine
  ASSERT_EQ(noop.size(), 512u);
  const std::string got = RunAtSomeFragmentSizes(
      limits, "EHLO c.test\r\n" + rcpt + noop + "AUTH " + std::string(600, 'A') + "\r\n");
  // The long AUTH line was read as AUTH: refused for its mechanism, not its length.
  EXPECT_NE(got.find("S: 250 AUTH SCRAM-SHA-256 PLAIN LOGIN\n"
                     "S: 500 5.5.2 Error: line too long\n"
                     "S: 250 2.0.0 Ok\n"
                     "S: 504 5.5.4 Unrecognized authentication type\n-- close\n"),
            std::string::npos)
      << got;
}

}  // namespace
}  // namespace porcupine::smtp
