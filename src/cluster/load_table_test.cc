#include "cluster/load_table.h"

#include <gtest/gtest.h>

#include "cluster/balancer.h"

namespace porcupine::cluster {
namespace {

constexpr int64_t kStaleMs = 5000;

TEST(LoadTable, GetIsFreshUntilStaleAfter) {
  struct Case {
    int64_t age_ms;
    std::optional<uint64_t> want;
  };
  for (const Case& c : {Case{0, 7}, Case{kStaleMs - 1, 7}, Case{kStaleMs, 7},
                        Case{kStaleMs + 1, std::nullopt}, Case{10 * kStaleMs, std::nullopt}}) {
    SCOPED_TRACE("age " + std::to_string(c.age_ms));
    LoadTable t(kStaleMs);
    t.Update(1, 7, 1000);
    EXPECT_EQ(t.Get(1, 1000 + c.age_ms), c.want);
  }
}

TEST(LoadTable, UnknownNodeHasNoLoad) {
  LoadTable t;
  EXPECT_EQ(t.Get(1, 0), std::nullopt);
  t.Update(2, 3, 0);
  EXPECT_EQ(t.Get(1, 0), std::nullopt);
}

TEST(LoadTable, NewerReportReplacesOlderIsIgnored) {
  LoadTable t(kStaleMs);
  t.Update(1, 10, 100);
  t.Update(1, 20, 200);
  EXPECT_EQ(t.Get(1, 200), 20u);
  t.Update(1, 30, 150);  // arrived late, heard earlier
  EXPECT_EQ(t.Get(1, 200), 20u);
  t.Update(1, 40, 200);  // same time: the later call wins
  EXPECT_EQ(t.Get(1, 200), 40u);
}

TEST(LoadTable, RefreshKeepsANodeFresh) {
  LoadTable t(kStaleMs);
  t.Update(1, 5, 0);
  t.Update(1, 6, 4000);
  EXPECT_EQ(t.Get(1, 8000), 6u);
  EXPECT_EQ(t.Get(1, 9001), std::nullopt);
}

TEST(LoadTable, ForgetDropsTheNode) {
  LoadTable t(kStaleMs);
  t.Update(1, 5, 0);
  t.Update(2, 9, 0);
  t.Forget(1);
  EXPECT_EQ(t.Get(1, 0), std::nullopt);
  EXPECT_EQ(t.Estimate(1, 0), 9u);  // the average of what is left
}

TEST(LoadTable, EstimateIsTheFreshValueOrTheAverageOfFreshValues) {
  // Nodes 1..4 report at different times; node 9 never reports.
  LoadTable t(kStaleMs);
  t.Update(1, 10, 0);
  t.Update(2, 20, 3000);
  t.Update(3, 40, 3000);
  t.Update(4, kInfiniteLoad, 3000);
  struct Case {
    const char* name;
    NodeId node;
    int64_t now_ms;
    uint64_t want;
  };
  const Case cases[] = {
      {"fresh value", 1, 0, 10},
      {"fresh value, the others newer", 2, 3000, 20},
      {"infinite is its own fresh value", 4, 3000, kInfiniteLoad},
      {"unknown: average of 10, 20, 40 (infinite left out)", 9, 3000, 23},
      {"stale: average of the fresh 20 and 40", 1, 6000, 30},
      {"unknown: stale entries left out", 9, 6000, 30},
      {"nothing fresh", 9, 9000, 0},
      {"stale and nothing fresh", 1, 9000, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(t.Estimate(c.node, c.now_ms), c.want);
  }
}

TEST(LoadTable, EstimateWithOnlyInfiniteLoadsIsZero) {
  LoadTable t(kStaleMs);
  t.Update(1, kInfiniteLoad, 0);
  t.Update(2, kInfiniteLoad, 0);
  EXPECT_EQ(t.Estimate(3, 0), 0u);
  EXPECT_EQ(t.Estimate(1, 0), kInfiniteLoad);
}

TEST(LoadTable, EmptyTableEstimatesZero) {
  LoadTable t;
  EXPECT_EQ(t.Estimate(1, 12345), 0u);
}

}  // namespace
}  // namespace porcupine::cluster
