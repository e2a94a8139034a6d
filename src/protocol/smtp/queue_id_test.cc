#include "protocol/smtp/queue_id.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace porcupine::smtp {
namespace {

TEST(SessionIdTest, FormatIsHlcThenNodeInHex) {
  EXPECT_EQ(FormatSessionId(0x0123456789abcdefull, 0xfedcba98u), "0123456789abcdeffedcba98");
  EXPECT_EQ(FormatSessionId(1, 2), "000000000000000100000002");
  EXPECT_EQ(FormatSessionId(1, 2).size(), kSessionIdDigits);
}

// The issue: two nodes started in the same second handed out the same ids.
// Two nodes whose wall clocks read exactly the same must still never agree,
// nor may one node repeat itself within a millisecond.
TEST(SessionIdTest, TwoNodesWithTheSameClockNeverCollide) {
  const int64_t frozen_ms = 1'780'000'000'000;
  Hlc clock_a([&] { return frozen_ms; });
  Hlc clock_b([&] { return frozen_ms; });
  SessionIds a(0x1111, clock_a);
  SessionIds b(0x2222, clock_b);
  std::set<std::string> seen;
  constexpr int kPerNode = 5000;
  for (int i = 0; i < kPerNode; ++i) {
    ASSERT_TRUE(seen.insert(a.Next()).second) << "node a repeated an id at " << i;
    ASSERT_TRUE(seen.insert(b.Next()).second) << "node b repeated an id at " << i;
  }
  EXPECT_EQ(seen.size(), 2u * kPerNode);
}

// A restarted node (a new HLC) starts above the ids of its previous run as
// long as its wall clock moved on.
TEST(SessionIdTest, RestartedNodeDoesNotRepeatItself) {
  int64_t now_ms = 1'780'000'000'000;
  Hlc before([&] { return now_ms; });
  SessionIds first_run(7, before);
  std::string last;
  for (int i = 0; i < 100; ++i) last = first_run.Next();
  ++now_ms;
  Hlc after([&] { return now_ms; });
  SessionIds second_run(7, after);
  EXPECT_GT(second_run.Next(), last);
}

}  // namespace
}  // namespace porcupine::smtp
