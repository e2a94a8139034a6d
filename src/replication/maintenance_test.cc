#include "replication/maintenance.h"

#include <gtest/gtest.h>

#include "core/hlc.h"

namespace porcupine::replication {
namespace {

using cluster::NodeId;

UpkeepOptions Options() {
  UpkeepOptions o;
  o.interval_ms = 10000;
  o.after_join_ms = 500;
  o.grace_ms = 4000;
  return o;
}

cluster::View ViewOf(std::vector<NodeId> members, std::vector<NodeId> joined = {},
                     std::set<NodeId> removed = {}) {
  cluster::View v;
  v.epoch = 1;
  for (NodeId id : members) v.members.push_back({id, 1, "", "n" + std::to_string(id)});
  v.joined = std::move(joined);
  v.removed = std::move(removed);
  return v;
}

TEST(UpkeepScheduleTest, RoundsRunEveryInterval) {
  UpkeepSchedule s(Options(), 1000);
  EXPECT_EQ(s.NextMs(), 11000);
  EXPECT_FALSE(s.TakeRound(10999));
  EXPECT_TRUE(s.TakeRound(11000));
  EXPECT_FALSE(s.TakeRound(11000));  // taken: the next one is an interval on
  EXPECT_EQ(s.NextMs(), 21000);
}

TEST(UpkeepScheduleTest, AJoinOrARemovalBringsARoundSoon) {
  UpkeepSchedule s(Options(), 0);
  s.OnView(ViewOf({1, 2}), 100);  // nobody joined
  EXPECT_EQ(s.NextMs(), 10000);
  s.OnView(ViewOf({1, 2}, {2}), 100);
  EXPECT_EQ(s.NextMs(), 600);
  s.OnView(ViewOf({1, 2}, {2}), 400);  // a later view keeps the earlier time
  EXPECT_EQ(s.NextMs(), 600);
  EXPECT_TRUE(s.TakeRound(600));
  EXPECT_EQ(s.NextMs(), 10600);
  // The removed set only grows: a view repeating it is not a new removal.
  s.OnView(ViewOf({1}, {}, {2}), 700);
  EXPECT_EQ(s.NextMs(), 1200);
  EXPECT_TRUE(s.TakeRound(1200));
  s.OnView(ViewOf({1}, {}, {2}), 1300);
  EXPECT_EQ(s.NextMs(), 11200);
}

TEST(MessageVersionTest, EveryTombstoneComesAfterEveryLiveVersion) {
  EXPECT_LT(store::MessageVersion(5, false), store::MessageVersion(6, false));
  EXPECT_LT(store::MessageVersion(UINT64_MAX >> 1, false), store::MessageVersion(1, true));
  EXPECT_LT(store::MessageVersion(1, true), store::MessageVersion(2, true));
}

TEST(TombstoneRulesTest, DigestsLeaveOutTombstonesPastHalfTheGrace) {
  const UpkeepOptions o = Options();
  const int64_t now = 100000;
  EXPECT_TRUE(InDigest({Hlc::Make(0, 0), false}, now, o));  // live: always
  EXPECT_TRUE(InDigest({Hlc::Make(now - 2000, 0), true}, now, o));
  EXPECT_FALSE(InDigest({Hlc::Make(now - 2001, 0), true}, now, o));
}

TEST(TombstoneRulesTest, OnlyOldTombstonesWithNothingPendingAreCollected) {
  const UpkeepOptions o = Options();
  const int64_t now = 100000;
  const uint64_t old = Hlc::Make(now - 4001, 3);
  EXPECT_TRUE(Collectable({old, true}, false, now, o));
  EXPECT_FALSE(Collectable({old, true}, true, now, o));    // the delete still travels
  EXPECT_FALSE(Collectable({old, false}, false, now, o));  // live mail is never collected
  EXPECT_FALSE(Collectable({Hlc::Make(now - 4000, 0), true}, false, now, o));
}

TEST(PlanRereplicationTest, ANewListIsWrittenAsALaterVersion) {
  const cluster::View view = ViewOf({1, 2, 3});
  ReplicaPlanInput in;
  in.view = &view;
  in.self = 1;
  in.want = 2;
  in.load = [](NodeId n) { return n == 2 ? 10 : 0; };
  std::optional<Replan> p =
      PlanRereplication({1}, "id", {Hlc::Make(50, 0), false}, Hlc::Make(40, 0), in);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->replicas, (std::vector<NodeId>{1, 3}));
  EXPECT_EQ(p->hlc, Hlc::Make(50, 0) + 1);  // the clock behind the record: still later
  p = PlanRereplication({1}, "id", {Hlc::Make(50, 0), false}, Hlc::Make(60, 0), in);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->hlc, Hlc::Make(60, 0));
}

TEST(PlanRereplicationTest, ATombstoneIsNeverReplicatedAnew) {
  const cluster::View view = ViewOf({1, 3}, {}, {2});
  ReplicaPlanInput in;
  in.view = &view;
  in.self = 1;
  in.want = 2;
  in.load = [](NodeId) { return 0; };
  EXPECT_TRUE(PlanRereplication({1, 2}, "id", {7, false}, 0, in).has_value());
  EXPECT_FALSE(PlanRereplication({1, 2}, "id", {7, true}, 0, in).has_value());
}

TEST(WidenedReplicasTest, AWinnerNamesEveryHolderTheHeldVersionNamed) {
  using Ids = std::vector<NodeId>;
  // A tombstone made from the list before a re-replication added node 9.
  EXPECT_EQ(WidenedReplicas({1, 2, 9}, {1, 2}, {}), (Ids{1, 2, 9}));
  // Nothing new in the held list: taken as it is.
  EXPECT_FALSE(WidenedReplicas({1, 2}, {2, 1, 9}, {}).has_value());
  // A node removed for good is not brought back (re-replication dropped it).
  EXPECT_FALSE(WidenedReplicas({1, 3}, {1, 4}, {3}).has_value());
  EXPECT_EQ(WidenedReplicas({1, 3, 5}, {1, 4}, {3}), (Ids{1, 4, 5}));
}

}  // namespace
}  // namespace porcupine::replication
