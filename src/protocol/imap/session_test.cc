// Unit tests of imap::Session that the golden transcripts cannot express:
// stepping by hand, counters, several sessions on one backend, IDLE with
// another session's changes, UIDVALIDITY changes, large literals, broken
// driver invariants and randomised dialogues (split independence, framing).
#include "protocol/imap/session.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "protocol/imap/session_test_util.h"

namespace porcupine::imap {
namespace {

using testing::Driver;
using testing::FakeBackend;

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// A driver logged in as alice with INBOX selected.
void LoginAndSelect(Driver* d, std::string_view folder = "INBOX") {
  d->Start();
  ASSERT_TRUE(Contains(d->Send("l LOGIN alice secret"), "l OK"));
  ASSERT_TRUE(Contains(d->Send("s SELECT " + std::string(folder)), "s OK [READ-WRITE]"));
}

size_t CountRequests(const Driver& d, size_t index) {
  size_t n = 0;
  for (const Request& r : d.requests()) n += r.index() == index ? 1 : 0;
  return n;
}

TEST(SessionStepTest, GreetingRequestsAndClose) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  EXPECT_EQ(
      s.TakeOutput(),
      "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS MOVE NAMESPACE SPECIAL-USE "
      "ENABLE ID UNSELECT CHILDREN AUTH=SCRAM-SHA-256 AUTH=PLAIN] imap.example.test ready\r\n");
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  s.Feed("a LOGIN alice sec");
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  s.Feed("ret\r\nb SELECT INBOX\r\n");
  Step step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  EXPECT_EQ(std::get<Login>(*step.request).user, "alice");
  EXPECT_EQ(std::get<Login>(*step.request).password, "secret");
  EXPECT_FALSE(s.HasOutput());
  s.Complete(Result<std::string>("alice@example.test"));
  step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  // Every later request names the canonical user.
  const OpenFolder& open = std::get<OpenFolder>(*step.request);
  EXPECT_EQ(open.user, "alice@example.test");
  EXPECT_EQ(open.name, "INBOX");
  EXPECT_TRUE(open.claim_recent);  // SELECT claims \Recent
  Snapshot snap{7, 10, {MessageInfo{3, "x", {"\\Seen"}, 0, 5}, MessageInfo{9, "y", {}, 0, 6}}, 4};
  s.Complete(Result<Snapshot>(snap));
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  std::string out = s.TakeOutput();
  EXPECT_TRUE(Contains(out, "a OK [CAPABILITY"));
  EXPECT_TRUE(Contains(out, "* 2 EXISTS\r\n* 1 RECENT\r\n* OK [UNSEEN 2] First unseen\r\n"));
  EXPECT_TRUE(Contains(out, "* OK [UIDVALIDITY 7] UIDs valid\r\n* OK [UIDNEXT 10]"));
  EXPECT_TRUE(Contains(out, "b OK [READ-WRITE] SELECT completed\r\n"));
  s.Feed("c LOGOUT\r\n");
  EXPECT_EQ(s.Next().kind, Step::Kind::kClose);
  EXPECT_EQ(s.TakeOutput(), "* BYE Logging out\r\nc OK LOGOUT completed\r\n");
  // Closed for good: input and events are ignored.
  s.Feed("d NOOP\r\n");
  s.OnIdleTimeout();
  s.OnShutdown();
  EXPECT_EQ(s.Next().kind, Step::Kind::kClose);
  EXPECT_FALSE(s.HasOutput());
}

TEST(SessionStepTest, UidnextIsNeverBelowTheHighestUid) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  s.Feed("a LOGIN alice secret\r\nb SELECT INBOX\r\n");
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.Complete(Result<std::string>("alice"));
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.Complete(Result<Snapshot>(Snapshot{1, 2, {MessageInfo{5, "x", {}, 0, 1}}}));
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_TRUE(Contains(s.TakeOutput(), "[UIDNEXT 6]"));
}

TEST(SessionCounterTest, CountsTaggedResponsesAndErrors) {
  Driver d(Limits{});
  d.Start();
  d.Send("a BOGUS");
  d.Send("b LOGIN alice wrong");
  d.Send("c LOGIN alice secret");
  d.Send("d SELECT Nowhere");
  d.Send("e AUTHENTICATE PLAIN");  // wrong state: BAD
  d.Send("f LOGOUT");
  const Session::Counters& c = d.session().counters();
  EXPECT_EQ(c.ok, 2u);      // c, f
  EXPECT_EQ(c.no, 2u);      // b, d
  EXPECT_EQ(c.bad, 2u);     // a, e
  EXPECT_EQ(c.errors, 3u);  // a, b, e; a missing folder is not the client's fault
}

TEST(SessionCounterTest, SaslCancelIsBadButNotAnError) {
  Driver d(Limits{});
  d.Start();
  d.Send("a AUTHENTICATE PLAIN");
  EXPECT_TRUE(Contains(d.Send("*"), "a BAD Authentication cancelled"));
  EXPECT_EQ(d.session().counters().bad, 1u);
  EXPECT_EQ(d.session().counters().errors, 0u);
}

TEST(SessionMultiTest, TwoSessionsSeeEachOthersChangesAtNoop) {
  FakeBackend backend;
  for (int i = 1; i <= 3; ++i) {
    backend.AddMessage("alice", "INBOX", "Subject: " + std::to_string(i) + "\r\n\r\nx\r\n");
  }
  Driver a(&backend, Limits{});
  Driver b(&backend, Limits{});
  LoginAndSelect(&a);
  LoginAndSelect(&b);

  // A flags message 2: B learns it at NOOP.
  a.Send("1 STORE 2 +FLAGS (\\Flagged)");
  std::string seen = b.Send("n1 NOOP");
  EXPECT_TRUE(Contains(seen, "S: * 2 FETCH (FLAGS (\\Flagged))\nR:") ||
              Contains(seen, "S: * 2 FETCH (FLAGS (\\Flagged))\nS: n1 OK"))
      << seen;

  // A deletes and expunges message 1: B gets the EXPUNGE.
  a.Send("2 STORE 1 +FLAGS.SILENT (\\Deleted)");
  EXPECT_TRUE(Contains(a.Send("3 EXPUNGE"), "S: * 1 EXPUNGE\n"));
  seen = b.Send("n2 NOOP");
  EXPECT_EQ(seen, "R: open INBOX claim\nS: * 1 EXPUNGE\nS: n2 OK NOOP completed\n");

  // B appends: A gets EXISTS at NOOP; B itself at once.
  std::string appended = b.Send("4 APPEND INBOX {12+}\r\nSubject: 4\r\n");
  EXPECT_TRUE(Contains(appended, "S: * 3 EXISTS\nS: * 1 RECENT\nS: 4 OK [APPENDUID 1000 4]"))
      << appended;
  seen = a.Send("n3 NOOP");
  EXPECT_TRUE(Contains(seen, "S: * 3 EXISTS\n")) << seen;

  // Both views agree on the stored flags; \Recent is each session's own:
  // A selected first and has the old messages, B claimed its append.
  std::string fa = a.Send("f UID FETCH 1:* FLAGS");
  std::string fb = b.Send("f UID FETCH 1:* FLAGS");
  EXPECT_EQ(fa,
            "S: * 1 FETCH (UID 2 FLAGS (\\Recent \\Flagged))\nS: * 2 FETCH (UID 3 FLAGS "
            "(\\Recent))\nS: * 3 FETCH (UID 4 FLAGS ())\nS: f OK UID FETCH completed\n");
  EXPECT_EQ(fb,
            "S: * 1 FETCH (UID 2 FLAGS (\\Flagged))\nS: * 2 FETCH (UID 3 FLAGS ())\nS: * 3 FETCH "
            "(UID 4 FLAGS (\\Recent))\nS: f OK UID FETCH completed\n");
}

TEST(SessionMultiTest, ExpungeElsewhereIsHeldDuringFetchStoreSearch) {
  FakeBackend backend;
  for (int i = 1; i <= 3; ++i) backend.AddMessage("alice", "INBOX", "Subject: x\r\n\r\nx\r\n");
  Driver a(&backend, Limits{});
  Driver b(&backend, Limits{});
  LoginAndSelect(&a);
  LoginAndSelect(&b);
  b.Send("1 STORE 1 +FLAGS.SILENT (\\Deleted)");
  b.Send("2 EXPUNGE");
  // A's STORE re-reads the folder but must not report the expunge yet.
  std::string store = a.Send("3 STORE 3 +FLAGS (\\Seen)");
  EXPECT_FALSE(Contains(store, "EXPUNGE")) << store;
  EXPECT_TRUE(Contains(store, "* 3 FETCH (FLAGS (\\Recent \\Seen))")) << store;
  EXPECT_FALSE(Contains(a.Send("4 FETCH 1:* FLAGS"), "EXPUNGE"));
  EXPECT_FALSE(Contains(a.Send("5 SEARCH ALL"), "EXPUNGE"));
  // The UID form may: the held expunge goes out before its OK.
  std::string uid = a.Send("6 UID SEARCH ALL");
  EXPECT_TRUE(Contains(uid, "S: * 1 EXPUNGE\nS: 6 OK")) << uid;
  EXPECT_TRUE(Contains(a.Send("7 FETCH 1:* UID"), "* 2 FETCH (UID 3)"));
}

TEST(SessionMultiTest, MoveIsSeenAsExpungeElsewhere) {
  FakeBackend backend;
  backend.AddFolder("alice", "Archive");
  backend.AddMessage("alice", "INBOX", "Subject: 1\r\n\r\n1\r\n");
  backend.AddMessage("alice", "INBOX", "Subject: 2\r\n\r\n2\r\n");
  Driver a(&backend, Limits{});
  Driver b(&backend, Limits{});
  LoginAndSelect(&a);
  LoginAndSelect(&b, "Archive");
  std::string moved = a.Send("1 MOVE 2 Archive");
  EXPECT_TRUE(Contains(moved, "S: * OK [COPYUID 1002 2 1] Moved\nS: * 2 EXPUNGE\n")) << moved;
  EXPECT_TRUE(Contains(b.Send("2 NOOP"), "S: * 1 EXISTS\n"));
  EXPECT_TRUE(Contains(a.Send("3 NOOP"), "3 OK"));
}

TEST(SessionIdleTest, AnotherSessionsAppendArrivesAtTheNextPoll) {
  FakeBackend backend;
  Limits limits;
  limits.idle_poll = std::chrono::milliseconds(250);
  Driver a(&backend, limits);
  Driver b(&backend, limits);
  LoginAndSelect(&a);
  b.Start();
  b.Send("l LOGIN alice secret");
  EXPECT_FALSE(a.session().PollInterval());
  EXPECT_TRUE(Contains(a.Send("i IDLE"), "S: + idling\n"));
  ASSERT_EQ(a.session().PollInterval(), std::chrono::milliseconds(250));
  size_t before = a.transcript().size();
  a.Poll();
  EXPECT_EQ(a.transcript().substr(before), "R: open INBOX claim\n");  // nothing new: silent
  b.Send("x APPEND INBOX {12+}\r\nSubject: x\r\n");
  before = a.transcript().size();
  a.Poll();
  EXPECT_EQ(a.transcript().substr(before), "R: open INBOX claim\nS: * 1 EXISTS\nS: * 1 RECENT\n");
  b.Send("y STORE 1 FLAGS (\\Seen)");  // not selected in b: BAD, nothing changes
  b.Send("s SELECT INBOX");
  b.Send("y STORE 1 +FLAGS.SILENT (\\Seen)");
  before = a.transcript().size();
  a.Poll();
  EXPECT_EQ(a.transcript().substr(before),
            "R: open INBOX claim\nS: * 1 FETCH (FLAGS (\\Recent \\Seen))\n");
  EXPECT_TRUE(Contains(a.Send("DONE"), "S: i OK IDLE terminated\n"));
  EXPECT_FALSE(a.session().PollInterval());
}

// The selection's re-reads tell the backend how far the session has shown
// the folder (it renumbers what arrives below that); STATUS does not.
TEST(SessionViewTest, ReReadsCarryTheHighestUidShown) {
  Driver d(Limits{});
  d.Start();
  d.Send("l LOGIN alice secret");
  d.Send("a APPEND INBOX {12+}\r\nSubject: a\r\n");
  d.Send("b APPEND INBOX {12+}\r\nSubject: b\r\n");
  d.Send("s SELECT INBOX");
  d.Send("n NOOP");
  d.Send("t STATUS INBOX (MESSAGES)");
  std::vector<OpenFolder> opens;
  for (const Request& r : d.requests()) {
    if (const auto* o = std::get_if<OpenFolder>(&r)) opens.push_back(*o);
  }
  ASSERT_GE(opens.size(), 3u);
  const OpenFolder& select = opens[opens.size() - 3];
  const OpenFolder& noop = opens[opens.size() - 2];
  const OpenFolder& status = opens.back();
  EXPECT_TRUE(select.selected);
  EXPECT_EQ(select.shown_through, 0u) << "SELECT starts a new view";
  EXPECT_TRUE(noop.selected);
  EXPECT_EQ(noop.shown_through, 2u);
  EXPECT_FALSE(status.selected);
}

// A re-read that finds nothing changed reports nothing, and a STORE that
// changed nothing still gets its FETCH replies from the view.
TEST(SessionStepTest, AnUnchangedReReadReportsNothing) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  s.TakeOutput();
  s.Feed("a LOGIN alice secret\r\nb SELECT INBOX\r\n");
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.Complete(Result<std::string>("alice@example.test"));
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.Complete(Result<Snapshot>(
      Snapshot{7, 10, {MessageInfo{3, "x", {"\\Seen"}, 0, 5}, MessageInfo{9, "y", {}, 0, 6}}, 9}));
  ASSERT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  s.TakeOutput();
  Snapshot same{7, 10, {}, 10};
  same.unchanged = true;
  s.Feed("c NOOP\r\n");
  Step step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  EXPECT_EQ(std::get<OpenFolder>(*step.request).shown_through, 9u);
  s.Complete(Result<Snapshot>(same));
  ASSERT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(s.TakeOutput(), "c OK NOOP completed\r\n");
  s.Feed("d STORE 1 +FLAGS (\\Seen)\r\n");
  step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  ASSERT_TRUE(std::holds_alternative<StoreFlags>(*step.request));
  s.Complete(Status::Ok());
  step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  ASSERT_TRUE(std::holds_alternative<OpenFolder>(*step.request));
  s.Complete(Result<Snapshot>(same));
  ASSERT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(s.TakeOutput(), "* 1 FETCH (FLAGS (\\Seen))\r\nd OK STORE completed\r\n");
  s.Feed("e FETCH 1:* FLAGS\r\n");
  ASSERT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(
      s.TakeOutput(),
      "* 1 FETCH (FLAGS (\\Seen))\r\n* 2 FETCH (FLAGS (\\Recent))\r\ne OK FETCH completed\r\n")
      << "the view is as before";
}

TEST(SessionIdleTest, NoPollWhileARequestIsOut) {
  Driver d(Limits{});
  LoginAndSelect(&d);
  d.Send("i IDLE");
  d.Hold();
  d.Poll();
  EXPECT_FALSE(d.session().PollInterval());  // the poll's OpenFolder is out
  d.Release();
  EXPECT_TRUE(d.session().PollInterval());
}

TEST(SessionViewTest, UidvalidityChangeEndsTheSession) {
  Driver d(Limits{});
  LoginAndSelect(&d);
  d.backend().folder("alice", "INBOX")->uidvalidity = 4242;
  std::string out = d.Send("n NOOP");
  EXPECT_TRUE(Contains(out, "S: * BYE Mailbox UIDVALIDITY changed, reconnect\n-- close\n")) << out;
  EXPECT_TRUE(d.closed());
}

TEST(SessionViewTest, SelectedFolderDeletedElsewhereEndsTheSession) {
  FakeBackend backend;
  backend.AddFolder("alice", "Work");
  Driver a(&backend, Limits{});
  Driver b(&backend, Limits{});
  LoginAndSelect(&a, "Work");
  b.Start();
  b.Send("l LOGIN alice secret");
  EXPECT_TRUE(Contains(b.Send("d DELETE Work"), "d OK"));
  EXPECT_TRUE(Contains(a.Send("n NOOP"), "* BYE Selected mailbox no longer exists"));
  EXPECT_TRUE(a.closed());
}

TEST(SessionViewTest, DeletingTheSelectedFolderSaysOkThenBye) {
  Driver d(Limits{});
  d.backend().AddFolder("alice", "Work");
  LoginAndSelect(&d, "Work");
  std::string out = d.Send("d DELETE Work");
  EXPECT_TRUE(Contains(out, "S: d OK DELETE completed\nS: * BYE Selected mailbox was deleted\n"));
  EXPECT_TRUE(d.closed());
}

TEST(SessionViewTest, RenamingTheSelectedFolderIsFollowed) {
  Driver d(Limits{});
  d.backend().AddFolder("alice", "Work");
  d.backend().AddFolder("alice", "Work/Now");
  d.backend().AddMessage("alice", "Work/Now", "Subject: x\r\n\r\nx\r\n");
  LoginAndSelect(&d, "Work/Now");
  EXPECT_TRUE(Contains(d.Send("r RENAME Work Old"), "r OK"));
  std::string out = d.Send("f FETCH 1 BODY.PEEK[]");
  EXPECT_TRUE(Contains(out, "R: fetch Old/Now uid=1\n")) << out;
  EXPECT_TRUE(Contains(out, "f OK FETCH completed"));
}

TEST(SessionViewTest, MessagesBelowTheHighestUidWaitForTheNextSelect) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  s.Feed("a LOGIN alice secret\r\nb SELECT INBOX\r\nc NOOP\r\n");
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.Complete(Result<std::string>("alice"));
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.Complete(Result<Snapshot>(Snapshot{1, 11, {MessageInfo{10, "x", {}, 0, 1}}, 11}));
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.TakeOutput();
  s.Complete(
      Result<Snapshot>(Snapshot{1,
                                12,
                                {MessageInfo{5, "old", {}, 0, 1}, MessageInfo{10, "x", {}, 0, 1},
                                 MessageInfo{11, "new", {}, 0, 1}},
                                12}));
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(s.TakeOutput(), "* 2 EXISTS\r\nc OK NOOP completed\r\n");
}

TEST(SessionCacheTest, BodiesAreFetchedOncePerMessage) {
  Driver d(Limits{});
  for (int i = 0; i < 3; ++i) {
    d.backend().AddMessage("alice", "INBOX", "Subject: s" + std::to_string(i) + "\r\n\r\nbody\r\n");
  }
  LoginAndSelect(&d);
  d.Send("1 SEARCH SUBJECT s1");
  EXPECT_EQ(CountRequests(d, 7), 3u);
  d.Send("2 FETCH 1:3 (ENVELOPE BODY.PEEK[HEADER])");
  d.Send("3 FETCH 2 BODY.PEEK[TEXT]");
  EXPECT_EQ(CountRequests(d, 7), 3u);
  // Only where the cheap keys leave the outcome open.
  d.Send("4 STORE 2 +FLAGS.SILENT (\\Seen)");
  d.Send("5 UNSELECT");
  d.Send("6 SELECT INBOX");  // a new selection starts with an empty cache
  d.Send("7 SEARCH SEEN BODY body");
  EXPECT_EQ(CountRequests(d, 7), 4u);
}

TEST(SessionLimitTest, LargeAppendAndFetch) {
  Driver d(Limits{});
  LoginAndSelect(&d);
  std::string body = "Subject: big\r\n\r\n";
  while (body.size() < (3u << 20))
    body += "0123456789abcdef0123456789abcdef0123456789abcdef012\r\n";
  std::string out = d.Send("a APPEND INBOX {" + std::to_string(body.size()) + "+}\r\n" + body);
  EXPECT_TRUE(Contains(out, "a OK [APPENDUID 1000 1]"));
  EXPECT_EQ(d.backend().folder("alice", "INBOX")->messages[0].body, body);
  out = d.Send("b FETCH 1 BODY.PEEK[]");
  EXPECT_TRUE(Contains(out, "S: * 1 FETCH (BODY[] {" + std::to_string(body.size()) + "}\n"));
  EXPECT_TRUE(Contains(out, "S: b OK FETCH completed\n"));
  EXPECT_FALSE(d.unterminated());
}

TEST(SessionLimitTest, PipelinedCommandsRunInOrder) {
  Limits limits;
  limits.max_pipelined = 2;
  Driver d(limits);
  d.Start();
  std::string input = "l LOGIN alice secret\r\n";
  for (int i = 0; i < 50; ++i) input += "n" + std::to_string(i) + " NOOP\r\n";
  d.Feed(input);
  const std::string& t = d.transcript();
  size_t pos = t.find("l OK");
  ASSERT_NE(pos, std::string::npos);
  for (int i = 0; i < 50; ++i) {
    size_t next = t.find("S: n" + std::to_string(i) + " OK NOOP completed\n", pos);
    ASSERT_NE(next, std::string::npos) << i;
    pos = next;
  }
}

TEST(SessionLimitTest, ShutdownDuringIdlePollFinishesThePoll) {
  Driver d(Limits{});
  LoginAndSelect(&d);
  d.Send("i IDLE");
  d.backend().AddMessage("alice", "INBOX", "Subject: x\r\n\r\nx\r\n");
  d.Hold();
  d.Poll();
  d.Shutdown();
  size_t before = d.transcript().size();
  d.Release();
  EXPECT_EQ(d.transcript().substr(before),
            "S: * 1 EXISTS\nS: * 1 RECENT\nS: * BYE server shutting down\n-- close\n");
}

TEST(SessionLimitTest, IdleTimeoutWhileRequestOutIsIgnored) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  s.TakeOutput();
  s.Feed("a LOGIN alice secret\r\n");
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.OnIdleTimeout();
  EXPECT_FALSE(s.HasOutput());
  s.Complete(Result<std::string>("alice"));
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
}

TEST(SessionLimitTest, TarpitZeroDelayMeansNoDelaySteps) {
  Limits limits;
  limits.soft_error_limit = 0;
  limits.tarpit_delay = std::chrono::milliseconds(0);
  Driver d(limits);
  d.Start();
  d.Feed("a X\r\nb Y\r\nc Z\r\n");
  EXPECT_FALSE(Contains(d.transcript(), "-- delay"));
}

TEST(SessionIdleTest, OverlongLineEndsIdleWithBad) {
  Limits limits;
  limits.parser.max_line = 64;
  Driver d(limits);
  LoginAndSelect(&d);
  d.Send("i IDLE");
  std::string out = d.Send(std::string(200, 'x'));
  EXPECT_TRUE(Contains(out, "S: i BAD")) << out;
  EXPECT_FALSE(d.session().PollInterval());
  EXPECT_TRUE(Contains(d.Send("n NOOP"), "n OK"));
  EXPECT_TRUE(Contains(d.Send("j IDLE"), "+ idling"));
  EXPECT_TRUE(Contains(d.Send("done \t"), "j OK IDLE terminated"));
}

TEST(SessionFetchTest, FailedSeenStoreStillAnswersTheFetch) {
  Driver d(Limits{});
  d.backend().AddMessage("alice", "INBOX", "Subject: x\r\n\r\nx\r\n");
  LoginAndSelect(&d);
  d.backend().FailNext("store", Status::Unavailable("x"));
  std::string out = d.Send("f FETCH 1 BODY[]");
  EXPECT_TRUE(Contains(out, "S: * 1 FETCH (BODY[] {17}\n")) << out;
  EXPECT_FALSE(Contains(out, "FLAGS"));
  EXPECT_TRUE(Contains(out, "S: f OK FETCH completed\n"));
  EXPECT_TRUE(d.backend().folder("alice", "INBOX")->messages[0].info.flags.empty());
}

TEST(SessionFetchTest, ShutdownMidFetchEndsAfterTheBodyInFlight) {
  Driver d(Limits{});
  for (int i = 0; i < 3; ++i) d.backend().AddMessage("alice", "INBOX", "Subject: x\r\n\r\nx\r\n");
  LoginAndSelect(&d);
  d.Hold();
  d.Send("f FETCH 1:3 BODY.PEEK[TEXT]");
  d.Shutdown();
  size_t before = d.transcript().size();
  d.Release();
  EXPECT_EQ(d.transcript().substr(before),
            "S: * 1 FETCH (BODY[TEXT] {3}\nS: x\nS: )\nS: * BYE server shutting down\n-- close\n");
}

TEST(SessionFetchTest, GhostsAreNotFetchedOrSearched) {
  FakeBackend backend;
  backend.AddMessage("alice", "INBOX", "Subject: a\r\n\r\nneedle\r\n");
  backend.AddMessage("alice", "INBOX", "Subject: b\r\n\r\nneedle\r\n");
  Driver a(&backend, Limits{});
  LoginAndSelect(&a);
  backend.Expunge("alice", "INBOX", 1);
  a.Send("s STORE 2 +FLAGS.SILENT (\\Seen)");  // learns of the expunge, holds it
  size_t fetches = CountRequests(a, 7);
  EXPECT_TRUE(Contains(a.Send("q SEARCH BODY needle"), "S: * SEARCH 2\n"));
  EXPECT_EQ(CountRequests(a, 7), fetches + 1);
  EXPECT_TRUE(Contains(a.Send("c COPY 1:2 INBOX"), "S: * 1 EXPUNGE\nS: c NO [EXPUNGEISSUED]"));
}

TEST(SessionCopyTest, NoCopyuidWhenTheBackendReturnsTooFewUids) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  s.Feed("a LOGIN alice secret\r\nb SELECT INBOX\r\nc COPY 1:2 Trash\r\n");
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.Complete(Result<std::string>("alice"));
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.Complete(Result<Snapshot>(
      Snapshot{1, 3, {MessageInfo{1, "x", {}, 0, 1}, MessageInfo{2, "y", {}, 0, 1}}}));
  Step step = s.Next();
  ASSERT_EQ(step.kind, Step::Kind::kRequest);
  const CopyMessages& copy = std::get<CopyMessages>(*step.request);
  EXPECT_EQ(copy.from, "INBOX");
  EXPECT_EQ(copy.to, "Trash");
  EXPECT_FALSE(copy.move);
  ASSERT_EQ(copy.messages.size(), 2u);
  s.TakeOutput();
  s.Complete(Result<CopyResult>(CopyResult{9, {5}}));
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(s.TakeOutput(), "c OK COPY completed\r\n");
}

TEST(SessionAuthTest, EofDuringSaslClosesSilently) {
  Driver d(Limits{});
  d.Start();
  d.Send("a AUTHENTICATE PLAIN");
  size_t before = d.transcript().size();
  d.Eof();
  EXPECT_EQ(d.transcript().substr(before), "-- close\n");
}

TEST(SessionListTest, InboxIsListedEvenIfTheBackendOmitsIt) {
  Session s(Limits{}, testing::TestInfo());
  s.Start();
  s.Feed("a LOGIN alice secret\r\nb LIST \"\" *\r\n");
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.Complete(Result<std::string>("alice"));
  ASSERT_EQ(s.Next().kind, Step::Kind::kRequest);
  s.TakeOutput();
  s.Complete(Result<std::vector<FolderInfo>>(std::vector<FolderInfo>{{"Work", "", false}}));
  EXPECT_EQ(s.Next().kind, Step::Kind::kNeedInput);
  EXPECT_EQ(s.TakeOutput(),
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n* LIST (\\HasNoChildren) \"/\" "
            "\"Work\"\r\nb OK LIST completed\r\n");
}

// ---- STORE sends the change; the replies are the backend's flags.

// A driver whose INBOX holds n messages "Subject: i", already logged in and
// with `select` ("SELECT INBOX" or "EXAMINE INBOX") done.
void Open(Driver* d, std::string_view select = "SELECT INBOX") {
  d->Start();
  ASSERT_TRUE(Contains(d->Send("l LOGIN alice secret"), "l OK"));
  ASSERT_TRUE(Contains(d->Send("s " + std::string(select)), "s OK"));
}

void AddMessages(FakeBackend* b, int n, const std::string& folder = "INBOX") {
  for (int i = 1; i <= n; ++i) {
    b->AddMessage("alice", folder, "Subject: " + std::to_string(i) + "\r\n\r\nx\r\n");
  }
}

const StoreFlags& LastStore(const Driver& d) {
  for (auto it = d.requests().rbegin(); it != d.requests().rend(); ++it) {
    if (const StoreFlags* s = std::get_if<StoreFlags>(&*it)) return *s;
  }
  static const StoreFlags kNone;
  ADD_FAILURE() << "no StoreFlags request";
  return kNone;
}

// imaptest `store`: two sessions adding and removing different flags of
// one message both take effect.
TEST(SessionStoreTest, TwoSessionsDoNotUndoEachOthersChanges) {
  FakeBackend backend;
  AddMessages(&backend, 4);
  Driver a(&backend, Limits{});
  Driver b(&backend, Limits{});
  Open(&a);  // claims the four messages: \Recent in A, not in B
  Open(&b);
  std::string out = a.Send("1 STORE 1:3 FLAGS (\\seen)");
  EXPECT_TRUE(Contains(out, "R: store INBOX uids=1,2,3 flags=(\\Seen)\n")) << out;
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(Contains(out, "S: * " + std::to_string(i) + " FETCH (FLAGS (\\Recent \\Seen))"));
  }
  out = b.Send("2 CHECK");
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(Contains(out, "S: * " + std::to_string(i) + " FETCH (FLAGS (\\Seen))")) << out;
  }
  EXPECT_TRUE(Contains(a.Send("3 STORE 4 -FLAGS \\seen"), "S: * 4 FETCH (FLAGS (\\Recent))"));
  EXPECT_TRUE(
      Contains(a.Send("4 STORE 3 FLAGS (\\draft)"), "S: * 3 FETCH (FLAGS (\\Recent \\Draft))\n"));
  out = a.Send("5 STORE 2,4 +FLAGS ($hello $world)");
  EXPECT_TRUE(Contains(out, "S: * 2 FETCH (FLAGS (\\Recent \\Seen $hello $world))\n")) << out;
  EXPECT_TRUE(Contains(out, "S: * 4 FETCH (FLAGS (\\Recent $hello $world))\n")) << out;

  // The view of B still says \Seen only: +FLAGS \Answered from A and
  // -FLAGS \Seen from B both reach message 1.
  EXPECT_TRUE(Contains(a.Send("6 STORE 1 +FLAGS (\\answered)"),
                       "S: * 1 FETCH (FLAGS (\\Recent \\Seen \\Answered))\n"));
  out = b.Send("7 STORE 1 -FLAGS (\\seen)");
  EXPECT_TRUE(Contains(out, "R: store INBOX uids=1 -flags=(\\Seen)\n")) << out;
  EXPECT_TRUE(Contains(out, "S: * 1 FETCH (FLAGS (\\Answered))\n")) << out;
  EXPECT_TRUE(Contains(a.Send("8 CHECK"), "S: * 1 FETCH (FLAGS (\\Recent \\Answered))\n"));
  EXPECT_FALSE(Contains(b.Send("9 CHECK"), "FETCH"));
  EXPECT_TRUE(Contains(a.Send("10 FETCH 1 FLAGS"), "S: * 1 FETCH (FLAGS (\\Recent \\Answered))\n"));
  EXPECT_TRUE(Contains(b.Send("11 FETCH 1 FLAGS"), "S: * 1 FETCH (FLAGS (\\Answered))\n"));
  EXPECT_EQ(backend.folder("alice", "INBOX")->messages[0].info.flags,
            std::vector<std::string>{"\\Answered"});
}

TEST(SessionStoreTest, TheRequestCarriesModeAndFlagsWithoutRecent) {
  Driver d(Limits{});
  AddMessages(&d.backend(), 3);
  Open(&d);
  d.Send("1 STORE 1:2 +FLAGS.SILENT (\\Flagged $Work)");
  const StoreFlags& add = LastStore(d);
  EXPECT_EQ(add.mode, StoreFlags::Mode::kAdd);
  EXPECT_EQ(add.flags, (std::vector<std::string>{"\\Flagged", "$Work"}));
  EXPECT_EQ(testing::Uids(add.messages), "1,2");
  // Sent even where the view says nothing changes: the backend may differ.
  d.Send("2 UID STORE 2 -FLAGS (\\Seen)");
  EXPECT_EQ(LastStore(d).mode, StoreFlags::Mode::kRemove);
  EXPECT_EQ(testing::Uids(LastStore(d).messages), "2");
  // \Recent cannot be stored (RFC 3501 §2.3.2): dropped from the list.
  d.Send("3 STORE 3 FLAGS (\\Recent \\Seen)");
  EXPECT_EQ(LastStore(d).mode, StoreFlags::Mode::kReplace);
  EXPECT_EQ(LastStore(d).flags, std::vector<std::string>{"\\Seen"});
  size_t stores = CountRequests(d, 8);
  std::string out = d.Send("4 STORE 3 +FLAGS (\\Recent)");  // nothing left to add
  EXPECT_EQ(CountRequests(d, 8), stores);
  EXPECT_EQ(out,
            "R: open INBOX claim\nS: * 3 FETCH (FLAGS (\\Recent \\Seen))\nS: 4 OK STORE "
            "completed\n");
  EXPECT_EQ(d.backend().folder("alice", "INBOX")->messages[2].info.flags,
            std::vector<std::string>{"\\Seen"});
}

// .SILENT keeps quiet about this STORE's own change, not about what other
// sessions did (RFC 3501 §6.4.6).
TEST(SessionStoreTest, SilentStillReportsChangesMadeElsewhere) {
  FakeBackend backend;
  AddMessages(&backend, 2);
  Driver a(&backend, Limits{});
  Driver b(&backend, Limits{});
  Open(&a);
  Open(&b);
  EXPECT_EQ(b.Send("1 STORE 1 +FLAGS.SILENT (\\Flagged)"),
            "R: store INBOX uids=1 +flags=(\\Flagged)\nR: open INBOX claim\nS: 1 OK STORE "
            "completed\n");
  // A did not know of \Flagged: its own \Seen is silent, B's \Flagged not.
  EXPECT_EQ(a.Send("2 STORE 1 +FLAGS.SILENT (\\Seen)"),
            "R: store INBOX uids=1 +flags=(\\Seen)\nR: open INBOX claim\nS: * 1 FETCH (FLAGS "
            "(\\Recent \\Flagged \\Seen))\nS: 2 OK STORE completed\n");
  // A change to another message is reported as usual.
  backend.SetFlags("alice", "INBOX", 2, {"\\Draft"});
  EXPECT_EQ(a.Send("3 STORE 1 -FLAGS.SILENT (\\Seen)"),
            "R: store INBOX uids=1 -flags=(\\Seen)\nR: open INBOX claim\nS: * 2 FETCH (FLAGS "
            "(\\Recent \\Draft))\nS: 3 OK STORE completed\n");
}

TEST(SessionStoreTest, RepliesComeFromTheBackendsFlags) {
  Driver d(Limits{});
  AddMessages(&d.backend(), 1);
  Open(&d);
  // Changed behind the session's back: the reply shows both changes.
  d.backend().SetFlags("alice", "INBOX", 1, {"\\Draft"});
  EXPECT_TRUE(Contains(d.Send("1 UID STORE 1 +FLAGS (\\Seen)"),
                       "S: * 1 FETCH (UID 1 FLAGS (\\Recent \\Draft \\Seen))\nS: 1 OK"));
  // Without the re-read, the session's own result is all it has.
  d.backend().FailNext("open", Status::Unavailable("x"));
  std::string out = d.Send("2 STORE 1 -FLAGS (\\Draft)");
  EXPECT_TRUE(Contains(out, "S: * 1 FETCH (FLAGS (\\Recent \\Seen))\nS: 2 OK")) << out;
  // A failed store is NO and no re-read.
  d.backend().FailNext("store", Status::Unavailable("x"));
  EXPECT_EQ(d.Send("3 STORE 1 +FLAGS (\\Flagged)"),
            "R: store INBOX uids=1 +flags=(\\Flagged)\nS: 3 NO [UNAVAILABLE] Temporary failure, "
            "try again later\n");
}

// ---- \Recent

// imaptest `select`: EXAMINE and STATUS count the recent messages without
// claiming them; SELECT claims them.
TEST(SessionRecentTest, ExamineAndStatusDoNotClaimSelectDoes) {
  Driver d(Limits{});
  AddMessages(&d.backend(), 2);
  d.Start();
  d.Send("l LOGIN alice secret");
  std::string out = d.Send("1 EXAMINE INBOX");
  EXPECT_TRUE(Contains(out, "R: open INBOX\n")) << out;  // no claim
  EXPECT_TRUE(Contains(out, "S: * 2 EXISTS\nS: * 2 RECENT\nS: * OK [UNSEEN 1]")) << out;
  EXPECT_TRUE(Contains(d.Send("2 FETCH 1:2 FLAGS"), "S: * 2 FETCH (FLAGS (\\Recent))\n"));
  d.Send("3 CLOSE");
  EXPECT_TRUE(Contains(d.Send("4 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)"),
                       "S: * STATUS \"INBOX\" (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY 1000 "
                       "UNSEEN 2)\n"));
  out = d.Send("5 SELECT INBOX");
  EXPECT_TRUE(Contains(out, "R: open INBOX claim\n")) << out;
  EXPECT_TRUE(Contains(out, "S: * 2 EXISTS\nS: * 2 RECENT\n")) << out;
  d.Send("6 CLOSE");
  EXPECT_TRUE(Contains(d.Send("7 STATUS INBOX (RECENT)"), "S: * STATUS \"INBOX\" (RECENT 0)\n"));
  out = d.Send("8 SELECT INBOX");
  EXPECT_TRUE(Contains(out, "S: * 2 EXISTS\nS: * 0 RECENT\n")) << out;
  EXPECT_TRUE(Contains(d.Send("9 FETCH 1:2 FLAGS"), "S: * 2 FETCH (FLAGS ())\n"));
}

// imaptest `copy`: messages copied into a folder another session has
// selected become that session's recent ones at its next NOOP.
TEST(SessionRecentTest, CopiesArriveAsRecentInTheOtherSession) {
  FakeBackend backend;
  AddMessages(&backend, 5);
  backend.AddFolder("alice", "Box2");
  Driver a(&backend, Limits{});
  Driver b(&backend, Limits{});
  Open(&a);
  Open(&b, "SELECT Box2");
  a.Send("1 STORE 1 FLAGS (\\Seen)");
  a.Send("2 STORE 2 FLAGS (\\Answered \\Flagged)");
  a.Send("3 STORE 5 FLAGS (\\Flagged $keyword1 $keyword2)");
  EXPECT_TRUE(Contains(a.Send("4 COPY 1:2,4 Box2"), "4 OK [COPYUID"));
  EXPECT_EQ(b.Send("5 NOOP"),
            "R: open Box2 claim\nS: * 3 EXISTS\nS: * 3 RECENT\nS: 5 OK NOOP completed\n");
  std::string out = b.Send("6 FETCH 1:3 (FLAGS)");
  EXPECT_TRUE(Contains(out,
                       "S: * 1 FETCH (FLAGS (\\Recent \\Seen))\n"
                       "S: * 2 FETCH (FLAGS (\\Recent \\Answered \\Flagged))\n"
                       "S: * 3 FETCH (FLAGS (\\Recent))\n"))
      << out;
  b.Send("7 STORE 3 +FLAGS ($keyword1 $keyword2)");
  a.Send("8 COPY 5 Box2");
  EXPECT_TRUE(Contains(b.Send("9 NOOP"), "S: * 4 EXISTS\nS: * 4 RECENT\nS: 9 OK"));
  EXPECT_TRUE(Contains(b.Send("10 FETCH 4 FLAGS"),
                       "S: * 4 FETCH (FLAGS (\\Recent \\Flagged $keyword1 $keyword2))\n"));
  // B claimed them: a later session gets none.
  Driver c(&backend, Limits{});
  c.Start();
  c.Send("l LOGIN alice secret");
  EXPECT_TRUE(Contains(c.Send("s SELECT Box2"), "S: * 4 EXISTS\nS: * 0 RECENT\n"));
}

// imaptest `search-flags`: RECENT, NEW (recent and unseen) and OLD.
TEST(SessionRecentTest, SearchRecentNewOld) {
  FakeBackend backend;
  AddMessages(&backend, 5);
  Driver d(&backend, Limits{});
  Open(&d);
  d.Send("1 STORE 1 FLAGS ($hello)");
  d.Send("2 STORE 2 FLAGS (\\Seen \\Flagged)");
  d.Send("3 STORE 3 FLAGS (\\Answered $hello)");
  d.Send("4 STORE 4 FLAGS (\\Flagged \\Draft)");
  d.Send("5 STORE 5 FLAGS (\\Deleted \\Answered)");
  EXPECT_TRUE(Contains(d.Send("6 SEARCH NEW"), "S: * SEARCH 1 3 4 5\n"));
  EXPECT_TRUE(Contains(d.Send("7 SEARCH OLD"), "S: * SEARCH\n"));
  EXPECT_TRUE(Contains(d.Send("8 SEARCH RECENT"), "S: * SEARCH 1 2 3 4 5\n"));
  EXPECT_TRUE(Contains(d.Send("9 SEARCH NOT NEW"), "S: * SEARCH 2\n"));
  // Another session's selection has no recent messages.
  Driver e(&backend, Limits{});
  Open(&e);
  EXPECT_TRUE(Contains(e.Send("1 SEARCH RECENT"), "S: * SEARCH\n"));
  EXPECT_TRUE(Contains(e.Send("2 SEARCH NEW"), "S: * SEARCH\n"));
  EXPECT_TRUE(Contains(e.Send("3 SEARCH OLD"), "S: * SEARCH 1 2 3 4 5\n"));
}

TEST(SessionRecentTest, ReadOnlyPollsClaimNothing) {
  FakeBackend backend;
  AddMessages(&backend, 1);
  Driver a(&backend, Limits{});
  Open(&a, "EXAMINE INBOX");
  backend.AddMessage("alice", "INBOX", "Subject: 2\r\n\r\nx\r\n");
  // The new message is not claimed, and not shown as recent either.
  EXPECT_EQ(a.Send("1 NOOP"), "R: open INBOX\nS: * 2 EXISTS\nS: 1 OK NOOP completed\n");
  EXPECT_TRUE(Contains(a.Send("2 FETCH 1:2 FLAGS"),
                       "S: * 1 FETCH (FLAGS (\\Recent))\nS: * 2 FETCH (FLAGS ())\n"));
  a.Send("3 IDLE");
  size_t before = a.transcript().size();
  a.Poll();
  EXPECT_EQ(a.transcript().substr(before), "R: open INBOX\n");
  a.Send("DONE");
  Driver b(&backend, Limits{});
  Open(&b);
  EXPECT_TRUE(Contains(b.transcript(), "S: * 2 EXISTS\nS: * 2 RECENT\n"));
}

TEST(SessionRecentTest, CountChangesAreReported) {
  FakeBackend backend;
  AddMessages(&backend, 2);
  Driver d(&backend, Limits{});
  Open(&d);
  d.Send("1 STORE 1 +FLAGS.SILENT (\\Deleted)");
  EXPECT_EQ(d.Send("2 EXPUNGE"),
            "R: expunge INBOX uids=1\nS: * 1 EXPUNGE\nR: open INBOX claim\nS: * 1 RECENT\nS: 2 OK "
            "EXPUNGE completed\n");
  // An append by this session is claimed by its re-read; \Recent in the
  // APPEND flags is dropped.
  std::string out = d.Send("3 APPEND INBOX (\\Recent \\Seen) {12+}\r\nSubject: 3\r\n");
  EXPECT_TRUE(Contains(out, "R: append INBOX flags=(\\Seen)")) << out;
  EXPECT_TRUE(Contains(out, "S: * 2 EXISTS\nS: * 2 RECENT\nS: 3 OK [APPENDUID")) << out;
  EXPECT_TRUE(Contains(d.Send("4 FETCH 2 FLAGS"), "S: * 2 FETCH (FLAGS (\\Recent \\Seen))\n"));
}

// imaptest `search-sets`: 4294967295 is a number, not "*".
TEST(SessionSearchTest, LargestUidIsNotStar) {
  Driver d(Limits{});
  AddMessages(&d.backend(), 6);
  Open(&d);
  EXPECT_TRUE(Contains(d.Send("1 UID SEARCH UID 1:4294967295"), "S: * SEARCH 1 2 3 4 5 6\n"));
  EXPECT_TRUE(Contains(d.Send("2 UID SEARCH UID 7:4294967295"), "S: * SEARCH\n"));
  EXPECT_TRUE(Contains(d.Send("3 UID SEARCH UID 7:*"), "S: * SEARCH 6\n"));
}

// imaptest `atoms` (without its '&', which makes the name invalid
// modified UTF-7, a BAD of its own): a '[' nothing closes is part of the
// name, so a missing folder is NO, not a syntax error.
TEST(SessionFolderTest, UnclosedBracketInAMailboxNameIsNoNotBad) {
  Driver d(Limits{});
  d.Start();
  d.Send("l LOGIN alice secret");
  EXPECT_EQ(d.Send("1 SELECT !#$'+,-.0123456789:;<=>?@^_`|[}"),
            "R: open !#$'+,-.0123456789:;<=>?@^_`|[} claim\nS: 1 NO [NONEXISTENT] Mailbox does "
            "not exist\n");
  d.backend().AddFolder("alice", "a[b");
  EXPECT_TRUE(Contains(d.Send("2 EXAMINE a[b"), "S: 2 OK [READ-ONLY]"));
}

// STARTTLS transitions (RFC 3501 §6.2.1), replayed at every fragment size
// down to one byte (protocol::testing::ExpectTlsTranscripts).
using protocol::testing::TlsCase;

constexpr protocol::Transport kTlsAvailable{false, true, true};  // a loopback peer
constexpr protocol::Transport kTlsSecure{true, true, true};
constexpr char kCaps[] =
    "IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS MOVE NAMESPACE SPECIAL-USE ENABLE ID UNSELECT "
    "CHILDREN AUTH=SCRAM-SHA-256 AUTH=PLAIN";

// STARTTLS is in the greeting while TLS can still start.
std::string Greeting(const protocol::Transport& t) {
  const bool starttls = t.tls_available && !t.secure;
  return std::string("S: * OK [CAPABILITY ") + kCaps + (starttls ? " STARTTLS" : "") +
         "] imap.example.test ready\n";
}

std::vector<TlsCase> TlsCases() {
  const std::string caps = std::string("S: * CAPABILITY ") + kCaps;
  return {
      {"offered_then_not",
       kTlsAvailable,
       {"a CAPABILITY\r\nb STARTTLS\r\n", "c CAPABILITY\r\n"},
       caps +
           " STARTTLS\nS: a OK CAPABILITY completed\nS: b OK Begin TLS negotiation now\n"
           "-- starttls\n" +
           caps + "\nS: c OK CAPABILITY completed\n-- close\n",
       false,
       true},
      {"pipelined_login_dropped",
       kTlsAvailable,
       {"b STARTTLS\r\nc LOGIN alice secret\r\nd SELECT INBOX\r\ne APPEND INBOX {3}\r\n",
        "f SELECT INBOX\r\n"},
       "S: b OK Begin TLS negotiation now\n-- starttls\nS: f BAD Log in first\n-- close\n",
       false,
       true},
      {"not_configured",
       {false, false, true},
       {"a STARTTLS\r\n"},
       "S: a BAD Unknown command\n-- close\n"},
      {"already_secure",
       kTlsSecure,
       {"a STARTTLS\r\n"},
       "S: a BAD TLS already active\n-- close\n",
       false,
       true},
      {"handshake_failed",
       kTlsAvailable,
       {"a STARTTLS\r\nb NOOP\r\n", "c NOOP\r\n"},
       "S: a OK Begin TLS negotiation now\n-- starttls failed\n-- close\n",
       true},
  };
}

TEST(SessionTlsTest, EveryFragmentSizeGivesTheSameTranscript) {
  protocol::testing::ExpectTlsTranscripts<Driver>(TlsCases(), Limits{}, testing::TestInfo(),
                                                  Greeting);
}

// The engine itself drops what was pipelined behind STARTTLS in one read.
TEST(SessionTlsTest, EngineDropsBufferedInput) {
  SessionInfo info = testing::TestInfo();
  info.transport = kTlsAvailable;
  Session s(Limits{}, info);
  s.Start();
  protocol::testing::ExpectStartTlsDropsBufferedInput(s, "a STARTTLS\r\nb LOGIN alice secret\r\n");
}

TEST(SessionTlsTest, ShutdownDuringHandshakeSaysByeAfterIt) {
  SessionInfo info = testing::TestInfo();
  info.transport = kTlsAvailable;
  Session s(Limits{}, info);
  s.Start();
  protocol::testing::ExpectShutdownWaitsForHandshake(s, "a STARTTLS\r\n",
                                                     "* BYE server shutting down\r\n");
}

#ifndef NDEBUG
TEST(SessionDeathTest, MismatchedResponseAsserts) {
  EXPECT_DEATH(
      {
        Session s(Limits{}, testing::TestInfo());
        s.Start();
        s.Feed("a LOGIN alice secret\r\n");
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
// the client sends, the output is whole CRLF lines and the transcript does
// not depend on how the bytes were split.
std::string RandomDialogue(std::mt19937* rng) {
  static const char* const kPieces[] = {"a LOGIN alice secret\r\n",
                                        "a LOGIN alice bad\r\n",
                                        "b SELECT INBOX\r\n",
                                        "b EXAMINE INBOX\r\n",
                                        "c FETCH 1:* (FLAGS UID)\r\n",
                                        "c FETCH 1 BODY[]\r\n",
                                        "c UID FETCH 2:* (BODY.PEEK[HEADER] RFC822.SIZE)\r\n",
                                        "d STORE 1 +FLAGS (\\Deleted)\r\n",
                                        "d UID STORE 1:* -FLAGS.SILENT (\\Seen)\r\n",
                                        "e EXPUNGE\r\n",
                                        "e UID EXPUNGE 1:2\r\n",
                                        "f SEARCH OR SEEN BODY hello\r\n",
                                        "f UID SEARCH TEXT x NOT DELETED\r\n",
                                        "g COPY 1:2 Archive\r\n",
                                        "g MOVE 1 Archive\r\n",
                                        "h APPEND INBOX {5}\r\n",
                                        "hello\r\n",
                                        "h APPEND INBOX {5+}\r\nhello\r\n",
                                        "i IDLE\r\n",
                                        "DONE\r\n",
                                        "j NOOP\r\n",
                                        "k CLOSE\r\n",
                                        "k UNSELECT\r\n",
                                        "l LIST \"\" *\r\n",
                                        "l STATUS INBOX (MESSAGES UNSEEN)\r\n",
                                        "m AUTHENTICATE PLAIN\r\n",
                                        "AGFsaWNlAHNlY3JldA==\r\n",
                                        "*\r\n",
                                        "n LOGOUT\r\n",
                                        "\r\n",
                                        "\n",
                                        "(",
                                        "\"",
                                        "{3}\r\n",
                                        "BOGUS\r\n",
                                        "x FETCH 99 FLAGS\r\n",
                                        "y CREATE Archive\r\n",
                                        "z RENAME Archive Old\r\n"};
  std::string input;
  size_t n = 1 + (*rng)() % 30;
  for (size_t i = 0; i < n; ++i) input += kPieces[(*rng)() % std::size(kPieces)];
  return input;
}

TEST(SessionFuzzTest, RandomDialoguesAreFramedAndSplitIndependent) {
  std::mt19937 rng(3501);
  Limits limits;
  limits.soft_error_limit = 3;
  limits.hard_error_limit = 12;
  limits.parser.max_line = 128;
  for (int iter = 0; iter < 300; ++iter) {
    std::string input = RandomDialogue(&rng);
    auto run = [&](size_t fragment) {
      Driver d(limits);
      d.backend().AddFolder("alice", "Archive");
      d.backend().AddMessage("alice", "INBOX", "Subject: hello\r\n\r\nhello world\r\n");
      d.backend().AddMessage("alice", "INBOX", "Subject: x\r\n\r\nx\r\n", {"\\Seen"});
      d.Start();
      d.FeedInPieces(input, fragment);
      d.Poll();
      d.Eof();
      EXPECT_TRUE(d.closed());
      EXPECT_FALSE(d.unterminated());
      return d.transcript();
    };
    ASSERT_NO_FATAL_FAILURE(protocol::testing::ExpectSplitIndependent(input, &rng, run));
  }
}

}  // namespace
}  // namespace porcupine::imap

// ---- literals share the node's memory budget with SMTP DATA (session.h, "Memory")

namespace porcupine::imap {
namespace {

SessionInfo BudgetInfo(MemoryBudget* budget) {
  SessionInfo info = testing::TestInfo();
  info.message_budget = budget;
  return info;
}

std::string Message(size_t size) {
  std::string m = "Subject: m\r\n\r\n";
  while (m.size() < size) m += "x";
  return m.substr(0, size);
}

TEST(SessionMemoryTest, ASyncLiteralOverTheBudgetGetsNoLimitAndNoContinuation) {
  MemoryBudget budget(1000);
  Driver d(Limits{}, BudgetInfo(&budget));
  LoginAndSelect(&d);
  std::string out = d.Send("a APPEND INBOX {1001}");
  EXPECT_EQ(out, "S: a NO [LIMIT] Not enough server memory for the literal now, try again later\n");
  // The client sent no message (there was no "+"): the next line is a command.
  EXPECT_TRUE(Contains(d.Send("b NOOP"), "S: b OK"));
  EXPECT_EQ(d.session().counters().no_memory, 1u);
  EXPECT_EQ(d.session().counters().errors, 0u);  // not the client's fault
  EXPECT_EQ(budget.used(), 0u);
  // One that fits is taken, and the budget is whole again once it is stored.
  const std::string m = Message(1000);
  out = d.Send("c APPEND INBOX {1000}");
  EXPECT_EQ(out, "S: + OK\n");
  EXPECT_EQ(budget.used(), 1000u);
  EXPECT_TRUE(Contains(d.Send(m), "S: c OK [APPENDUID"));
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(d.backend().folder("alice", "INBOX")->messages.back().body, m);
}

TEST(SessionMemoryTest, ANonSyncLiteralOverTheBudgetIsDiscarded) {
  MemoryBudget budget(1000);
  Driver d(Limits{}, BudgetInfo(&budget));
  LoginAndSelect(&d);
  // The octets hold lines that look like commands: they must not run.
  std::string octets = "z LOGOUT\r\n" + Message(1990);
  d.FeedInPieces("a APPEND INBOX {2000+}\r\n" + octets + "\r\nb NOOP\r\n", 100);
  const std::string& t = d.transcript();
  EXPECT_TRUE(Contains(t, "S: a NO [LIMIT] Not enough server memory"));
  EXPECT_FALSE(Contains(t, "BYE"));
  EXPECT_TRUE(Contains(t, "S: b OK NOOP completed\n"));
  EXPECT_FALSE(d.closed());
  EXPECT_EQ(budget.peak(), 0u);  // nothing of it was ever held
  EXPECT_TRUE(d.backend().folder("alice", "INBOX")->messages.empty());
}

TEST(SessionMemoryTest, TheSameTranscriptAtEveryFragmentSize) {
  const std::string input =
      "l LOGIN alice secret\r\n"
      "a APPEND INBOX {40+}\r\n" +
      Message(40) +
      "\r\n"
      "b APPEND INBOX {41}\r\n"
      "c APPEND INBOX {20}\r\n" +
      Message(20) + "\r\nd LOGOUT\r\n";
  std::string first;
  for (size_t k = input.size(); k >= 1; --k) {
    MemoryBudget budget(30);
    Driver d(Limits{}, BudgetInfo(&budget));
    d.Start();
    d.FeedInPieces(input, k);
    d.Eof();
    if (k == input.size()) {
      first = d.transcript();
      EXPECT_TRUE(Contains(first, "S: a NO [LIMIT]")) << first;
      EXPECT_TRUE(Contains(first, "S: b NO [LIMIT]")) << first;
      EXPECT_TRUE(Contains(first, "S: + OK\nR: append INBOX flags=() date=0 size=20\n")) << first;
      EXPECT_TRUE(Contains(first, "S: c OK [APPENDUID")) << first;
    }
    ASSERT_EQ(d.transcript(), first) << "fragment size " << k;
    EXPECT_EQ(budget.used(), 0u);
    EXPECT_LE(budget.peak(), 20u);
  }
}

TEST(SessionMemoryTest, AnAppendHoldsItsReservationUntilTheStoreAnswers) {
  MemoryBudget budget(1000);
  FakeBackend backend;
  Driver one(&backend, Limits{}, BudgetInfo(&budget));
  Driver two(&backend, Limits{}, BudgetInfo(&budget));
  LoginAndSelect(&one);
  LoginAndSelect(&two);
  one.Hold();  // the store does not answer yet
  one.Feed("a APPEND INBOX {600+}\r\n" + Message(600) + "\r\n");
  EXPECT_EQ(budget.used(), 600u);
  // Another session sharing the budget is refused meanwhile ...
  EXPECT_TRUE(Contains(two.Send("b APPEND INBOX {600}"), "S: b NO [LIMIT]"));
  one.Release();
  EXPECT_TRUE(Contains(one.transcript(), "S: a OK [APPENDUID"));
  EXPECT_EQ(budget.used(), 0u);
  // ... and taken once the first message is stored.
  EXPECT_EQ(two.Send("c APPEND INBOX {600}"), "S: + OK\n");
  EXPECT_TRUE(Contains(two.Send(Message(600)), "S: c OK [APPENDUID"));
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(budget.peak(), 600u);
}

TEST(SessionMemoryTest, LogoutAndByeGiveTheReservationBack) {
  MemoryBudget budget(1000);
  {
    Driver d(Limits{}, BudgetInfo(&budget));
    LoginAndSelect(&d);
    // A literal announced, then the client goes away half way.
    d.Feed("a APPEND INBOX {500}\r\n" + Message(100));
    EXPECT_EQ(budget.used(), 500u);
    d.Eof();
    EXPECT_TRUE(d.closed());
  }
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace porcupine::imap
