#include "cluster/user_map.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace porcupine::cluster {
namespace {

int Moves(const UserMap& a, const UserMap& b) {
  int moves = 0;
  for (uint32_t i = 0; i < a.buckets(); ++i) moves += a.ManagerOf(i) != b.ManagerOf(i);
  return moves;
}

void ExpectBalanced(const UserMap& m, const std::vector<NodeId>& live) {
  uint32_t lo = m.buckets() / live.size();
  uint32_t total = 0;
  for (NodeId id : live) {
    uint32_t c = m.CountOf(id);
    EXPECT_GE(c, lo) << "node " << id;
    EXPECT_LE(c, lo + 1) << "node " << id;
    total += c;
  }
  EXPECT_EQ(total, m.buckets()) << "a bucket is managed by a non-member";
}

TEST(UserMap, SingleOwner) {
  UserMap m(256, 5);
  EXPECT_EQ(m.buckets(), 256u);
  EXPECT_EQ(m.ManagerOf(17), 5u);
  EXPECT_EQ(m.CountOf(5), 256u);
}

TEST(UserMap, JoinMovesOnlyTheNewNodesShare) {
  UserMap one(256, 1);
  UserMap two = UserMap::Recompute(one, {1, 2}, 10);
  ExpectBalanced(two, {1, 2});
  EXPECT_EQ(Moves(one, two), 128);
  UserMap three = UserMap::Recompute(two, {1, 2, 3}, 11);
  ExpectBalanced(three, {1, 2, 3});
  EXPECT_EQ(Moves(two, three), 85);  // ⌊256/3⌋ for the newcomer
  for (uint32_t b = 0; b < 256; ++b) {
    if (three.ManagerOf(b) == two.ManagerOf(b)) {
      EXPECT_EQ(three.EpochOf(b), two.EpochOf(b));
    } else {
      EXPECT_EQ(three.EpochOf(b), 11u);
      EXPECT_EQ(three.ManagerOf(b), 3u);
    }
  }
}

TEST(UserMap, FailureMovesOnlyTheDeadNodesBuckets) {
  UserMap m(256, 1);
  m = UserMap::Recompute(m, {1, 2, 3, 4}, 2);
  UserMap after = UserMap::Recompute(m, {1, 2, 4}, 3);
  ExpectBalanced(after, {1, 2, 4});
  EXPECT_EQ(Moves(m, after), static_cast<int>(m.CountOf(3)));
  for (uint32_t b = 0; b < 256; ++b) {
    if (m.ManagerOf(b) != 3) {
      EXPECT_EQ(after.ManagerOf(b), m.ManagerOf(b));
    }
  }
}

TEST(UserMap, StableWhenNothingChangesAndDeterministic) {
  UserMap m = UserMap::Recompute(UserMap(256, 9), {3, 9, 12}, 4);
  EXPECT_EQ(UserMap::Recompute(m, {3, 9, 12}, 5), m);
  EXPECT_EQ(UserMap::Recompute(UserMap(256, 9), {3, 9, 12}, 4), m);
}

TEST(UserMap, RandomViewChangesStayBalancedWithMinimalMoves) {
  std::mt19937_64 rng(42);
  for (uint32_t buckets : {1u, 7u, 256u, 1000u}) {
    UserMap m(buckets, 1);
    std::set<NodeId> live = {1};
    for (int step = 0; step < 200; ++step) {
      std::set<NodeId> next = live;
      NodeId id = static_cast<NodeId>(rng() % 20 + 1);
      if (next.count(id) && next.size() > 1) {
        next.erase(id);
      } else {
        next.insert(id);
      }
      std::vector<NodeId> v(next.begin(), next.end());
      UserMap after = UserMap::Recompute(m, v, static_cast<uint64_t>(step + 10));
      ExpectBalanced(after, v);
      // Lower bound on moves: orphaned buckets plus the excess of over-full nodes.
      int orphaned = 0, excess = 0;
      uint32_t ceil =
          (buckets + static_cast<uint32_t>(v.size()) - 1) / static_cast<uint32_t>(v.size());
      for (NodeId n : live) {
        if (!next.count(n)) {
          orphaned += static_cast<int>(m.CountOf(n));
        } else if (m.CountOf(n) > ceil) {
          excess += static_cast<int>(m.CountOf(n) - ceil);
        }
      }
      EXPECT_GE(Moves(m, after), orphaned + excess);
      // And never more than needed to fill the ⌊B/N⌋ floor of the others.
      int deficit = 0;
      for (NodeId n : v) {
        uint32_t have = live.count(n) ? m.CountOf(n) : 0;
        uint32_t floor = buckets / static_cast<uint32_t>(v.size());
        if (have < floor) deficit += static_cast<int>(floor - have);
      }
      EXPECT_LE(Moves(m, after), std::max(orphaned + excess, deficit) + static_cast<int>(v.size()));
      m = after;
      live = next;
    }
  }
}

}  // namespace
}  // namespace porcupine::cluster
