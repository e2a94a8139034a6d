#include "cluster/balancer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/hash.h"

namespace porcupine::cluster {
namespace {

TEST(Balancer, PrefersMailMapNodesAndLeastLoaded) {
  std::mt19937_64 rng(1);
  std::map<NodeId, uint64_t> load = {{1, 5}, {2, 1}, {3, 9}, {4, 0}};
  BalancerInput in;
  in.live = {1, 2, 3, 4};
  in.mail_map = {1, 3};
  in.spread = 2;
  in.copies = 1;
  in.load = [&](NodeId n) { return load[n]; };
  // Spread reached by the mail map: only 1 and 3 are candidates; 1 is lighter.
  EXPECT_EQ(ChooseReplicas(in, rng), std::vector<NodeId>{1});
  in.copies = 2;
  EXPECT_EQ(ChooseReplicas(in, rng), (std::vector<NodeId>{1, 3}));
}

TEST(Balancer, TopsUpWithLiveNodesAndSkipsDeadOnes) {
  std::mt19937_64 rng(7);
  BalancerInput in;
  in.live = {1, 2, 3};
  in.mail_map = {9};  // not live
  in.spread = 2;
  in.copies = 1;
  for (int i = 0; i < 50; ++i) {
    auto got = ChooseReplicas(in, rng);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_NE(got[0], 9u);
  }
  in.live = {};
  EXPECT_TRUE(ChooseReplicas(in, rng).empty());
}

TEST(Balancer, SingleNode) {
  std::mt19937_64 rng(3);
  BalancerInput in;
  in.live = {42};
  in.copies = 2;  // more copies than nodes: as many as there are
  EXPECT_EQ(ChooseReplicas(in, rng), std::vector<NodeId>{42});
}

std::vector<NodeId> Range(NodeId first, NodeId last) {
  std::vector<NodeId> out;
  for (NodeId n = first; n <= last; ++n) out.push_back(n);
  return out;
}

bool Has(const std::vector<NodeId>& v, NodeId n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

std::set<NodeId> AsSet(const std::vector<NodeId>& v) { return {v.begin(), v.end()}; }

// The static candidates of a user: with copies == spread every candidate is
// returned.
std::set<NodeId> StaticCandidates(uint64_t user_hash, std::vector<NodeId> live, int spread) {
  std::mt19937_64 rng(0);
  BalancerInput in;
  in.policy = Policy::kStatic;
  in.live = std::move(live);
  in.spread = spread;
  in.copies = spread;
  in.user_hash = user_hash;
  return AsSet(ChooseReplicas(in, rng));
}

TEST(ParsePolicy, NamesRoundTrip) {
  for (Policy p : {Policy::kDynamic, Policy::kStatic, Policy::kRandom}) {
    EXPECT_EQ(ParsePolicy(PolicyName(p)), p) << PolicyName(p);
  }
  EXPECT_EQ(PolicyName(Policy::kDynamic), "dynamic");
  EXPECT_EQ(PolicyName(Policy::kStatic), "static");
  EXPECT_EQ(PolicyName(Policy::kRandom), "random");
}

TEST(ParsePolicy, RejectsAnythingElse) {
  for (const char* name : {"", "Dynamic", "STATIC", " random", "random ", "rand", "dynamic\n"}) {
    EXPECT_EQ(ParsePolicy(name), std::nullopt) << "'" << name << "'";
  }
}

TEST(Balancer, DynamicNeverLeavesAMailMapThatReachesSpread) {
  std::mt19937_64 rng(11);
  struct Case {
    std::vector<NodeId> mail_map;
    int spread;
  };
  // The whole mail map is a candidate, even when larger than spread.
  for (const Case& c : {Case{{2, 5}, 2}, Case{{3, 6, 8}, 2}, Case{{7}, 1}}) {
    SCOPED_TRACE(::testing::PrintToString(c.mail_map));
    for (int i = 0; i < 100; ++i) {
      std::map<NodeId, uint64_t> load;
      for (NodeId n : Range(1, 8)) load[n] = rng() % 10;
      BalancerInput in;
      in.live = Range(1, 8);
      in.mail_map = c.mail_map;
      in.spread = c.spread;
      in.load = [&](NodeId n) { return load[n]; };
      std::vector<NodeId> got = ChooseReplicas(in, rng);
      ASSERT_EQ(got.size(), 1u);
      EXPECT_TRUE(Has(c.mail_map, got[0])) << got[0];
      for (NodeId n : c.mail_map) EXPECT_LE(load[got[0]], load[n]) << "not the least loaded";
    }
  }
}

TEST(Balancer, DynamicTopsUpAShortMailMapAtRandomToSpread) {
  std::mt19937_64 rng(5);
  std::map<NodeId, int> seen;
  for (int i = 0; i < 400; ++i) {
    BalancerInput in;
    in.live = Range(1, 6);
    in.mail_map = {4};
    in.spread = 3;
    in.copies = 3;  // return every candidate
    std::vector<NodeId> got = ChooseReplicas(in, rng);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(AsSet(got).size(), 3u) << "duplicates";
    EXPECT_TRUE(Has(got, 4)) << "mail-map node left out";
    for (NodeId n : got) ++seen[n];
  }
  // The two top-up nodes are drawn from all the others.
  for (NodeId n : {1u, 2u, 3u, 5u, 6u}) EXPECT_GT(seen[n], 80) << n;
}

TEST(Balancer, DynamicSkipsAnInfinitelyLoadedMailMapNode) {
  std::mt19937_64 rng(9);
  for (int i = 0; i < 50; ++i) {
    BalancerInput in;
    in.live = Range(1, 5);
    in.mail_map = {1, 2};
    in.spread = 2;
    in.copies = 2;
    in.load = [](NodeId n) { return n == 1 ? kInfiniteLoad : 0; };
    std::vector<NodeId> got = ChooseReplicas(in, rng);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_FALSE(Has(got, 1));
    EXPECT_TRUE(Has(got, 2));
  }
}

TEST(Balancer, CopiesBeyondSpreadWidenTheCandidates) {
  std::mt19937_64 rng(2);
  for (Policy p : {Policy::kDynamic, Policy::kStatic, Policy::kRandom}) {
    SCOPED_TRACE(PolicyName(p));
    BalancerInput in;
    in.policy = p;
    in.live = Range(1, 6);
    in.mail_map = {1};
    in.spread = 1;
    in.copies = 3;
    in.user_hash = 77;
    std::vector<NodeId> got = ChooseReplicas(in, rng);
    EXPECT_EQ(got.size(), 3u);
    EXPECT_EQ(AsSet(got).size(), 3u);
  }
}

TEST(Balancer, ResultIsLeastLoadedFirstTiesByNodeId) {
  std::mt19937_64 rng(4);
  std::map<NodeId, uint64_t> load = {{1, 3}, {2, 1}, {3, 3}, {4, 0}};
  for (Policy p : {Policy::kDynamic, Policy::kStatic, Policy::kRandom}) {
    SCOPED_TRACE(PolicyName(p));
    BalancerInput in;
    in.policy = p;
    in.live = Range(1, 4);
    in.spread = 4;
    in.copies = 4;
    in.load = [&](NodeId n) { return load[n]; };
    EXPECT_EQ(ChooseReplicas(in, rng), (std::vector<NodeId>{4, 2, 1, 3}));
  }
}

TEST(Balancer, StaticCandidatesDependOnTheUserNotOnLoads) {
  std::mt19937_64 rng(3);
  const std::vector<NodeId> live = Range(1, 8);
  for (int u = 0; u < 50; ++u) {
    const uint64_t user = Hash64("user" + std::to_string(u) + "@example.test");
    const std::set<NodeId> want = StaticCandidates(user, live, 2);
    ASSERT_EQ(want.size(), 2u);
    for (int i = 0; i < 20; ++i) {
      std::map<NodeId, uint64_t> load;
      for (NodeId n : live) load[n] = rng() % 100;
      BalancerInput in;
      in.policy = Policy::kStatic;
      in.live = live;
      in.mail_map = {1, 2, 3};  // ignored
      in.spread = 2;
      in.user_hash = user;
      in.load = [&](NodeId n) { return load[n]; };
      std::vector<NodeId> got = ChooseReplicas(in, rng);
      ASSERT_EQ(got.size(), 1u);
      EXPECT_TRUE(want.count(got[0])) << "user " << u << " got " << got[0];
      for (NodeId n : want) EXPECT_LE(load[got[0]], load[n]);
    }
  }
}

TEST(Balancer, StaticSpreadOnePartitionsUsersEvenly) {
  std::map<NodeId, int> users_per_node;
  for (int u = 0; u < 4000; ++u) {
    std::set<NodeId> c = StaticCandidates(Hash64("u" + std::to_string(u)), Range(1, 4), 1);
    ASSERT_EQ(c.size(), 1u);
    ++users_per_node[*c.begin()];
  }
  for (NodeId n : Range(1, 4)) EXPECT_NEAR(users_per_node[n], 1000, 150) << n;
}

TEST(Balancer, StaticIsStableWhenAnUnrelatedNodeLeaves) {
  const std::vector<NodeId> live = Range(1, 10);
  int checked = 0;
  for (int u = 0; u < 200; ++u) {
    const uint64_t user = Hash64("u" + std::to_string(u));
    const std::set<NodeId> before = StaticCandidates(user, live, 3);
    for (NodeId leaving : live) {
      std::vector<NodeId> rest;
      for (NodeId n : live)
        if (n != leaving) rest.push_back(n);
      const std::set<NodeId> after = StaticCandidates(user, rest, 3);
      if (!before.count(leaving)) {
        EXPECT_EQ(after, before) << "user " << u << " node " << leaving << " left";
        ++checked;
      } else {
        // Rendezvous hashing: the other candidates stay, one new one comes.
        std::set<NodeId> kept = before;
        kept.erase(leaving);
        for (NodeId n : kept) EXPECT_TRUE(after.count(n)) << "user " << u << " lost " << n;
        EXPECT_EQ(after.size(), 3u);
      }
    }
  }
  EXPECT_GT(checked, 1000);
}

TEST(Balancer, RandomDrawsFromAllLiveNodesIgnoringTheMailMap) {
  std::mt19937_64 rng(8);
  std::map<NodeId, int> seen;
  for (int i = 0; i < 3000; ++i) {
    BalancerInput in;
    in.policy = Policy::kRandom;
    in.live = Range(1, 6);
    in.mail_map = {2, 99};
    in.spread = 1;
    in.copies = 1;
    std::vector<NodeId> got = ChooseReplicas(in, rng);
    ASSERT_EQ(got.size(), 1u);
    ++seen[got[0]];
  }
  EXPECT_EQ(seen.size(), 6u) << "only live nodes, every one of them";
  for (NodeId n : Range(1, 6)) EXPECT_NEAR(seen[n], 500, 100) << n;
}

TEST(Balancer, InfinitelyLoadedCandidatesAreReplaced) {
  std::mt19937_64 rng(6);
  for (Policy p : {Policy::kDynamic, Policy::kStatic, Policy::kRandom}) {
    SCOPED_TRACE(PolicyName(p));
    for (int u = 0; u < 50; ++u) {
      BalancerInput in;
      in.policy = p;
      in.live = Range(1, 5);
      in.mail_map = {1, 2};
      in.spread = 2;
      in.copies = 2;
      in.user_hash = Hash64("u" + std::to_string(u));
      // Only nodes 4 and 5 can take mail.
      in.load = [](NodeId n) { return n >= 4 ? 1 : kInfiniteLoad; };
      std::vector<NodeId> got = ChooseReplicas(in, rng);
      EXPECT_EQ(AsSet(got), (std::set<NodeId>{4, 5}));
    }
  }
}

TEST(Balancer, InfiniteLoadIsTakenWhenNothingElseCan) {
  std::mt19937_64 rng(1);
  for (Policy p : {Policy::kDynamic, Policy::kStatic, Policy::kRandom}) {
    SCOPED_TRACE(PolicyName(p));
    BalancerInput in;
    in.policy = p;
    in.live = {1, 2};
    in.spread = 1;
    in.copies = 2;
    in.load = [](NodeId n) { return n == 1 ? 0 : kInfiniteLoad; };
    EXPECT_EQ(ChooseReplicas(in, rng), (std::vector<NodeId>{1, 2}));
    in.load = [](NodeId) { return kInfiniteLoad; };
    in.copies = 1;
    EXPECT_EQ(ChooseReplicas(in, rng).size(), 1u);
  }
}

}  // namespace
}  // namespace porcupine::cluster

namespace porcupine::cluster {
namespace {

// Loads are read live and change while a choice is made: each node's load is
// read once, so the sort sees one consistent order (found under load: an
// inconsistent comparator ran std::sort off the end of the vector).
TEST(Balancer, ReadsEachLoadOnceEvenWhenLoadsChangeUnderIt) {
  std::mt19937_64 rng(11);
  std::map<NodeId, int> reads;
  uint64_t tick = 0;
  BalancerInput in;
  for (NodeId n = 1; n <= 40; ++n) in.live.push_back(n);
  in.spread = 40;
  in.copies = 40;
  in.load = [&](NodeId n) {
    ++reads[n];
    return (++tick * 7919 + n) % 13;  // a different answer every call
  };
  for (int round = 0; round < 20; ++round) {
    reads.clear();
    std::vector<NodeId> got = ChooseReplicas(in, rng);
    ASSERT_EQ(got.size(), 40u);
    for (const auto& [n, count] : reads) EXPECT_EQ(count, 1) << "node " << n;
  }
}

}  // namespace
}  // namespace porcupine::cluster
