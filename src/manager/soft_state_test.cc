#include "manager/soft_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/hash.h"

namespace porcupine::manager {
namespace {

using cluster::Member;
using cluster::UserMap;
using cluster::View;
using State = SoftState::State;

constexpr uint32_t kBuckets = 8;
constexpr NodeId kSelf = 1;

Member MakeMember(NodeId id, uint64_t incarnation = 1) {
  return {id, incarnation, "10.0.0." + std::to_string(id) + ":7000", ""};
}

// A view with `members` computed from `prev` (nullptr: the first view); the
// buckets managed by a joined member are stamped `epoch`, as ComputeUserMap does.
View MakeView(Epoch epoch, std::vector<Member> members, const View* prev,
              std::vector<NodeId> joined = {}) {
  View v;
  v.epoch = epoch;
  v.members = std::move(members);
  v.base_epoch = prev ? prev->epoch : 0;
  v.joined = prev ? std::move(joined) : v.ids();
  v.user_map = UserMap::Recompute(prev ? prev->user_map : UserMap(kBuckets, 0), v.ids(), epoch);
  for (uint32_t b = 0; b < kBuckets; ++b) {
    if (v.Joined(v.user_map.ManagerOf(b))) v.user_map.Set(b, v.user_map.ManagerOf(b), epoch);
  }
  return v;
}
View MakeView(Epoch epoch, const std::vector<NodeId>& ids, const View* prev,
              std::vector<NodeId> joined = {}) {
  std::vector<Member> members;
  for (NodeId id : ids) members.push_back(MakeMember(id));
  return MakeView(epoch, std::move(members), prev, std::move(joined));
}

std::vector<uint32_t> BucketsOf(const View& v, NodeId node) {
  std::vector<uint32_t> out;
  for (uint32_t b = 0; b < kBuckets; ++b)
    if (v.user_map.ManagerOf(b) == node) out.push_back(b);
  return out;
}

// The k-th user (in a fixed enumeration) whose bucket is `bucket`.
std::string UserIn(uint32_t bucket, int k = 0) {
  for (int i = 0;; ++i) {
    std::string user = "u" + std::to_string(i) + "@example.test";
    if (BucketOf(user, kBuckets) == bucket && k-- == 0) return user;
  }
}

store::Profile MakeProfile(const std::string& user, uint64_t hlc, bool tombstone = false) {
  store::Profile p;
  p.set_user(user);
  p.set_hlc(hlc);
  p.set_tombstone(tombstone);
  return p;
}

Announcement Holding(const std::string& user) { return {user, true, std::nullopt}; }
Announcement ProfileOnly(const std::string& user, uint64_t hlc, bool tombstone = false) {
  return {user, false, MakeProfile(user, hlc, tombstone)};
}

RebuildChunk Chunk(Epoch view_epoch, std::vector<BucketAnnouncement> buckets = {}, uint32_t seq = 0,
                   uint32_t total = 1) {
  return {view_epoch, seq, total, std::move(buckets)};
}

// Every member of `v` sends `s` an empty complete set for v.
void AnnounceAll(SoftState& s, const View& v) {
  for (const Member& m : v.members) s.ApplyRebuild(m.id, Chunk(v.epoch));
}

std::vector<NodeId> MailMap(const SoftState& s, const std::string& user) {
  SoftState::Lookup l = s.Find(user);
  EXPECT_EQ(l.state, State::kFound) << user;
  return l.mail_map;
}

class SoftStateTest : public ::testing::Test {
 protected:
  SoftStateTest()
      : v1_(MakeView(10, {1, 2, 3}, nullptr)),
        mine_(BucketsOf(v1_, kSelf)),
        b_(mine_.at(0)),
        b2_(mine_.at(1)),
        other_(BucketsOf(v1_, 2).at(0)) {}

  // Installs v1 and lets node `from` announce `user` in bucket b_ with a
  // fragment and a profile.
  void InstallWithUser(const std::string& user, NodeId from = 2) {
    s_.InstallView(v1_);
    s_.ApplyRebuild(from, Chunk(10, {{b_, 10, 5, {{user, true, MakeProfile(user, 1)}}}}));
  }

  SoftState s_{kSelf, kBuckets};
  const View v1_;
  const std::vector<uint32_t> mine_;  // buckets node 1 manages in v1
  const uint32_t b_, b2_;             // two of them
  const uint32_t other_;              // a bucket of node 2
};

// ---- InstallView ---------------------------------------------------------------

TEST_F(SoftStateTest, KeptBucketsKeepTheirStateAndForgetDepartedNodes) {
  const std::string u = UserIn(b_);
  InstallWithUser(u, 2);
  s_.ApplyRebuild(3, Chunk(10, {{b_, 10, 5, {Holding(u)}}}));
  AnnounceAll(s_, v1_);
  ASSERT_EQ(MailMap(s_, u), (std::vector<NodeId>{2, 3}));

  const View v2 = MakeView(20, {1, 2}, &v1_);  // node 3 leaves
  ASSERT_FALSE(v2.user_map.EntryDiffers(v1_.user_map, b_));
  s_.InstallView(v2);
  EXPECT_EQ(MailMap(s_, u), std::vector<NodeId>{2});
  EXPECT_TRUE(s_.Ready(b_)) << "a kept bucket stays ready";
  // Node 3 does not come back with the next view either.
  const View v3 = MakeView(30, {1, 2, 3}, &v2, {3});
  ASSERT_FALSE(v3.user_map.EntryDiffers(v2.user_map, b_));
  s_.InstallView(v3);
  EXPECT_EQ(MailMap(s_, u), std::vector<NodeId>{2});
}

TEST_F(SoftStateTest, BucketsTakenOverFromADepartedNodeStartRebuilding) {
  InstallWithUser(UserIn(b_));
  AnnounceAll(s_, v1_);
  const View v2 = MakeView(20, {1, 2}, &v1_);
  s_.InstallView(v2);
  std::vector<uint32_t> gained;
  for (uint32_t b : BucketsOf(v2, kSelf))
    if (v2.user_map.EntryDiffers(v1_.user_map, b)) gained.push_back(b);
  ASSERT_FALSE(gained.empty());
  for (uint32_t b : gained) {
    EXPECT_TRUE(s_.Manages(b));
    EXPECT_FALSE(s_.Ready(b)) << b;
    EXPECT_EQ(s_.Find(UserIn(b)).state, State::kRebuilding);
  }
  EXPECT_EQ(s_.buckets_rebuilding(), gained.size());
  AnnounceAll(s_, v2);
  for (uint32_t b : gained) EXPECT_EQ(s_.Find(UserIn(b)).state, State::kNotFound);
}

TEST_F(SoftStateTest, ChangedBucketsAreCleared) {
  struct Case {
    const char* name;
    bool restamp_b;              // b's entry gets the new epoch, same manager
    std::vector<NodeId> joined;  // of the new view
    bool b_cleared, b2_cleared;
  };
  const Case cases[] = {
      {"nothing changed", false, {}, false, false},
      {"b restamped", true, {}, true, false},
      {"another node joined", false, {2}, false, false},
      {"this node joined: everything is stale", false, {1}, true, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SoftState s(kSelf, kBuckets);
    s.InstallView(v1_);
    const std::string u = UserIn(b_), u2 = UserIn(b2_);
    s.ApplyRebuild(2, Chunk(10, {{b_, 10, 5, {{u, true, MakeProfile(u, 1)}}},
                                 {b2_, 10, 5, {{u2, true, MakeProfile(u2, 1)}}}}));
    View v2 = v1_;  // same members and map, by hand
    v2.epoch = 20;
    v2.base_epoch = 10;
    v2.joined = c.joined;
    if (c.restamp_b) v2.user_map.Set(b_, kSelf, 20);
    s.InstallView(v2);
    EXPECT_EQ(s.Find(u).state != State::kFound, c.b_cleared);
    EXPECT_EQ(s.Find(u2).state != State::kFound, c.b2_cleared);
  }
}

TEST_F(SoftStateTest, BucketsNoLongerManagedAreDropped) {
  s_.InstallView(v1_);
  const View v2 = MakeView(20, {1, 2, 3, 4, 5}, &v1_, {4, 5});
  std::vector<uint32_t> lost, kept;
  for (uint32_t b : mine_) (v2.user_map.ManagerOf(b) == kSelf ? kept : lost).push_back(b);
  ASSERT_FALSE(lost.empty());
  ASSERT_FALSE(kept.empty());
  const std::string gone = UserIn(lost[0]), stays = UserIn(kept[0]);
  ASSERT_TRUE(s_.PutProfile(MakeProfile(gone, 1), 10));
  ASSERT_TRUE(s_.PutProfile(MakeProfile(stays, 1), 10));
  s_.InstallView(v2);
  for (uint32_t b : lost) EXPECT_FALSE(s_.Manages(b)) << b;
  EXPECT_EQ(s_.Find(gone).state, State::kNotManager);
  EXPECT_EQ(s_.Users(), std::vector<std::string>{stays});
  EXPECT_EQ(s_.buckets_managed(), kept.size());
}

// ---- Ready ---------------------------------------------------------------------

TEST_F(SoftStateTest, ReadyOnlyWhenEveryMemberCompletedASet) {
  struct Sent {
    NodeId from;
    Epoch view;
    uint32_t seq, total;
  };
  struct Case {
    const char* name;
    std::vector<Sent> sent;
    bool ready;
  };
  const Case cases[] = {
      {"nothing yet", {}, false},
      {"one member missing", {{1, 10, 0, 1}, {2, 10, 0, 1}}, false},
      {"everybody", {{1, 10, 0, 1}, {2, 10, 0, 1}, {3, 10, 0, 1}}, true},
      {"half a set", {{1, 10, 0, 1}, {2, 10, 0, 1}, {3, 10, 1, 2}}, false},
      {"both halves", {{1, 10, 0, 1}, {2, 10, 0, 1}, {3, 10, 1, 2}, {3, 10, 0, 2}}, true},
      {"a chunk twice is not two chunks",
       {{1, 10, 0, 1}, {2, 10, 0, 1}, {3, 10, 1, 2}, {3, 10, 1, 2}},
       false},
      {"a seq out of range does not count",
       {{1, 10, 0, 1}, {2, 10, 0, 1}, {3, 10, 0, 2}, {3, 10, 7, 2}},
       false},
      {"a set from before the entry epoch", {{1, 10, 0, 1}, {2, 10, 0, 1}, {3, 5, 0, 1}}, false},
      {"a non-member instead", {{1, 10, 0, 1}, {2, 10, 0, 1}, {4, 10, 0, 1}}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SoftState s(kSelf, kBuckets);
    s.InstallView(v1_);
    for (const Sent& x : c.sent) s.ApplyRebuild(x.from, Chunk(x.view, {}, x.seq, x.total));
    for (uint32_t b : mine_) EXPECT_EQ(s.Ready(b), c.ready) << "bucket " << b;
    EXPECT_FALSE(s.Ready(other_)) << "never ready for a bucket of another node";
    EXPECT_EQ(s.buckets_rebuilding(), c.ready ? 0u : mine_.size());
  }
}

TEST_F(SoftStateTest, ReadyNeedsSetsAtLeastAsNewAsTheEntryEpoch) {
  s_.InstallView(v1_);
  AnnounceAll(s_, v1_);
  const View v2 = MakeView(20, {1, 2}, &v1_);
  s_.InstallView(v2);
  for (uint32_t b : BucketsOf(v2, kSelf)) {
    // Sets for view 10 cover entries stamped 10, not entries stamped 20.
    EXPECT_EQ(s_.Ready(b), v2.user_map.EpochOf(b) == 10) << "bucket " << b;
  }
  AnnounceAll(s_, v2);
  for (uint32_t b : BucketsOf(v2, kSelf)) EXPECT_TRUE(s_.Ready(b)) << "bucket " << b;
}

TEST_F(SoftStateTest, JoinedMembersOlderSetsDoNotCount) {
  s_.InstallView(v1_);
  AnnounceAll(s_, v1_);
  ASSERT_TRUE(s_.Ready(b_));
  // Node 2 restarted: its soft state is gone and it re-announces everything.
  const View v2 =
      MakeView(20, {MakeMember(1), MakeMember(2, 2), MakeMember(3)}, &v1_, std::vector<NodeId>{2});
  ASSERT_EQ(v2.user_map.EpochOf(b_), 10u) << "node 1's entries are not restamped";
  s_.InstallView(v2);
  EXPECT_FALSE(s_.Ready(b_)) << "node 2's set for view 10 came from its previous incarnation";
  s_.ApplyRebuild(2, Chunk(10));  // a late chunk of the old set
  EXPECT_FALSE(s_.Ready(b_));
  s_.ApplyRebuild(2, Chunk(20));
  EXPECT_TRUE(s_.Ready(b_)) << "nodes 1 and 3 need not announce again";
}

// ---- Buffered chunks -----------------------------------------------------------

TEST_F(SoftStateTest, ChunksBeforeTheFirstViewAreAppliedOnInstall) {
  const std::string u = UserIn(b_);
  s_.ApplyRebuild(2, Chunk(10, {{b_, 10, 5, {{u, true, MakeProfile(u, 1)}}}}));
  s_.ApplyRebuild(3, Chunk(10));
  EXPECT_EQ(s_.Find(u).state, State::kNotManager);
  s_.InstallView(v1_);
  EXPECT_EQ(MailMap(s_, u), std::vector<NodeId>{2});
  EXPECT_FALSE(s_.Ready(b_));
  s_.ApplyRebuild(1, Chunk(10));
  EXPECT_TRUE(s_.Ready(b_)) << "the buffered sets of 2 and 3 counted";
}

TEST_F(SoftStateTest, ChunksOfAFutureViewWaitForIt) {
  s_.InstallView(v1_);
  AnnounceAll(s_, v1_);
  const std::string u = UserIn(b_);
  const View v2 = MakeView(20, {1, 2, 3, 4}, &v1_, {4});
  ASSERT_EQ(v2.user_map.ManagerOf(b_), kSelf);
  const uint64_t entry = v2.user_map.EpochOf(b_);
  s_.ApplyRebuild(4, Chunk(20, {{b_, entry, 5, {{u, true, MakeProfile(u, 1)}}}}));
  EXPECT_EQ(s_.Find(u).state, State::kNotFound) << "not applied before view 20";
  s_.InstallView(v2);
  EXPECT_EQ(MailMap(s_, u), std::vector<NodeId>{4});
}

TEST_F(SoftStateTest, BufferedChunksOfNonMembersAreDiscarded) {
  s_.InstallView(v1_);
  const std::string u = UserIn(b_);
  s_.ApplyRebuild(3, Chunk(20, {{b_, 10, 5, {{u, true, MakeProfile(u, 1)}}}}));
  s_.InstallView(MakeView(20, {1, 2}, &v1_));  // node 3 left
  EXPECT_NE(s_.Find(u).state, State::kFound);
}

TEST_F(SoftStateTest, BufferedChunksAreBoundedOldestDroppedFirst) {
  SoftState s(kSelf, kBuckets, SoftStateOptions{.max_buffered_chunks = 2});
  const std::string u[] = {UserIn(b_, 0), UserIn(b_, 1), UserIn(b_, 2)};
  for (NodeId from : {1u, 2u, 3u}) {
    const std::string& user = u[from - 1];
    s.ApplyRebuild(from, Chunk(10, {{b_, 10, 5, {{user, true, MakeProfile(user, 1)}}}}));
  }
  EXPECT_EQ(s.chunks_dropped(), 1u);
  s.InstallView(v1_);
  EXPECT_EQ(s.Find(u[0]).state, State::kRebuilding) << "the oldest chunk was dropped";
  EXPECT_EQ(s.Find(u[1]).state, State::kFound);
  EXPECT_EQ(s.Find(u[2]).state, State::kFound);
}

TEST_F(SoftStateTest, ChunksForBucketsNotManagedAreDropped) {
  s_.InstallView(v1_);
  const std::string u = UserIn(other_), w = UserIn(b_);
  s_.ApplyRebuild(2, Chunk(10, {{other_, 10, 5, {{u, true, MakeProfile(u, 1)}}},
                                {b_, 9, 5, {{w, true, MakeProfile(w, 1)}}}}));  // stale entry
  EXPECT_EQ(s_.Find(u).state, State::kNotManager);
  EXPECT_EQ(s_.Find(w).state, State::kRebuilding);
  EXPECT_TRUE(s_.Users().empty());
}

TEST_F(SoftStateTest, ChunksFromNonMembersAreIgnored) {
  s_.InstallView(v1_);
  const std::string u = UserIn(b_);
  s_.ApplyRebuild(4, Chunk(10, {{b_, 10, 5, {{u, true, MakeProfile(u, 1)}}}}));
  EXPECT_EQ(s_.Find(u).state, State::kRebuilding);
  EXPECT_TRUE(s_.Users().empty());
}

// ---- Find ----------------------------------------------------------------------

TEST_F(SoftStateTest, FindStates) {
  const std::string found = UserIn(b_, 0), tomb = UserIn(b_, 1), mail_only = UserIn(b_, 2),
                    unknown = UserIn(b_, 3), elsewhere = UserIn(other_);
  struct Case {
    const char* name;
    std::string user;
    std::optional<uint64_t> entry_epoch;  // nullopt: Find(user)
    bool ready;
    State want;
  };
  const Case cases[] = {
      {"found", found, std::nullopt, true, State::kFound},
      {"found while rebuilding", found, std::nullopt, false, State::kFound},
      {"found, caller's entry epoch matches", found, 10, true, State::kFound},
      {"unknown, bucket rebuilt", unknown, std::nullopt, true, State::kNotFound},
      {"unknown, bucket rebuilding", unknown, std::nullopt, false, State::kRebuilding},
      {"tombstone, bucket rebuilt", tomb, std::nullopt, true, State::kNotFound},
      {"tombstone, bucket rebuilding", tomb, std::nullopt, false, State::kRebuilding},
      {"mail but no profile, rebuilt", mail_only, std::nullopt, true, State::kNotFound},
      {"mail but no profile, rebuilding", mail_only, std::nullopt, false, State::kRebuilding},
      {"another node's bucket", elsewhere, std::nullopt, true, State::kNotManager},
      {"caller behind (older entry epoch)", found, 9, true, State::kNotManager},
      {"caller ahead (newer entry epoch)", found, 20, true, State::kNotManager},
      {"caller ahead, unknown user", unknown, 20, true, State::kNotManager},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SoftState s(kSelf, kBuckets);
    s.InstallView(v1_);
    s.ApplyRebuild(2, Chunk(10, {{b_,
                                  10,
                                  5,
                                  {{found, true, MakeProfile(found, 1)},
                                   ProfileOnly(tomb, 3, /*tombstone=*/true),
                                   Holding(mail_only)}}}));
    if (c.ready) AnnounceAll(s, v1_);
    SoftState::Lookup l = c.entry_epoch ? s.Find(c.user, *c.entry_epoch) : s.Find(c.user);
    EXPECT_EQ(l.state, c.want);
    if (c.want == State::kFound) {
      ASSERT_NE(l.profile, nullptr);
      EXPECT_EQ(l.profile->user(), c.user);
      EXPECT_EQ(l.mail_map, std::vector<NodeId>{2});
    } else {
      EXPECT_EQ(l.profile, nullptr);
      EXPECT_TRUE(l.mail_map.empty());
    }
  }
}

TEST(SoftState, NothingIsManagedBeforeAView) {
  SoftState s(kSelf, kBuckets);
  EXPECT_EQ(s.Find("a@example.test").state, State::kNotManager);
  EXPECT_FALSE(s.Manages(0));
  EXPECT_EQ(s.buckets_managed(), 0u);
  EXPECT_FALSE(s.MailMapAdd("a@example.test", 2, 5, 0));
  EXPECT_FALSE(s.PutProfile(MakeProfile("a@example.test", 1), 0));
}

TEST_F(SoftStateTest, UpdatesUnderAnotherAssignmentAreRefused) {
  s_.InstallView(v1_);
  const std::string u = UserIn(b_), elsewhere = UserIn(other_);
  struct Case {
    const char* name;
    std::string user;
    uint64_t entry_epoch;
    bool accepted;
  };
  const Case cases[] = {
      {"own bucket, same entry", u, 10, true},
      {"own bucket, older entry", u, 9, false},
      {"own bucket, newer entry", u, 11, false},
      {"another node's bucket", elsewhere, 10, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(s_.MailMapAdd(c.user, 3, 5, c.entry_epoch), c.accepted);
    EXPECT_EQ(s_.MailMapRemove(c.user, 3, 4, c.entry_epoch), c.accepted);
    EXPECT_EQ(s_.PutProfile(MakeProfile(c.user, 2), c.entry_epoch), c.accepted);
  }
  EXPECT_EQ(s_.Users(), std::vector<std::string>{u});
  EXPECT_EQ(MailMap(s_, u), std::vector<NodeId>{3});
}

TEST_F(SoftStateTest, MailMapListsOnlyCurrentMembersSorted) {
  s_.InstallView(v1_);
  const std::string u = UserIn(b_);
  ASSERT_TRUE(s_.PutProfile(MakeProfile(u, 1), 10));
  for (NodeId n : {3u, 9u, 1u, 2u}) ASSERT_TRUE(s_.MailMapAdd(u, n, 5, 10));
  EXPECT_EQ(MailMap(s_, u), (std::vector<NodeId>{1, 2, 3})) << "9 is not a member";
}

// ---- Mail-map ordering ---------------------------------------------------------

TEST_F(SoftStateTest, MailMapEntriesAreOrderedByStamp) {
  // Operations on (u, node 2) in arrival order. Announce: node 2's complete
  // announcement of b, listing u with a fragment or not.
  enum Kind { kAdd, kRemove, kAnnounceWith, kAnnounceWithout };
  struct Op {
    Kind kind;
    uint64_t stamp;
  };
  struct Case {
    const char* name;
    std::vector<Op> ops;
    bool present;
  };
  const Case cases[] = {
      {"add", {{kAdd, 5}}, true},
      {"late older remove does not undo an add", {{kAdd, 5}, {kRemove, 3}}, true},
      {"newer remove", {{kAdd, 5}, {kRemove, 7}}, false},
      {"late older add does not undo a remove", {{kRemove, 7}, {kAdd, 5}}, false},
      {"add wins a tie", {{kAdd, 5}, {kRemove, 5}}, true},
      {"add wins a tie either way", {{kRemove, 5}, {kAdd, 5}}, true},
      {"remove before the user is announced blocks an older announcement",
       {{kRemove, 7}, {kAnnounceWith, 5}},
       false},
      {"older remove before the announcement", {{kRemove, 3}, {kAnnounceWith, 5}}, true},
      {"remove covered by the announcement is ignored", {{kAnnounceWith, 5}, {kRemove, 3}}, true},
      {"remove at the announcement's stamp is ignored", {{kAnnounceWith, 5}, {kRemove, 5}}, true},
      {"remove after the announcement", {{kAnnounceWith, 5}, {kRemove, 6}}, false},
      {"newer add survives an announcement without u", {{kAdd, 7}, {kAnnounceWithout, 5}}, true},
      {"older add is undone by an announcement without u",
       {{kAdd, 3}, {kAnnounceWithout, 5}},
       false},
      {"announcement without u after one with it",
       {{kAnnounceWith, 5}, {kAnnounceWithout, 9}},
       false},
      {"late older announcement without u", {{kAnnounceWith, 9}, {kAnnounceWithout, 5}}, true},
      {"add covered by the announcement is ignored", {{kAnnounceWithout, 9}, {kAdd, 8}}, false},
      {"add at the announcement's stamp is ignored", {{kAnnounceWithout, 9}, {kAdd, 9}}, false},
      {"add after the announcement", {{kAnnounceWithout, 9}, {kAdd, 10}}, true},
  };
  const std::string u = UserIn(b_, 0), other = UserIn(b_, 1);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SoftState s(kSelf, kBuckets);
    s.InstallView(v1_);
    for (const Op& op : c.ops) {
      switch (op.kind) {
        case kAdd:
          ASSERT_TRUE(s.MailMapAdd(u, 2, op.stamp, 10));
          break;
        case kRemove:
          ASSERT_TRUE(s.MailMapRemove(u, 2, op.stamp, 10));
          break;
        case kAnnounceWith:
          s.ApplyRebuild(2, Chunk(10, {{b_, 10, op.stamp, {Holding(u), Holding(other)}}}));
          break;
        case kAnnounceWithout:
          s.ApplyRebuild(2, Chunk(10, {{b_, 10, op.stamp, {Holding(other)}}}));
          break;
      }
    }
    ASSERT_TRUE(s.PutProfile(MakeProfile(u, 1), 10));  // only now is u a user
    EXPECT_EQ(MailMap(s, u), c.present ? std::vector<NodeId>{2} : std::vector<NodeId>{});
  }
}

TEST_F(SoftStateTest, AnnouncementIsCompleteForItsNodeAndBucketOnly) {
  s_.InstallView(v1_);
  const std::string kept = UserIn(b_, 0), gone = UserIn(b_, 1), unlisted = UserIn(b_, 2),
                    in_b2 = UserIn(b2_);
  for (const std::string& u : {kept, gone, unlisted, in_b2}) {
    ASSERT_TRUE(s_.PutProfile(MakeProfile(u, 1), 10));
  }
  s_.ApplyRebuild(2, Chunk(10, {{b_, 10, 10, {Holding(kept), Holding(gone), Holding(unlisted)}}}));
  s_.ApplyRebuild(3, Chunk(10, {{b_, 10, 10, {Holding(gone)}}}));
  ASSERT_TRUE(s_.MailMapAdd(in_b2, 2, 5, 10));
  // Node 2 announces b again: `gone` listed without a fragment, `unlisted` not at all.
  s_.ApplyRebuild(2, Chunk(10, {{b_, 10, 20, {Holding(kept), ProfileOnly(gone, 1)}}}));
  EXPECT_EQ(MailMap(s_, kept), std::vector<NodeId>{2});
  EXPECT_EQ(MailMap(s_, gone), std::vector<NodeId>{3}) << "node 3's entry is not node 2's to drop";
  EXPECT_EQ(MailMap(s_, unlisted), std::vector<NodeId>{});
  EXPECT_EQ(MailMap(s_, in_b2), std::vector<NodeId>{2}) << "another bucket";
}

TEST_F(SoftStateTest, AnnouncementFloorIsPerNodeAndBucket) {
  s_.InstallView(v1_);
  const std::string u = UserIn(b_), w = UserIn(b2_);
  ASSERT_TRUE(s_.PutProfile(MakeProfile(u, 1), 10));
  ASSERT_TRUE(s_.PutProfile(MakeProfile(w, 1), 10));
  s_.ApplyRebuild(2, Chunk(10, {{b_, 10, 20, {}}}));
  ASSERT_TRUE(s_.MailMapAdd(u, 2, 15, 10));  // covered by node 2's announcement of b
  ASSERT_TRUE(s_.MailMapAdd(u, 3, 15, 10));  // node 3 announced nothing
  ASSERT_TRUE(s_.MailMapAdd(w, 2, 15, 10));  // node 2 did not announce b2
  EXPECT_EQ(MailMap(s_, u), std::vector<NodeId>{3});
  EXPECT_EQ(MailMap(s_, w), std::vector<NodeId>{2});
}

TEST_F(SoftStateTest, FloorOnlyRises) {
  s_.InstallView(v1_);
  const std::string u = UserIn(b_);
  ASSERT_TRUE(s_.PutProfile(MakeProfile(u, 1), 10));
  s_.ApplyRebuild(2, Chunk(10, {{b_, 10, 20, {}}}));
  s_.ApplyRebuild(2, Chunk(10, {{b_, 10, 8, {}}}));  // an older announcement, late
  ASSERT_TRUE(s_.MailMapAdd(u, 2, 15, 10));
  EXPECT_EQ(MailMap(s_, u), std::vector<NodeId>{});
}

// ---- Profiles ------------------------------------------------------------------

TEST_F(SoftStateTest, NewestProfileWins) {
  struct Put {
    bool announced;  // from node 2's announcement, else PutProfile
    uint64_t hlc;
    bool tombstone;
  };
  struct Case {
    const char* name;
    std::vector<Put> puts;
    std::optional<uint64_t> found_hlc;  // nullopt: not found
  };
  const Case cases[] = {
      {"newer put replaces", {{false, 3, false}, {false, 5, false}}, 5},
      {"older put is ignored", {{false, 5, false}, {false, 3, false}}, 5},
      {"older announced copy is ignored", {{false, 5, false}, {true, 3, false}}, 5},
      {"newer announced copy replaces", {{false, 3, false}, {true, 5, false}}, 5},
      {"tombstone deletes", {{false, 5, false}, {false, 6, true}}, std::nullopt},
      {"older live copy does not resurrect",
       {{false, 6, true}, {true, 5, false}, {false, 4, false}},
       std::nullopt},
      {"newer copy re-creates", {{false, 6, true}, {false, 7, false}}, 7},
  };
  const std::string u = UserIn(b_);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SoftState s(kSelf, kBuckets);
    s.InstallView(v1_);
    AnnounceAll(s, v1_);
    for (const Put& p : c.puts) {
      if (p.announced) {
        s.ApplyRebuild(2, Chunk(10, {{b_, 10, 5, {ProfileOnly(u, p.hlc, p.tombstone)}}}));
      } else {
        ASSERT_TRUE(s.PutProfile(MakeProfile(u, p.hlc, p.tombstone), 10));
      }
    }
    SoftState::Lookup l = s.Find(u);
    if (c.found_hlc) {
      ASSERT_EQ(l.state, State::kFound);
      EXPECT_EQ(l.profile->hlc(), *c.found_hlc);
      EXPECT_EQ(s.Users(), std::vector<std::string>{u});
      EXPECT_EQ(s.user_count(), 1u);
    } else {
      EXPECT_EQ(l.state, State::kNotFound);
      EXPECT_TRUE(s.Users().empty());
      EXPECT_EQ(s.user_count(), 0u);
    }
  }
}

TEST_F(SoftStateTest, UsersAreSortedAcrossBuckets) {
  s_.InstallView(v1_);
  std::vector<std::string> want;
  for (uint32_t b : mine_) {
    for (int k = 0; k < 3; ++k) {
      want.push_back(UserIn(b, k));
      ASSERT_TRUE(s_.PutProfile(MakeProfile(want.back(), 1), 10));
    }
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(s_.Users(), want);
  EXPECT_EQ(s_.user_count(), want.size());
}

}  // namespace
}  // namespace porcupine::manager

namespace porcupine::manager {
namespace {

// A reserved system entry (a profile name without '@', such as the ACME
// record's "porcupine:acme") is kept like a profile but is no user.
TEST(SoftStateSystemEntries, AreNeitherListedNorCounted) {
  SoftState s{kSelf, kBuckets};
  const View v = MakeView(10, std::vector<NodeId>{kSelf}, nullptr);
  s.InstallView(v);
  AnnounceAll(s, v);
  const std::string user = UserIn(0);
  const std::string system = "porcupine:acme";
  EXPECT_TRUE(s.PutProfile(MakeProfile(user, 1), 10));
  EXPECT_TRUE(s.PutProfile(MakeProfile(system, 1), 10));
  EXPECT_EQ(s.Users(), std::vector<std::string>{user});
  EXPECT_EQ(s.user_count(), 1u);
  EXPECT_EQ(s.Find(system).state, State::kFound);
}

}  // namespace
}  // namespace porcupine::manager
