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

TEST(UserMap, RequiredMovesEqualsTheManagerChangesRecomputeMakes) {
  std::mt19937_64 rng(20240607);
  for (uint32_t buckets : {1u, 2u, 7u, 64u, 256u}) {
    for (int trial = 0; trial < 300; ++trial) {
      SCOPED_TRACE("buckets " + std::to_string(buckets) + " trial " + std::to_string(trial));
      // An arbitrary (not necessarily balanced) map over nodes 1..10, some of
      // which are not live any more, and a live set over 1..12.
      UserMap prev(buckets, 0);
      const uint32_t owners = static_cast<uint32_t>(rng() % 10 + 1);
      for (uint32_t b = 0; b < buckets; ++b) {
        prev.Set(b, static_cast<NodeId>(rng() % owners + 1), rng() % 5);
      }
      std::vector<NodeId> live;
      for (NodeId n = 1; n <= 12; ++n)
        if (rng() % 3 == 0) live.push_back(n);
      if (live.empty()) live.push_back(static_cast<NodeId>(rng() % 12 + 1));
      const UserMap next = UserMap::Recompute(prev, live, 99);
      EXPECT_EQ(UserMap::RequiredMoves(prev, live), static_cast<uint32_t>(Moves(prev, next)));
      ExpectBalanced(next, live);
      for (uint32_t b = 0; b < buckets; ++b) {
        const bool moved = next.ManagerOf(b) != prev.ManagerOf(b);
        EXPECT_EQ(next.EpochOf(b), moved ? 99u : prev.EpochOf(b)) << "bucket " << b;
      }
    }
  }
}

TEST(UserMap, RequiredMovesCases) {
  UserMap two(8, 1);
  for (uint32_t b = 4; b < 8; ++b) two.Set(b, 2, 0);  // 1: 0-3, 2: 4-7
  struct Case {
    const char* name;
    std::vector<NodeId> live;
    uint32_t want;
  };
  const Case cases[] = {
      {"unchanged", {1, 2}, 0},      {"one leaves", {1}, 4},
      {"both leave", {3}, 8},        {"one joins", {1, 2, 3}, 2},  // 3,3,2: the joiner takes ⌊8/3⌋
      {"swap one", {1, 3}, 4},                                     // 2's buckets are orphaned
      {"two join", {1, 2, 3, 4}, 4},                               // 2 each
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(UserMap::RequiredMoves(two, c.live), c.want);
    EXPECT_EQ(Moves(two, UserMap::Recompute(two, c.live, 1)), static_cast<int>(c.want));
  }
}

TEST(UserMap, SetChangesOneEntry) {
  UserMap m(4, 1, 10);
  m.Set(2, 7, 20);
  EXPECT_EQ(m.ManagerOf(2), 7u);
  EXPECT_EQ(m.EpochOf(2), 20u);
  for (uint32_t b : {0u, 1u, 3u}) {
    EXPECT_EQ(m.ManagerOf(b), 1u);
    EXPECT_EQ(m.EpochOf(b), 10u);
  }
  EXPECT_EQ(m.CountOf(1), 3u);
  EXPECT_EQ(m.CountOf(7), 1u);
  EXPECT_EQ(m.CountOf(9), 0u);
}

TEST(UserMap, EntryDiffersComparesManagerAndEpoch) {
  const UserMap base(4, 1, 10);
  struct Case {
    const char* name;
    NodeId manager;
    uint64_t epoch;
    bool differs;
  };
  const Case cases[] = {
      {"same entry", 1, 10, false},
      {"other manager", 2, 10, true},
      {"restamped", 1, 11, true},
      {"both", 2, 11, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    UserMap other = base;
    other.Set(1, c.manager, c.epoch);
    EXPECT_EQ(base.EntryDiffers(other, 1), c.differs);
    EXPECT_EQ(other.EntryDiffers(base, 1), c.differs);
    EXPECT_FALSE(base.EntryDiffers(other, 0)) << "another bucket";
    EXPECT_EQ(base == other, !c.differs);
  }
}

}  // namespace
}  // namespace porcupine::cluster
