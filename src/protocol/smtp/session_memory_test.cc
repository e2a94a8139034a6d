// The node-wide memory budget of messages being received
// (SessionInfo::data_budget): what a session reserves, when it gives it back,
// and the 452 4.3.1 of a message that does not fit.
#include <gtest/gtest.h>

#include <string>

#include "protocol/smtp/session.h"
#include "protocol/smtp/session_test_util.h"

namespace porcupine::smtp {
namespace {

using testing::Driver;
using testing::TestInfo;

const char kEnvelope[] =
    "EHLO client.example.org\r\n"
    "MAIL FROM:<sender@example.org>\r\n"
    "RCPT TO:<alice@example.test>\r\n"
    "DATA\r\n";

// A DATA payload of about `size` bytes in lines of 78 octets, then the dot.
std::string Body(size_t size, char fill = 'x') {
  std::string line(76, fill);
  line += "\r\n";
  std::string out = "Subject: big\r\n\r\n";
  while (out.size() < size) out += line;
  return out + ".\r\n";
}

SessionInfo WithBudget(MemoryBudget* budget) {
  SessionInfo info = TestInfo();
  info.data_budget = budget;
  return info;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Runs a session by hand up to its Deliver request, which is returned (the
// session is then waiting for its answer). Recipient checks are accepted.
std::optional<Deliver> UpToDelivery(Session& s, const std::string& input) {
  s.Start();
  s.Feed(input);
  for (;;) {
    Step step = s.Next();
    if (step.kind != Step::Kind::kRequest) return std::nullopt;
    if (std::holds_alternative<Deliver>(*step.request)) {
      return std::get<Deliver>(std::move(*step.request));
    }
    s.Complete(RecipientVerdict::kAccept);
  }
}

TEST(SessionMemoryTest, TheReservationCoversTheBufferUntilTheDeliveryIsAnswered) {
  MemoryBudget budget(8 << 20);
  Session s(Limits{}, WithBudget(&budget));
  std::optional<Deliver> d = UpToDelivery(s, kEnvelope + Body(1 << 20));
  ASSERT_TRUE(d.has_value());
  const size_t size = d->message.size();
  EXPECT_GE(budget.used(), d->message.capacity());  // what the backend holds is reserved
  EXPECT_LE(budget.used(), 2 * size);               // the buffer at most doubled
  EXPECT_LE(budget.peak(), 3 * size);               // old and new buffer while it grew
  d.reset();
  s.Complete(Status::Ok());
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_TRUE(Contains(s.TakeOutput(), "250 2.0.0 Ok: queued as s1.1\r\n"));
}

TEST(SessionMemoryTest, AMessageOverTheBudgetIsReadToItsEndAndGets452) {
  // At every split: the refusal comes at the dot, never mid-message, and the
  // next transaction on the same connection is accepted.
  const std::string big = Body(200 * 1024);
  const std::string input = kEnvelope + big +
                            "MAIL FROM:<sender@example.org>\r\n"
                            "RCPT TO:<bob@example.test>\r\n"
                            "DATA\r\n"
                            "Subject: small\r\n\r\nhi\r\n.\r\nQUIT\r\n";
  for (size_t fragment : {size_t{1}, size_t{7}, size_t{1000}, size_t{16384}, input.size()}) {
    SCOPED_TRACE(fragment);
    MemoryBudget budget(64 * 1024);
    Driver d(Limits{}, WithBudget(&budget));
    d.Start();
    d.FeedInPieces(input, fragment);
    const std::string& t = d.transcript();
    EXPECT_TRUE(Contains(t, "S: 354 ")) << t;
    EXPECT_TRUE(Contains(t, "S: 452 4.3.1 Error: insufficient system storage\n")) << t;
    EXPECT_EQ(d.deliveries().size(), 1u);  // only the small one
    EXPECT_TRUE(Contains(t, "S: 250 2.0.0 Ok: queued as s1.2\n")) << t;
    EXPECT_TRUE(d.closed());
    EXPECT_EQ(d.session().counters().errors, 0u);  // not the client's fault
    EXPECT_EQ(budget.used(), 0u);
    EXPECT_LE(budget.peak(), budget.limit());
    EXPECT_GE(budget.refusals(), 1u);
  }
}

TEST(SessionMemoryTest, TheBudgetIsGivenBackAsSoonAsTheMessageIsRefused) {
  MemoryBudget budget(64 * 1024);
  Driver d(Limits{}, WithBudget(&budget));
  d.Start();
  const std::string big = Body(1 << 20);
  d.Feed(kEnvelope + big.substr(0, big.size() / 2));  // half of it, no dot yet
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_FALSE(Contains(d.transcript(), "452"));
  d.Feed(big.substr(big.size() / 2));
  EXPECT_TRUE(Contains(d.transcript(), "S: 452 4.3.1 "));
}

TEST(SessionMemoryTest, SessionsShareOneBudget) {
  MemoryBudget budget(3 << 20);
  const std::string message = kEnvelope + Body(1 << 20);
  Session first(Limits{}, WithBudget(&budget));
  std::optional<Deliver> held = UpToDelivery(first, message);
  ASSERT_TRUE(held.has_value());  // being stored: its 1-2 MiB stay taken

  Driver second(Limits{}, WithBudget(&budget));
  second.Start();
  second.Feed(message);
  EXPECT_TRUE(Contains(second.transcript(), "S: 452 4.3.1 ")) << second.transcript();
  EXPECT_TRUE(second.deliveries().empty());

  held.reset();
  first.Complete(Status::Ok());
  EXPECT_EQ(budget.used(), 0u);
  second.Feed(message.substr(message.find("MAIL")));  // the client tries again
  EXPECT_EQ(second.deliveries().size(), 1u) << second.transcript();
  EXPECT_EQ(budget.used(), 0u);
}

TEST(SessionMemoryTest, ClientErrorsWinOverTheBudget) {
  MemoryBudget budget(16 * 1024);
  Limits limits;
  limits.max_message_bytes = 100 * 1024;
  Driver d(limits, WithBudget(&budget));
  d.Start();
  d.Feed(kEnvelope + Body(200 * 1024));
  EXPECT_TRUE(Contains(d.transcript(), "S: 552 5.3.4 ")) << d.transcript();
  EXPECT_FALSE(Contains(d.transcript(), "S: 452 "));
  EXPECT_EQ(budget.used(), 0u);
}

TEST(SessionMemoryTest, ABudgetTooSmallForTheHeadersRefusesEveryMessage) {
  MemoryBudget budget(16);
  Driver d(Limits{}, WithBudget(&budget));
  d.Start();
  d.Feed(std::string(kEnvelope) + "Subject: x\r\n\r\nx\r\n.\r\n");
  EXPECT_TRUE(Contains(d.transcript(), "S: 452 4.3.1 ")) << d.transcript();
  EXPECT_EQ(budget.used(), 0u);
}

TEST(SessionMemoryTest, TheSessionGivesBackWhatItHoldsWhenItEnds) {
  MemoryBudget budget(8 << 20);
  {
    Driver d(Limits{}, WithBudget(&budget));
    d.Start();
    const std::string big = Body(1 << 20);
    d.Feed(kEnvelope + big.substr(0, big.size() / 2));
    EXPECT_GT(budget.used(), 0u);
    d.Eof();  // the client vanished mid-message
    EXPECT_EQ(budget.used(), 0u);
  }
  {
    Session s(Limits{}, WithBudget(&budget));
    std::optional<Deliver> d = UpToDelivery(s, kEnvelope + Body(1 << 20));
    ASSERT_TRUE(d.has_value());
    EXPECT_GT(budget.used(), 0u);
  }  // destroyed with its delivery unanswered (the node stopped)
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace porcupine::smtp
