#include "outbound/client.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "outbound/client_test_util.h"

namespace porcupine::outbound {
namespace {

using testing::Drive;
using testing::FakeServer;
using testing::RunResult;
using testing::TestMessage;
using K = Outcome::Kind;
using std::chrono::minutes;
using Strings = std::vector<std::string>;

ClientOptions Opts() {
  ClientOptions o;
  o.helo_name = "client.test";
  return o;
}

TestMessage Msg(std::vector<std::string> rcpts, std::string body = "Subject: hi\r\n\r\nhello\r\n",
                std::string from = "a@here.test") {
  TestMessage m;
  m.envelope.reverse_path = std::move(from);
  m.envelope.recipients = std::move(rcpts);
  m.envelope.size = body.size();
  m.body = std::move(body);
  return m;
}

RunResult Deliver(FakeServer& s, const std::vector<TestMessage>& msgs, ClientOptions o = Opts(),
                  size_t fragment = 1u << 20, size_t body_chunk = 1u << 20) {
  Client c(o);
  return Drive(c, s, msgs, fragment, body_chunk);
}

// "kind stage status" for each recipient of message `i`.
Strings Kinds(const RunResult& r, size_t i) {
  Strings out;
  for (const RecipientResult& rr : r.results.at(i).recipients) {
    const char* k = rr.outcome.kind == K::kAccepted    ? "ok"
                    : rr.outcome.kind == K::kTemporary ? "temp"
                                                       : "perm";
    out.push_back(rr.recipient + " " + k + " " + std::string(StageName(rr.outcome.stage)) + " " +
                  rr.outcome.status.ToString());
  }
  return out;
}

bool Has(const Strings& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(Client, PipelinedDeliveryInOneWrite) {
  FakeServer s;
  RunResult r = Deliver(s, {Msg({"b@there.test", "c@there.test"})});
  ASSERT_TRUE(r.closed);
  EXPECT_FALSE(r.failure);
  EXPECT_EQ(s.commands,
            (Strings{"EHLO client.test", "MAIL FROM:<a@here.test> SIZE=22",
                     "RCPT TO:<b@there.test>", "RCPT TO:<c@there.test>", "DATA", "QUIT"}));
  // RFC 2920: MAIL, the RCPTs and DATA go out in one write.
  EXPECT_TRUE(Has(s.writes,
                  "MAIL FROM:<a@here.test> SIZE=22\r\nRCPT TO:<b@there.test>\r\n"
                  "RCPT TO:<c@there.test>\r\nDATA\r\n"));
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(Kinds(r, 0),
            (Strings{"b@there.test ok end of data 2.0.0", "c@there.test ok end of data 2.0.0"}));
  EXPECT_EQ(r.results[0].recipients[0].outcome.text, "250 2.0.0 queued");
  ASSERT_TRUE(r.results[0].recipients[0].outcome.reply);
  EXPECT_EQ(r.results[0].recipients[0].outcome.reply->code, 250);
  EXPECT_EQ(s.bodies, (Strings{"Subject: hi\r\n\r\nhello\r\n"}));
}

TEST(Client, NotPipelinedWhenNotOfferedOrNotWanted) {
  for (bool offered : {false, true}) {
    FakeServer s;
    if (!offered) s.ehlo = {"8BITMIME"};
    ClientOptions o = Opts();
    o.pipelining = offered ? false : true;  // offered but switched off, or not offered
    RunResult r = Deliver(s, {Msg({"b@there.test", "c@there.test"})}, o);
    EXPECT_FALSE(r.failure);
    for (const std::string& w : s.writes) {
      if (w.starts_with("MAIL") || w.starts_with("RCPT") || w.starts_with("DATA")) {
        EXPECT_EQ(w.find("\r\n"), w.size() - 2) << "one command per write: " << w;
      }
    }
    EXPECT_EQ(Kinds(r, 0),
              (Strings{"b@there.test ok end of data 2.0.0", "c@there.test ok end of data 2.0.0"}));
    // No SIZE= without SIZE.
    EXPECT_TRUE(
        Has(s.commands, offered ? "MAIL FROM:<a@here.test> SIZE=22" : "MAIL FROM:<a@here.test>"));
  }
}

TEST(Client, EhloRefusedFallsBackToHelo) {
  FakeServer s;
  s.ehlo_reply = "502 5.5.2 Error: command not recognized";
  Client c(Opts());
  RunResult r = Drive(c, s, {Msg({"b@there.test"})});
  EXPECT_FALSE(r.failure);
  EXPECT_TRUE(c.used_helo());
  EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "HELO client.test", "MAIL FROM:<a@here.test>",
                                 "RCPT TO:<b@there.test>", "DATA", "QUIT"}));
  EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test ok end of data 2.0.0"}));
}

TEST(Client, HelloFailures) {
  {
    FakeServer s;  // 4xx to EHLO: no HELO, temporary, QUIT
    s.ehlo_reply = "451 4.3.0 busy";
    RunResult r = Deliver(s, {Msg({"b@there.test"})});
    EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "QUIT"}));
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->kind, K::kTemporary);
    EXPECT_EQ(r.failure->stage, Stage::kHelo);
    EXPECT_EQ(r.failure->text, "451 4.3.0 busy");
    EXPECT_TRUE(r.results.empty());  // no message was started
  }
  {
    FakeServer s;  // 5xx to EHLO and HELO: permanent
    s.ehlo_reply = "500 no";
    s.helo_reply = "550 5.7.1 go away";
    RunResult r = Deliver(s, {Msg({"b@there.test"})});
    EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "HELO client.test", "QUIT"}));
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->kind, K::kPermanent);
    EXPECT_EQ(r.failure->status.ToString(), "5.7.1");
  }
}

TEST(Client, GreetingFailures) {
  {
    FakeServer s;
    s.greeting = "554 5.7.1 no mail from you";
    RunResult r = Deliver(s, {Msg({"b@there.test"})});
    EXPECT_EQ(s.commands, (Strings{"QUIT"}));  // RFC 5321 §3.1
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->kind, K::kPermanent);
    EXPECT_EQ(r.failure->stage, Stage::kConnect);
  }
  {
    FakeServer s;
    s.greeting = "421 4.3.2 not now";
    RunResult r = Deliver(s, {Msg({"b@there.test"})});
    EXPECT_TRUE(s.commands.empty());  // 421: the server closes, so do we
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->kind, K::kTemporary);
  }
  {
    FakeServer s;
    s.greeting = "SSH-2.0-OpenSSH_9.2";
    RunResult r = Deliver(s, {Msg({"b@there.test"})});
    EXPECT_TRUE(s.commands.empty());
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->kind, K::kTemporary);
    EXPECT_EQ(r.failure->status.ToString(), "4.5.0");
  }
  {
    FakeServer s;
    s.greeting = "";  // silent server: the initial 5-minute timeout
    RunResult r = Deliver(s, {Msg({"b@there.test"})});
    EXPECT_EQ(r.timeouts, 1);
    ASSERT_FALSE(r.waits.empty());
    EXPECT_EQ(r.waits[0].second, minutes(5));
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->status.ToString(), "4.4.2");
  }
}

TEST(Client, DataBeforeItsTurnFailsTheConnection) {
  FakeServer s;
  s.greeting = "220 mx.test\n250 I talk out of turn";
  RunResult r = Deliver(s, {Msg({"b@there.test"})});
  EXPECT_TRUE(s.commands.empty());
  ASSERT_TRUE(r.failure);
  EXPECT_NE(r.failure->text.find("before EHLO"), std::string::npos) << r.failure->text;
}

TEST(Client, StartTlsOpportunistic) {
  FakeServer s;
  s.ehlo = {"PIPELINING", "STARTTLS", "8BITMIME"};
  s.ehlo_after_tls = Strings{"8BITMIME", "SIZE 100"};  // no PIPELINING once secure
  Client c(Opts());
  RunResult r = Drive(c, s, {Msg({"b@there.test"})});
  EXPECT_FALSE(r.failure);
  EXPECT_TRUE(c.secure());
  // The second EHLO's extensions rule: SIZE now, and no pipelining.
  EXPECT_EQ(s.commands,
            (Strings{"EHLO client.test", "STARTTLS", "EHLO client.test",
                     "MAIL FROM:<a@here.test> SIZE=22", "RCPT TO:<b@there.test>", "DATA", "QUIT"}));
  EXPECT_TRUE(Has(s.writes, "MAIL FROM:<a@here.test> SIZE=22\r\n"));
  EXPECT_FALSE(c.extensions().pipelining);
  EXPECT_EQ(c.extensions().max_size, 100u);
}

TEST(Client, StartTlsDropsWhatCameInClearText) {
  // A man in the middle appends a fake EHLO reply to the 220; read after the
  // handshake, it would decide our extensions (CVE-2011-0411, client side).
  FakeServer s;
  s.ehlo = {"STARTTLS"};
  s.ehlo_after_tls = Strings{"PIPELINING", "SIZE 1000"};
  s.starttls_reply = "220 2.0.0 ready\n250 fake-without-extensions";
  Client c(Opts());
  RunResult r = Drive(c, s, {Msg({"b@there.test"})});
  EXPECT_FALSE(r.failure) << r.failure->text;
  EXPECT_TRUE(c.extensions().pipelining);
  EXPECT_EQ(c.extensions().max_size, 1000u);
}

TEST(Client, StartTlsRefusedOpportunisticCarriesOn) {
  FakeServer s;
  s.ehlo = {"STARTTLS"};
  s.starttls_reply = "454 4.7.0 TLS not available";
  Client c(Opts());
  RunResult r = Drive(c, s, {Msg({"b@there.test"})});
  EXPECT_FALSE(r.failure);
  EXPECT_FALSE(c.secure());
  EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "STARTTLS", "MAIL FROM:<a@here.test>",
                                 "RCPT TO:<b@there.test>", "DATA", "QUIT"}));
}

TEST(Client, StartTlsRequired) {
  ClientOptions o = Opts();
  o.tls = TlsPolicy::kRequired;
  {
    FakeServer s;  // not offered
    RunResult r = Deliver(s, {Msg({"b@there.test"})}, o);
    EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "QUIT"}));
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->kind, K::kTemporary);
    EXPECT_EQ(r.failure->stage, Stage::kStartTls);
    EXPECT_EQ(r.failure->status.ToString(), "4.7.10");
  }
  {
    FakeServer s;  // offered, then refused (even with a 5xx: our policy, temporary)
    s.ehlo = {"STARTTLS"};
    s.starttls_reply = "554 5.7.0 no";
    RunResult r = Deliver(s, {Msg({"b@there.test"})}, o);
    EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "STARTTLS", "QUIT"}));
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->kind, K::kTemporary);
    EXPECT_EQ(r.failure->text, "554 5.7.0 no");
  }
  {
    FakeServer s;  // offered and done
    s.ehlo = {"STARTTLS"};
    Client c(o);
    RunResult r = Drive(c, s, {Msg({"b@there.test"})});
    EXPECT_FALSE(r.failure);
    EXPECT_TRUE(c.secure());
    EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test ok end of data 2.0.0"}));
  }
  {
    FakeServer s;  // implicit TLS satisfies it without STARTTLS
    ClientOptions o2 = o;
    o2.implicit_tls = true;
    s.ehlo = {"STARTTLS"};
    RunResult r = Deliver(s, {Msg({"b@there.test"})}, o2);
    EXPECT_FALSE(r.failure);
    EXPECT_FALSE(Has(s.commands, "STARTTLS"));
  }
}

TEST(Client, StartTlsHandshakeFails) {
  FakeServer s;
  s.ehlo = {"STARTTLS"};
  s.tls_fails = true;
  RunResult r = Deliver(s, {Msg({"b@there.test"})});
  EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "STARTTLS"}));  // no QUIT in clear
  ASSERT_TRUE(r.failure);
  EXPECT_EQ(r.failure->stage, Stage::kStartTls);
  EXPECT_EQ(r.failure->kind, K::kTemporary);
  EXPECT_NE(r.failure->text.find("handshake failure"), std::string::npos);
}

TEST(Client, TlsPolicyNoneNeverStartsTls) {
  FakeServer s;
  s.ehlo = {"STARTTLS"};
  ClientOptions o = Opts();
  o.tls = TlsPolicy::kNone;
  RunResult r = Deliver(s, {Msg({"b@there.test"})}, o);
  EXPECT_FALSE(r.failure);
  EXPECT_FALSE(Has(s.commands, "STARTTLS"));
}

TEST(Client, AuthPlain) {
  ClientOptions o = Opts();
  o.auth_user = "u";
  o.auth_password = "p";
  {
    FakeServer s;  // over TLS
    s.ehlo = {"STARTTLS", "AUTH LOGIN"};
    s.ehlo_after_tls = Strings{"AUTH LOGIN PLAIN"};
    RunResult r = Deliver(s, {Msg({"b@there.test"})}, o);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "STARTTLS", "EHLO client.test",
                                   "AUTH PLAIN AHUAcA==", "MAIL FROM:<a@here.test>",
                                   "RCPT TO:<b@there.test>", "DATA", "QUIT"}));
  }
  {
    FakeServer s;  // in clear text: refused here unless allowed
    s.ehlo = {"AUTH PLAIN"};
    RunResult r = Deliver(s, {Msg({"b@there.test"})}, o);
    EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "QUIT"}));
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->stage, Stage::kAuth);
    EXPECT_EQ(r.failure->kind, K::kTemporary);
    ClientOptions clear = o;
    clear.auth_without_tls = true;
    FakeServer s2;
    s2.ehlo = {"AUTH PLAIN"};
    r = Deliver(s2, {Msg({"b@there.test"})}, clear);
    EXPECT_FALSE(r.failure);
    EXPECT_TRUE(Has(s2.commands, "AUTH PLAIN AHUAcA=="));
  }
  o.auth_without_tls = true;
  {
    FakeServer s;  // not offered
    s.ehlo = {"AUTH LOGIN"};
    RunResult r = Deliver(s, {Msg({"b@there.test"})}, o);
    EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "QUIT"}));
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->status.ToString(), "4.7.0");
  }
  {
    FakeServer s;  // wrong credentials: temporary (the operator fixes it; the mail waits)
    s.ehlo = {"AUTH PLAIN"};
    s.auth_reply = "535 5.7.8 bad credentials";
    RunResult r = Deliver(s, {Msg({"b@there.test"})}, o);
    EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "AUTH PLAIN AHUAcA==", "QUIT"}));
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->kind, K::kTemporary);
    EXPECT_EQ(r.failure->text, "535 5.7.8 bad credentials");
  }
}

TEST(Client, MailRefusedThenRsetBeforeTheNextMessage) {
  for (bool pipelining : {true, false}) {
    for (std::string reply : {"451 4.3.0 try later", "553 5.7.1 sender rejected"}) {
      FakeServer s;
      s.mail_reply = reply;
      ClientOptions o = Opts();
      o.pipelining = pipelining;
      Client c(o);
      // The second message is refused the same way; RSET goes before it.
      RunResult r = Drive(c, s, {Msg({"b@there.test", "c@there.test"}), Msg({"d@there.test"})});
      const char* kind = reply[0] == '4' ? "temp" : "perm";
      std::string status = reply.substr(4, 5);
      ASSERT_EQ(r.results.size(), 2u);
      EXPECT_EQ(Kinds(r, 0),
                (Strings{std::string("b@there.test ") + kind + " MAIL FROM " + status,
                         std::string("c@there.test ") + kind + " MAIL FROM " + status}));
      EXPECT_EQ(r.results[0].recipients[1].outcome.text, reply);
      EXPECT_TRUE(s.bodies.empty());
      EXPECT_EQ(std::count(s.commands.begin(), s.commands.end(), "RSET"), 1);
      EXPECT_EQ(s.commands.back(), "QUIT");
      if (!pipelining) {
        EXPECT_FALSE(Has(s.commands, "RCPT TO:<b@there.test>"));
        EXPECT_FALSE(Has(s.commands, "DATA"));
      }
      EXPECT_FALSE(r.failure);
    }
  }
}

TEST(Client, SomeRecipientsRefused) {
  for (bool pipelining : {true, false}) {
    FakeServer s;
    s.rcpt_replies["b@there.test"] = "550-5.1.1 no such user\n550 5.1.1 see https://x.test";
    s.rcpt_replies["c@there.test"] = "452 4.2.2 mailbox full";
    ClientOptions o = Opts();
    o.pipelining = pipelining;
    RunResult r = Deliver(s, {Msg({"a@there.test", "b@there.test", "c@there.test"})}, o);
    EXPECT_EQ(Kinds(r, 0),
              (Strings{"a@there.test ok end of data 2.0.0", "b@there.test perm RCPT TO 5.1.1",
                       "c@there.test temp RCPT TO 4.2.2"}));
    EXPECT_EQ(r.results[0].recipients[1].outcome.text,
              "550 5.1.1 no such user 5.1.1 see https://x.test");
    EXPECT_EQ(s.bodies.size(), 1u);
    EXPECT_FALSE(r.failure);
  }
}

TEST(Client, AllRecipientsRefusedWithoutPipeliningSendsNoData) {
  FakeServer s;
  s.ehlo = {};
  s.rcpt_replies["b@there.test"] = "550 5.1.1 no";
  s.rcpt_replies["c@there.test"] = "450 4.2.0 greylisted";
  RunResult r = Deliver(s, {Msg({"b@there.test", "c@there.test"}), Msg({"d@there.test"})});
  EXPECT_EQ(s.commands,
            (Strings{"EHLO client.test", "MAIL FROM:<a@here.test>", "RCPT TO:<b@there.test>",
                     "RCPT TO:<c@there.test>", "RSET", "MAIL FROM:<a@here.test>",
                     "RCPT TO:<d@there.test>", "DATA", "QUIT"}));
  EXPECT_EQ(Kinds(r, 0),
            (Strings{"b@there.test perm RCPT TO 5.1.1", "c@there.test temp RCPT TO 4.2.0"}));
  EXPECT_EQ(Kinds(r, 1), (Strings{"d@there.test ok end of data 2.0.0"}));
}

TEST(Client, AllRecipientsRefusedPipelinedDataRefused) {
  FakeServer s;
  s.rcpt_replies["b@there.test"] = "550 5.1.1 no";
  s.data_reply = "554 5.5.1 no valid recipients";
  RunResult r = Deliver(s, {Msg({"b@there.test"}), Msg({"d@there.test"})});
  EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test perm RCPT TO 5.1.1"}));
  EXPECT_TRUE(s.bodies.empty());
  EXPECT_EQ(std::count(s.commands.begin(), s.commands.end(), "RSET"), 1);
  EXPECT_EQ(Kinds(r, 1), (Strings{"d@there.test perm DATA 5.5.1"}));  // same server, same DATA
}

TEST(Client, AllRecipientsRefusedPipelinedDataAcceptedGetsALoneDot) {
  // RFC 2920 §3.1: the server said 354 although nobody was accepted; the
  // client must not send the message, and ends the data with a single ".".
  FakeServer s;
  s.rcpt_replies["b@there.test"] = "550 5.1.1 no";
  s.data_without_recipients = true;
  s.end_replies = {"554 5.5.1 no recipients"};
  RunResult r = Deliver(s, {Msg({"b@there.test"}), Msg({"d@there.test"})});
  EXPECT_TRUE(Has(s.writes, ".\r\n"));
  ASSERT_EQ(s.bodies.size(), 2u);
  EXPECT_EQ(s.bodies[0], "");
  EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test perm RCPT TO 5.1.1"}));
  EXPECT_EQ(Kinds(r, 1), (Strings{"d@there.test ok end of data 2.0.0"}));
  EXPECT_FALSE(Has(s.commands, "RSET"));  // the "." ended the transaction
}

TEST(Client, MailRefusedPipelinedDataAcceptedGetsALoneDot) {
  FakeServer s;
  s.mail_reply = "452 4.3.1 insufficient storage";
  s.data_without_recipients = true;  // a broken server
  RunResult r = Deliver(s, {Msg({"b@there.test"})});
  EXPECT_EQ(s.bodies, (Strings{""}));
  EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test temp MAIL FROM 4.3.1"}));
}

TEST(Client, DataAndEndOfDataRefusals) {
  struct Case {
    std::string data, end, want;
  };
  for (const Case& t : std::vector<Case>{
           {"451 4.3.0 not now", "", "b@there.test temp DATA 4.3.0"},
           {"554 5.7.1 go away", "", "b@there.test perm DATA 5.7.1"},
           {"354 go", "552 5.3.4 too big", "b@there.test perm end of data 5.3.4"},
           {"354 go", "451 4.7.1 greylisted", "b@there.test temp end of data 4.7.1"},
           {"354 go", "550 spam", "b@there.test perm end of data 5.0.0"},
       }) {
    for (bool pipelining : {true, false}) {
      FakeServer s;
      s.data_reply = t.data;
      if (!t.end.empty()) s.end_reply = t.end;
      ClientOptions o = Opts();
      o.pipelining = pipelining;
      RunResult r = Deliver(s, {Msg({"b@there.test"}), Msg({"c@there.test"})}, o);
      EXPECT_EQ(Kinds(r, 0), (Strings{t.want})) << t.data << t.end;
      // RSET only when the transaction ended before the "." reply.
      EXPECT_EQ(Has(s.commands, "RSET"), t.end.empty()) << t.data;
      EXPECT_EQ(r.results.size(), 2u);
      EXPECT_FALSE(r.failure);
    }
  }
}

TEST(Client, DotStuffingAndLineEnds) {
  FakeServer s;
  std::string body = ".leading dot\r\nnormal\n.\r\n..two\rbare cr\nlast line without end";
  RunResult r = Deliver(s, {Msg({"b@there.test"}, body)});
  ASSERT_EQ(s.bodies.size(), 1u);
  EXPECT_EQ(s.bodies[0],
            "..leading dot\r\nnormal\r\n..\r\n...two\r\nbare cr\r\nlast line without end\r\n");
  EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test ok end of data 2.0.0"}));
}

TEST(Client, BodyStreamedInSmallChunksSendsTheSameBytes) {
  std::string body = "Subject: x\r\n\r\n.a\r\nb\n.\r\n" + std::string(5000, 'z') + "\r\n";
  FakeServer whole;
  Deliver(whole, {Msg({"b@there.test"}, body)});
  for (size_t chunk : {1u, 2u, 3u, 7u, 512u}) {
    FakeServer s;
    RunResult r = Deliver(s, {Msg({"b@there.test"}, body)}, Opts(), 1u << 20, chunk);
    EXPECT_EQ(s.bodies, whole.bodies) << chunk;
    EXPECT_EQ(r.results.size(), 1u);
    for (auto t : r.body_send_timeouts) EXPECT_EQ(t, minutes(3));
  }
}

TEST(Client, EveryReplySplitAtEveryByteGivesTheSameDialogue) {
  auto server = [] {
    FakeServer s;
    s.greeting = "220-mx.test ESMTP\n220-second line\n220 third";
    s.ehlo = {"PIPELINING", "SIZE 1000000", "8BITMIME", "ENHANCEDSTATUSCODES", "AUTH PLAIN"};
    s.rcpt_replies["c@there.test"] = "550-5.1.1 first\n550-5.1.1 second\n550 5.1.1 third";
    s.end_reply = "250-2.0.0 queued\n250 2.0.0 as X";
    return s;
  };
  for (bool pipelining : {true, false}) {
    ClientOptions o = Opts();
    o.pipelining = pipelining;
    FakeServer ref_server = server();
    RunResult ref = Deliver(ref_server, {Msg({"b@there.test", "c@there.test"})}, o);
    ASSERT_EQ(Kinds(ref, 0),
              (Strings{"b@there.test ok end of data 2.0.0", "c@there.test perm RCPT TO 5.1.1"}));
    for (size_t fragment = 1; fragment <= 64; ++fragment) {
      FakeServer s = server();
      RunResult r = Deliver(s, {Msg({"b@there.test", "c@there.test"})}, o, fragment);
      ASSERT_EQ(s.writes, ref_server.writes) << fragment;
      ASSERT_EQ(Kinds(r, 0), Kinds(ref, 0)) << fragment;
      ASSERT_EQ(r.results[0].recipients[1].outcome.text,
                "550 5.1.1 first 5.1.1 second 5.1.1 third");
      ASSERT_EQ(r.results[0].recipients[0].outcome.text, "250 2.0.0 queued 2.0.0 as X");
      ASSERT_FALSE(r.failure) << fragment;
    }
  }
}

TEST(Client, ThreeMessagesOnOneConnection) {
  FakeServer s;
  s.end_replies = {"250 2.0.0 one", "451 4.3.0 two later", "250 2.0.0 three"};
  RunResult r = Deliver(s, {Msg({"b@there.test"}, "one\r\n"), Msg({"c@there.test"}, "two\r\n"),
                            Msg({"d@there.test", "e@there.test"}, "three\r\n", "")});
  ASSERT_EQ(r.results.size(), 3u);
  EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test ok end of data 2.0.0"}));
  EXPECT_EQ(Kinds(r, 1), (Strings{"c@there.test temp end of data 4.3.0"}));
  EXPECT_EQ(Kinds(r, 2),
            (Strings{"d@there.test ok end of data 2.0.0", "e@there.test ok end of data 2.0.0"}));
  EXPECT_EQ(s.bodies, (Strings{"one\r\n", "two\r\n", "three\r\n"}));
  EXPECT_EQ(std::count(s.commands.begin(), s.commands.end(), "EHLO client.test"), 1);
  EXPECT_FALSE(Has(s.commands, "RSET"));                // each ended with its "." reply
  EXPECT_TRUE(Has(s.commands, "MAIL FROM:<> SIZE=7"));  // the null sender
  EXPECT_EQ(s.commands.back(), "QUIT");
  EXPECT_FALSE(r.failure);
}

TEST(Client, GarbageReplyFailsTheConnectionCleanly) {
  for (bool pipelining : {true, false}) {
    FakeServer s;
    s.rcpt_replies["c@there.test"] = "you what?";
    ClientOptions o = Opts();
    o.pipelining = pipelining;
    RunResult r = Deliver(s, {Msg({"b@there.test", "c@there.test"}), Msg({"d@there.test"})}, o);
    ASSERT_EQ(r.results.size(), 1u);  // the second message never started
    EXPECT_EQ(Kinds(r, 0),
              (Strings{"b@there.test temp RCPT TO 4.5.0", "c@there.test temp RCPT TO 4.5.0"}));
    EXPECT_FALSE(Has(s.commands, "QUIT"));  // the stream cannot be trusted
    ASSERT_TRUE(r.failure);
    EXPECT_NE(r.failure->text.find("protocol error"), std::string::npos);
    EXPECT_TRUE(s.bodies.empty());
  }
}

TEST(Client, OverlongReplyLineOrTooManyLinesFails) {
  {
    FakeServer s;
    s.end_reply = "250 " + std::string(5000, 'x');
    RunResult r = Deliver(s, {Msg({"b@there.test"})});
    EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test temp end of data 4.5.0"}));
    ASSERT_TRUE(r.failure);
    EXPECT_NE(r.failure->text.find("longer than 2048"), std::string::npos) << r.failure->text;
  }
  {
    FakeServer s;
    for (int i = 0; i < 200; ++i) s.ehlo.push_back("X-FILLER-" + std::to_string(i));
    RunResult r = Deliver(s, {Msg({"b@there.test"})});
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->stage, Stage::kHelo);
    EXPECT_NE(r.failure->text.find("100 lines"), std::string::npos) << r.failure->text;
    EXPECT_TRUE(r.results.empty());
  }
}

TEST(Client, ShutdownReplyInThePipelineEndsEverything) {
  FakeServer s;
  s.rcpt_replies["c@there.test"] = "421 4.3.2 shutting down";
  RunResult r = Deliver(s, {Msg({"b@there.test", "c@there.test", "d@there.test"})});
  EXPECT_EQ(Kinds(r, 0),
            (Strings{"b@there.test temp RCPT TO 4.3.2", "c@there.test temp RCPT TO 4.3.2",
                     "d@there.test temp RCPT TO 4.3.2"}));
  EXPECT_FALSE(Has(s.commands, "QUIT"));
  ASSERT_TRUE(r.failure);
  EXPECT_EQ(r.failure->text, "421 4.3.2 shutting down");
}

TEST(Client, TimeoutsFollowRfc5321) {
  FakeServer s;
  s.ehlo = {};  // no pipelining: one wait per command
  RunResult r = Deliver(s, {Msg({"b@there.test"})});
  using P = std::pair<std::string, std::chrono::milliseconds>;
  EXPECT_EQ(r.waits, (std::vector<P>{{"greeting", minutes(5)},
                                     {"EHLO client.test", minutes(5)},
                                     {"MAIL FROM:<a@here.test>", minutes(5)},
                                     {"RCPT TO:<b@there.test>", minutes(5)},
                                     {"DATA", minutes(2)},
                                     {".", minutes(10)},
                                     {"QUIT", minutes(5)}}));
  EXPECT_EQ(r.body_send_timeouts, (std::vector<std::chrono::milliseconds>{minutes(3), minutes(3)}));
  ClientOptions o = Opts();
  o.timeouts.data_init = std::chrono::seconds(7);
  FakeServer silent;
  silent.data_reply = "";  // never answers DATA
  r = Deliver(silent, {Msg({"b@there.test"})}, o);
  EXPECT_EQ(r.timeouts, 1);
  EXPECT_EQ(r.waits.back(), (P{"DATA", std::chrono::seconds(7)}));
  EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test temp DATA 4.4.2"}));
  EXPECT_NE(r.results[0].recipients[0].outcome.text.find("timeout"), std::string::npos);
}

TEST(Client, ConnectionLostAfterTheDotSaysTheOutcomeIsUnknown) {
  FakeServer s;
  s.close_at_end_of_data = true;
  RunResult r = Deliver(s, {Msg({"b@there.test"}), Msg({"c@there.test"})});
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test temp end of data 4.4.2"}));
  const std::string& text = r.results[0].recipients[0].outcome.text;
  EXPECT_NE(text.find("may have accepted"), std::string::npos) << text;
  EXPECT_NE(text.find("EOF"), std::string::npos) << text;
  ASSERT_TRUE(r.failure);
}

TEST(Client, DecidedWithoutTheServer) {
  FakeServer s;
  s.ehlo = {"PIPELINING", "SIZE 100"};  // no 8BITMIME, no SMTPUTF8
  TestMessage big = Msg({"b@there.test"}, std::string(101, 'x'));
  TestMessage eight = Msg({"c@there.test"}, "caf\xc3\xa9\r\n");
  eight.envelope.eight_bit = true;
  TestMessage utf8 = Msg({"d@there.test"});
  utf8.envelope.smtputf8 = true;
  TestMessage bad_sender = Msg({"e@there.test"}, "x\r\n", "a@here.test>\r\nRSET");
  TestMessage bad_rcpt = Msg({"f@there.test\r\nDATA", "g@there.test", ""});
  RunResult r = Deliver(s, {big, eight, utf8, bad_sender, bad_rcpt});
  ASSERT_EQ(r.results.size(), 5u);
  EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test perm local 5.3.4"}));
  EXPECT_EQ(Kinds(r, 1), (Strings{"c@there.test perm local 5.6.3"}));
  EXPECT_EQ(Kinds(r, 2), (Strings{"d@there.test perm local 5.6.7"}));
  EXPECT_EQ(Kinds(r, 3), (Strings{"e@there.test perm local 5.1.7"}));
  EXPECT_EQ(Kinds(r, 4), (Strings{"f@there.test\r\nDATA perm local 5.1.3",
                                  "g@there.test ok end of data 2.0.0", " perm local 5.1.3"}));
  // Only g's transaction reached the server.
  EXPECT_EQ(s.commands, (Strings{"EHLO client.test", "MAIL FROM:<a@here.test> SIZE=22",
                                 "RCPT TO:<g@there.test>", "DATA", "QUIT"}));
}

TEST(Client, EightBitAndSmtpUtf8WhenOffered) {
  FakeServer s;
  s.ehlo = {"8BITMIME", "SMTPUTF8", "SIZE"};
  TestMessage m = Msg({"b@there.test"}, "caf\xc3\xa9\r\n", "j\xc3\xb6rg@here.test");
  m.envelope.eight_bit = true;
  m.envelope.smtputf8 = true;
  RunResult r = Deliver(s, {m});
  EXPECT_TRUE(Has(s.commands, "MAIL FROM:<j\xc3\xb6rg@here.test> SIZE=7 BODY=8BITMIME SMTPUTF8"));
  EXPECT_EQ(Kinds(r, 0), (Strings{"b@there.test ok end of data 2.0.0"}));
}

TEST(Client, RsetRefusedFailsTheNextMessage) {
  FakeServer s;
  s.mail_reply = "451 4.3.0 no";
  s.rset_reply = "500 what RSET";
  RunResult r = Deliver(s, {Msg({"b@there.test"}), Msg({"c@there.test"})});
  ASSERT_EQ(r.results.size(), 2u);
  EXPECT_EQ(Kinds(r, 1), (Strings{"c@there.test temp RSET 5.0.0"}));
  EXPECT_EQ(s.commands.back(), "QUIT");
}

TEST(Client, StepsAreStableAndCloseIsFinal) {
  Client c(Opts());
  EXPECT_EQ(c.Next().kind, Client::Step::Kind::kReceive);
  EXPECT_EQ(c.Next().kind, Client::Step::Kind::kReceive);
  c.Feed("220 hi\r\n");
  EXPECT_EQ(c.Next().kind, Client::Step::Kind::kSend);
  EXPECT_EQ(c.Next().kind, Client::Step::Kind::kSend);
  EXPECT_EQ(c.TakeOutput(), "EHLO client.test\r\n");
  EXPECT_FALSE(c.HasOutput());
  c.OnConnectionLost("reset");
  EXPECT_EQ(c.Next().kind, Client::Step::Kind::kClose);
  c.Feed("250 late\r\n");
  EXPECT_EQ(c.Next().kind, Client::Step::Kind::kClose);
  ASSERT_TRUE(c.connection_failure());
  EXPECT_EQ(c.connection_failure()->text, "connection lost (reset) waiting for the reply to EHLO");
}

}  // namespace
}  // namespace porcupine::outbound
