#include "replication/replicator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace porcupine::replication {
namespace {

using Outcome = Replicator::Outcome;

cluster::View ViewOf(std::vector<NodeId> ids, std::set<NodeId> removed = {}) {
  cluster::View v;
  v.epoch = cluster::MakeEpoch(1, 1);
  for (NodeId id : ids) {
    v.members.push_back({id, 1, "10.0.0." + std::to_string(id) + ":7000", "n"});
  }
  v.removed = std::move(removed);
  return v;
}

// A message whose 16-byte id starts with `name` (zero padded).
ObjectRef Msg(const std::string& name, const std::string& user = "alice", uint32_t folder = 1) {
  ObjectRef o;
  o.kind = ObjectRef::Kind::kMessage;
  o.user = user;
  o.folder = folder;
  o.id = name;
  o.id.resize(16, '\0');
  return o;
}

ObjectRef Profile(const std::string& user) {
  ObjectRef o;
  o.kind = ObjectRef::Kind::kProfile;
  o.user = user;
  return o;
}

Entry MakeEntry(const ObjectRef& o, uint64_t hlc, std::set<NodeId> targets,
                int64_t created_ms = 1000, uint64_t bytes = 100, bool takeover = false) {
  Entry e;
  e.object = o;
  e.hlc = hlc;
  e.remaining = std::move(targets);
  e.takeover = takeover;
  e.created_ms = created_ms;
  e.bytes = bytes;
  return e;
}

Entry Takeover(const ObjectRef& o, uint64_t hlc, std::set<NodeId> targets) {
  return MakeEntry(o, hlc, std::move(targets), 1000, 100, true);
}

// "user:name->target@hlc" (messages) or "user:profile->target@hlc": readable in failures.
std::string Describe(const Push& p) {
  std::string name = p.object.kind == ObjectRef::Kind::kProfile
                         ? "profile"
                         : p.object.id.substr(0, p.object.id.find('\0'));
  return p.object.user + ":" + name + "->" + std::to_string(p.target) + "@" + std::to_string(p.hlc);
}

std::vector<std::string> Describe(const std::vector<Push>& pushes) {
  std::vector<std::string> out;
  for (const Push& p : pushes) out.push_back(Describe(p));
  return out;
}

std::set<NodeId> Remaining(const Replicator& r, const ObjectRef& o) {
  const Entry* e = r.Find(o);
  return e ? e->remaining : std::set<NodeId>{};
}

const cluster::View kView123 = ViewOf({1, 2, 3});

// --- Add / TakeDue ---

TEST(ReplicatorTakeDue, OnePushPerMemberTargetAndSkipsNonMembers) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3, 4}), 0);
  EXPECT_EQ(Describe(r.TakeDue(0, kView123)),
            (std::vector<std::string>{"alice:a->2@10", "alice:a->3@10"}));
  // Node 4 is still a target: not handed out, not dropped.
  EXPECT_EQ(Remaining(r, Msg("a")), (std::set<NodeId>{2, 3, 4}));
  EXPECT_EQ(r.size(), 1u);
}

TEST(ReplicatorTakeDue, InFlightPushesAreNotHandedOutAgain) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 2u);
  EXPECT_TRUE(r.TakeDue(0, kView123).empty());
  EXPECT_TRUE(r.TakeDue(1'000'000, kView123).empty());
  EXPECT_EQ(r.NextDueMs(kView123), INT64_MAX);
}

TEST(ReplicatorTakeDue, HandedOutAgainOnlyAfterItsOutcome) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 2u);
  r.OnFailure(Msg("a"), 2, 0);
  EXPECT_EQ(r.OnAck(Msg("a"), 3, 9, 0), Outcome::kPending);  // an older version: again now
  EXPECT_EQ(Describe(r.TakeDue(0, kView123)), std::vector<std::string>{"alice:a->3@10"});
  EXPECT_EQ(Describe(r.TakeDue(200, kView123)), std::vector<std::string>{"alice:a->2@10"});
}

TEST(ReplicatorTakeDue, NonMemberTargetIsHandedOutOnceItIsAMember) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {4}), 0);
  EXPECT_TRUE(r.TakeDue(0, kView123).empty());
  EXPECT_TRUE(r.TakeDue(5000, kView123).empty());
  EXPECT_EQ(Describe(r.TakeDue(5000, ViewOf({1, 4}))), std::vector<std::string>{"alice:a->4@10"});
}

TEST(ReplicatorTakeDue, EmptyViewHandsOutNothing) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  EXPECT_TRUE(r.TakeDue(0, cluster::View{}).empty());
  EXPECT_EQ(r.TakeDue(0, kView123).size(), 1u);
}

TEST(ReplicatorTakeDue, NotBeforeDue) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 100);
  EXPECT_TRUE(r.TakeDue(99, kView123).empty());
  EXPECT_EQ(r.TakeDue(100, kView123).size(), 1u);
}

TEST(ReplicatorTakeDue, RespectsMaxAndLosesNothing) {
  // Two objects with two member targets each: four pushes in (object, target) order.
  const std::vector<std::string> all = {"alice:a->2@10", "alice:a->3@10", "alice:b->2@20",
                                        "alice:b->3@20"};
  struct Case {
    size_t max;
    size_t first;
  };
  for (const Case& c : std::vector<Case>{{0, 0}, {1, 1}, {3, 3}, {4, 4}, {9, 4}, {SIZE_MAX, 4}}) {
    SCOPED_TRACE("max=" + std::to_string(c.max));
    Replicator r;
    r.Add(MakeEntry(Msg("a"), 10, {2, 3}), 0);
    r.Add(MakeEntry(Msg("b"), 20, {2, 3}), 0);
    std::vector<std::string> got = Describe(r.TakeDue(0, kView123, c.max));
    EXPECT_EQ(got, std::vector<std::string>(all.begin(), all.begin() + c.first));
    // The rest is still due.
    std::vector<std::string> rest = Describe(r.TakeDue(0, kView123));
    got.insert(got.end(), rest.begin(), rest.end());
    EXPECT_EQ(got, all);
  }
}

TEST(ReplicatorTakeDue, MaxCountsOnlyPushesHandedOut) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {4, 5}), 0);  // non-members: skipped, not counted
  r.Add(MakeEntry(Msg("b"), 20, {2}), 0);
  EXPECT_EQ(Describe(r.TakeDue(0, kView123, 1)), std::vector<std::string>{"alice:b->2@20"});
}

// --- TakeNow ---

TEST(ReplicatorTakeNow, HandsOutOneObjectDueOrNot) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3, 4}), 0);
  r.Add(MakeEntry(Msg("b"), 20, {2}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123, 1).size(), 1u);  // a->2 in flight
  r.OnFailure(Msg("a"), 2, 0);                      // a->2 backs off until 200
  EXPECT_EQ(Describe(r.TakeNow(Msg("a"), kView123)),
            (std::vector<std::string>{"alice:a->2@10", "alice:a->3@10"}));
  // Marked in flight; the other object is untouched.
  EXPECT_TRUE(r.TakeNow(Msg("a"), kView123).empty());
  EXPECT_EQ(Describe(r.TakeDue(1000, kView123)), std::vector<std::string>{"alice:b->2@20"});
}

TEST(ReplicatorTakeNow, SkipsInFlightAndNonMembers) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3, 4}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123, 1).size(), 1u);  // a->2 in flight
  EXPECT_EQ(Describe(r.TakeNow(Msg("a"), kView123)), std::vector<std::string>{"alice:a->3@10"});
}

TEST(ReplicatorTakeNow, IgnoresTakeoverWait) {
  Replicator r;
  r.Add(Takeover(Msg("a"), 10, {2}), 0);
  EXPECT_EQ(Describe(r.TakeNow(Msg("a"), kView123)), std::vector<std::string>{"alice:a->2@10"});
}

TEST(ReplicatorTakeNow, UnknownObjectIsEmpty) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  EXPECT_TRUE(r.TakeNow(Msg("z"), kView123).empty());
  EXPECT_TRUE(r.TakeNow(Profile("alice"), kView123).empty());
}

// --- OnAck ---

TEST(ReplicatorOnAck, RemovesTargetsAndRetiresWithTheLast) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 2u);
  EXPECT_EQ(r.OnAck(Msg("a"), 2, 10, 5), Outcome::kPending);
  EXPECT_EQ(Remaining(r, Msg("a")), std::set<NodeId>{3});
  EXPECT_EQ(r.OnAck(Msg("a"), 3, 10, 6), Outcome::kRetired);
  EXPECT_EQ(r.Find(Msg("a")), nullptr);
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.NextDueMs(kView123), INT64_MAX);
}

TEST(ReplicatorOnAck, HeldVersionAtOrAboveTheEntryCounts) {
  struct Case {
    uint64_t held;
    Outcome want;
  };
  for (const Case& c : std::vector<Case>{{0, Outcome::kPending},
                                         {99, Outcome::kPending},
                                         {100, Outcome::kRetired},
                                         {101, Outcome::kRetired},
                                         {UINT64_MAX, Outcome::kRetired}}) {
    SCOPED_TRACE("held=" + std::to_string(c.held));
    Replicator r;
    r.Add(MakeEntry(Msg("a"), 100, {2}), 0);
    ASSERT_EQ(r.TakeDue(0, kView123).size(), 1u);
    EXPECT_EQ(r.OnAck(Msg("a"), 2, c.held, 0), c.want);
    EXPECT_EQ(r.size(), c.want == Outcome::kRetired ? 0u : 1u);
  }
}

TEST(ReplicatorOnAck, OlderVersionAckedWhileNewerCameKeepsTargetDueAtOnce) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  ASSERT_EQ(Describe(r.TakeDue(0, kView123)), std::vector<std::string>{"alice:a->2@10"});
  r.Add(MakeEntry(Msg("a"), 20, {2}), 30);  // a newer update while the push is in flight
  EXPECT_TRUE(r.TakeDue(30, kView123).empty());
  EXPECT_EQ(r.OnAck(Msg("a"), 2, 10, 50), Outcome::kPending);
  EXPECT_EQ(Remaining(r, Msg("a")), std::set<NodeId>{2});
  EXPECT_EQ(r.NextDueMs(kView123), 50);
  ASSERT_EQ(Describe(r.TakeDue(50, kView123)), std::vector<std::string>{"alice:a->2@20"});
  EXPECT_EQ(r.OnAck(Msg("a"), 2, 20, 60), Outcome::kRetired);
}

TEST(ReplicatorOnAck, UnknownObjectIsUnknown) {
  Replicator r;
  EXPECT_EQ(r.OnAck(Msg("a"), 2, 10, 0), Outcome::kUnknown);
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  EXPECT_EQ(r.OnAck(Msg("b"), 2, 10, 0), Outcome::kUnknown);
  EXPECT_EQ(r.OnAck(Profile("alice"), 2, 10, 0), Outcome::kUnknown);
  ASSERT_EQ(r.OnAck(Msg("a"), 2, 10, 0), Outcome::kRetired);
  // A duplicate answer after the entry retired.
  EXPECT_EQ(r.OnAck(Msg("a"), 2, 10, 0), Outcome::kUnknown);
}

TEST(ReplicatorOnAck, UnknownTargetChangesNothing) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  EXPECT_EQ(r.OnAck(Msg("a"), 3, 10, 0), Outcome::kPending);
  EXPECT_EQ(Remaining(r, Msg("a")), std::set<NodeId>{2});
  EXPECT_EQ(r.TakeDue(0, kView123).size(), 1u);
}

TEST(ReplicatorOnAck, MessagesAndProfilesAreDistinctObjects) {
  Replicator r;
  r.Add(MakeEntry(Msg("", "bob", 0), 10, {2}), 0);
  r.Add(MakeEntry(Profile("bob"), 10, {2}), 0);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.OnAck(Profile("bob"), 2, 10, 0), Outcome::kRetired);
  EXPECT_NE(r.Find(Msg("", "bob", 0)), nullptr);
}

// --- OnFailure / NextDueMs ---

TEST(ReplicatorBackoff, StartsAtInitialDoublesAndIsCapped) {
  struct Case {
    int64_t initial;
    int64_t max;
    std::vector<int64_t> delays;  // after the 1st, 2nd, ... consecutive failure
  };
  const std::vector<Case> cases = {
      {200, 10000, {200, 400, 800, 1600, 3200, 6400, 10000, 10000}},
      {100, 500, {100, 200, 400, 500, 500}},
      {200, 200, {200, 200, 200}},
      {300, 1000, {300, 600, 1000, 1000}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("initial=" + std::to_string(c.initial) + " max=" + std::to_string(c.max));
    ReplicatorOptions options;
    options.retry_initial_ms = c.initial;
    options.retry_max_ms = c.max;
    Replicator r(options);
    int64_t now = 1000;
    r.Add(MakeEntry(Msg("a"), 10, {2}), now);
    for (int64_t delay : c.delays) {
      ASSERT_EQ(r.TakeDue(now, kView123).size(), 1u);
      r.OnFailure(Msg("a"), 2, now);
      EXPECT_EQ(r.NextDueMs(kView123), now + delay);
      EXPECT_TRUE(r.TakeDue(now + delay - 1, kView123).empty());
      now += delay;
    }
  }
}

TEST(ReplicatorBackoff, CappedEvenWhenInitialExceedsMax) {
  ReplicatorOptions options;
  options.retry_initial_ms = 200;
  options.retry_max_ms = 50;
  Replicator r(options);
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 1u);
  r.OnFailure(Msg("a"), 2, 0);
  EXPECT_EQ(r.NextDueMs(kView123), 50);
}

TEST(ReplicatorBackoff, IsPerTarget) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 2u);
  r.OnFailure(Msg("a"), 2, 0);
  r.OnFailure(Msg("a"), 3, 0);
  ASSERT_EQ(r.TakeDue(200, kView123).size(), 2u);
  r.OnFailure(Msg("a"), 2, 200);                                // 2: 400 now
  EXPECT_EQ(r.OnAck(Msg("a"), 3, 10, 200), Outcome::kPending);  // 3 done
  EXPECT_EQ(r.NextDueMs(kView123), 600);
  EXPECT_EQ(Remaining(r, Msg("a")), std::set<NodeId>{2});
}

TEST(ReplicatorBackoff, UnknownObjectOrTargetIsIgnored) {
  Replicator r;
  r.OnFailure(Msg("a"), 2, 0);
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  r.OnFailure(Msg("a"), 3, 0);
  r.OnFailure(Msg("b"), 2, 0);
  EXPECT_EQ(r.NextDueMs(kView123), 0);
  EXPECT_EQ(r.TakeDue(0, kView123).size(), 1u);
}

TEST(ReplicatorNextDue, EarliestNotInFlightTarget) {
  Replicator r;
  EXPECT_EQ(r.NextDueMs(kView123), INT64_MAX);
  r.Add(MakeEntry(Msg("a"), 10, {2}), 500);
  r.Add(MakeEntry(Msg("b"), 10, {3}), 700);
  EXPECT_EQ(r.NextDueMs(kView123), 500);
  ASSERT_EQ(r.TakeDue(500, kView123).size(), 1u);  // a->2
  EXPECT_EQ(r.NextDueMs(kView123), 700);
  r.OnFailure(Msg("a"), 2, 600);
  EXPECT_EQ(r.NextDueMs(kView123), 700);
  ASSERT_EQ(r.TakeDue(700, kView123).size(), 1u);  // b->3
  EXPECT_EQ(r.NextDueMs(kView123), 800);
}

// --- Add merging versions ---

TEST(ReplicatorAdd, NewerVersionTakesHlcBytesAndUnionOfTargets) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}, /*created_ms=*/500, /*bytes=*/100), 500);
  r.Add(MakeEntry(Msg("a"), 20, {3, 4}, /*created_ms=*/600, /*bytes=*/70), 600);
  ASSERT_EQ(r.size(), 1u);
  const Entry* e = r.Find(Msg("a"));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->hlc, 20u);
  EXPECT_EQ(e->bytes, 70u);
  EXPECT_EQ(e->created_ms, 500);  // the oldest unretired update
  EXPECT_EQ(e->remaining, (std::set<NodeId>{2, 3, 4}));
  EXPECT_FALSE(e->takeover);
  EXPECT_EQ(Describe(r.TakeDue(600, ViewOf({2, 3, 4}))),
            (std::vector<std::string>{"alice:a->2@20", "alice:a->3@20", "alice:a->4@20"}));
}

TEST(ReplicatorAdd, OlderVersionKeepsTheNewerOne) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 20, {2}, 500, 70), 500);
  r.Add(MakeEntry(Msg("a"), 10, {3}, 400, 100), 600);
  const Entry* e = r.Find(Msg("a"));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->hlc, 20u);
  EXPECT_EQ(e->bytes, 70u);
  EXPECT_EQ(e->created_ms, 400);
  EXPECT_EQ(e->remaining, (std::set<NodeId>{2, 3}));
}

TEST(ReplicatorAdd, AckedTargetsComeBackOnlyIfListedAgain) {
  struct Case {
    std::set<NodeId> newer_targets;
    std::set<NodeId> want;
  };
  for (const Case& c : std::vector<Case>{{{3}, {3}}, {{2}, {2, 3}}, {{2, 3, 4}, {2, 3, 4}}}) {
    Replicator r;
    r.Add(MakeEntry(Msg("a"), 10, {2, 3}), 0);
    ASSERT_EQ(r.TakeDue(0, kView123).size(), 2u);
    ASSERT_EQ(r.OnAck(Msg("a"), 2, 10, 0), Outcome::kPending);  // 2 holds version 10
    r.Add(MakeEntry(Msg("a"), 20, c.newer_targets), 10);
    EXPECT_EQ(Remaining(r, Msg("a")), c.want);
  }
}

TEST(ReplicatorAdd, ReaddedTargetIsDueAtOnceWithFreshBackoff) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 2u);
  ASSERT_EQ(r.OnAck(Msg("a"), 2, 10, 0), Outcome::kPending);
  r.Add(MakeEntry(Msg("a"), 20, {2}), 10);
  ASSERT_EQ(Describe(r.TakeDue(10, kView123)), std::vector<std::string>{"alice:a->2@20"});
  r.OnFailure(Msg("a"), 2, 10);
  EXPECT_EQ(r.NextDueMs(kView123), 210);
}

TEST(ReplicatorAdd, NewerVersionMakesBackedOffTargetDueAtOnce) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 1u);
  r.OnFailure(Msg("a"), 2, 0);
  ASSERT_EQ(r.NextDueMs(kView123), 200);
  r.Add(MakeEntry(Msg("a"), 20, {2}), 50);
  EXPECT_EQ(r.NextDueMs(kView123), 50);
  EXPECT_EQ(Describe(r.TakeDue(50, kView123)), std::vector<std::string>{"alice:a->2@20"});
}

TEST(ReplicatorAdd, OlderVersionDoesNotShortenBackoff) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 20, {2}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 1u);
  r.OnFailure(Msg("a"), 2, 0);
  r.Add(MakeEntry(Msg("a"), 10, {2}), 50);
  EXPECT_EQ(r.NextDueMs(kView123), 200);
}

TEST(ReplicatorAdd, NewerVersionLeavesInFlightPushInFlight) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123, 1).size(), 1u);  // a->2 in flight
  r.Add(MakeEntry(Msg("a"), 20, {2, 3}), 10);
  EXPECT_EQ(Describe(r.TakeDue(10, kView123)), std::vector<std::string>{"alice:a->3@20"});
  EXPECT_TRUE(r.TakeNow(Msg("a"), kView123).empty());
}

// --- Takeover entries ---

TEST(ReplicatorTakeover, DueOnlyAfterTakeoverMs) {
  ReplicatorOptions options;
  options.takeover_ms = 1000;
  Replicator r(options);
  r.Add(Takeover(Msg("a"), 10, {2, 3}), 100);
  EXPECT_TRUE(r.Find(Msg("a"))->takeover);
  EXPECT_EQ(r.NextDueMs(kView123), 1100);
  EXPECT_TRUE(r.TakeDue(1099, kView123).empty());
  EXPECT_EQ(Describe(r.TakeDue(1100, kView123)),
            (std::vector<std::string>{"alice:a->2@10", "alice:a->3@10"}));
}

TEST(ReplicatorTakeover, DefaultWaitIsTenSeconds) {
  Replicator r;
  r.Add(Takeover(Msg("a"), 10, {2}), 0);
  EXPECT_EQ(r.NextDueMs(kView123), 10000);
}

TEST(ReplicatorTakeover, OnRetireDropsAtOrAboveItsHlc) {
  struct Case {
    uint64_t retired_hlc;
    bool dropped;
  };
  for (const Case& c : std::vector<Case>{{0, false}, {9, false}, {10, true}, {11, true}}) {
    SCOPED_TRACE("retired_hlc=" + std::to_string(c.retired_hlc));
    Replicator r;
    r.Add(Takeover(Msg("a"), 10, {2}), 0);
    EXPECT_EQ(r.OnRetire(Msg("a"), c.retired_hlc), c.dropped);
    EXPECT_EQ(r.Find(Msg("a")) == nullptr, c.dropped);
  }
}

TEST(ReplicatorTakeover, OnRetireKeepsOwnEntries) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  EXPECT_FALSE(r.OnRetire(Msg("a"), 10));
  EXPECT_FALSE(r.OnRetire(Msg("a"), UINT64_MAX));
  EXPECT_NE(r.Find(Msg("a")), nullptr);
}

TEST(ReplicatorTakeover, OnRetireOfUnknownObjectIsFalse) {
  Replicator r;
  EXPECT_FALSE(r.OnRetire(Msg("a"), 10));
  r.Add(Takeover(Msg("a"), 10, {2}), 0);
  EXPECT_FALSE(r.OnRetire(Msg("b"), 10));
  EXPECT_EQ(r.size(), 1u);
}

TEST(ReplicatorTakeover, OnRetireDropsOnlyThatObject) {
  Replicator r;
  r.Add(Takeover(Msg("a"), 10, {2}), 0);
  r.Add(Takeover(Msg("b"), 10, {2}), 0);
  EXPECT_TRUE(r.OnRetire(Msg("a"), 10));
  EXPECT_EQ(r.Find(Msg("a")), nullptr);
  EXPECT_NE(r.Find(Msg("b")), nullptr);
}

TEST(ReplicatorTakeover, NewerTakeoverCopySurvivesRetireOfOlderVersion) {
  Replicator r;
  r.Add(Takeover(Msg("a"), 10, {2}), 0);
  r.Add(Takeover(Msg("a"), 20, {2}), 5);
  EXPECT_TRUE(r.Find(Msg("a"))->takeover);
  EXPECT_FALSE(r.OnRetire(Msg("a"), 10));
  EXPECT_TRUE(r.OnRetire(Msg("a"), 20));
}

TEST(ReplicatorTakeover, OwnNewerUpdateTurnsTakeoverEntryIntoOwn) {
  Replicator r;
  r.Add(Takeover(Msg("a"), 10, {2}), 0);
  r.Add(MakeEntry(Msg("a"), 20, {2, 3}), 50);
  const Entry* e = r.Find(Msg("a"));
  ASSERT_NE(e, nullptr);
  EXPECT_FALSE(e->takeover);
  EXPECT_EQ(r.NextDueMs(kView123), 50);  // no takeover wait for our own update
  EXPECT_EQ(Describe(r.TakeDue(50, kView123)),
            (std::vector<std::string>{"alice:a->2@20", "alice:a->3@20"}));
  EXPECT_FALSE(r.OnRetire(Msg("a"), 20));
}

TEST(ReplicatorTakeover, TakeoverCopyOfOwnEntryStaysOwn) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  r.Add(Takeover(Msg("a"), 10, {3}), 0);
  EXPECT_FALSE(r.Find(Msg("a"))->takeover);
  EXPECT_FALSE(r.OnRetire(Msg("a"), 10));
}

TEST(ReplicatorTakeover, AckedByAllTargetsRetires) {
  Replicator r;
  r.Add(Takeover(Msg("a"), 10, {2}), 0);
  ASSERT_EQ(r.TakeDue(10000, kView123).size(), 1u);
  EXPECT_EQ(r.OnAck(Msg("a"), 2, 10, 10001), Outcome::kRetired);
}

// --- OnView ---

TEST(ReplicatorOnView, DropsRemovedTargets) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}), 0);
  EXPECT_TRUE(r.OnView(ViewOf({1, 2}, {3}), 0).empty());
  EXPECT_EQ(Remaining(r, Msg("a")), std::set<NodeId>{2});
  EXPECT_EQ(Describe(r.TakeDue(0, ViewOf({1, 2, 3}))), std::vector<std::string>{"alice:a->2@10"});
  EXPECT_EQ(r.BacklogByPeer().count(3), 0u);
}

TEST(ReplicatorOnView, ReturnsEntriesLeftWithoutTargets) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {3}), 0);
  r.Add(MakeEntry(Msg("b"), 10, {2, 3}), 0);
  r.Add(MakeEntry(Profile("carol"), 10, {3, 4}), 0);
  r.Add(Takeover(Msg("c"), 10, {4}), 0);
  std::vector<ObjectRef> retired = r.OnView(ViewOf({1, 2}, {3, 4}), 0);
  EXPECT_EQ(retired, (std::vector<ObjectRef>{Msg("a"), Msg("c"), Profile("carol")}));
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(Remaining(r, Msg("b")), std::set<NodeId>{2});
}

TEST(ReplicatorOnView, DropsInFlightRemovedTarget) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 2u);
  EXPECT_TRUE(r.OnView(ViewOf({1, 2}, {3}), 5).empty());
  // The late answer of the removed node changes nothing.
  EXPECT_EQ(r.OnAck(Msg("a"), 3, 10, 6), Outcome::kPending);
  EXPECT_EQ(Remaining(r, Msg("a")), std::set<NodeId>{2});
  EXPECT_EQ(r.OnAck(Msg("a"), 2, 10, 7), Outcome::kRetired);
}

TEST(ReplicatorOnView, DownButNotRemovedTargetIsKept) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {4}), 0);
  EXPECT_TRUE(r.OnView(kView123, 0).empty());
  EXPECT_EQ(Remaining(r, Msg("a")), std::set<NodeId>{4});
}

TEST(ReplicatorOnView, MemberAgainIsDueAtOnceWithBackoffReset) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 1u);
  r.OnFailure(Msg("a"), 2, 0);  // backoff 200
  ASSERT_EQ(r.TakeDue(200, kView123).size(), 1u);
  r.OnFailure(Msg("a"), 2, 200);  // backoff 400: due at 600
  ASSERT_EQ(r.NextDueMs(kView123), 600);
  EXPECT_TRUE(r.OnView(kView123, 250).empty());
  EXPECT_EQ(r.NextDueMs(kView123), 250);
  ASSERT_EQ(r.TakeDue(250, kView123).size(), 1u);
  r.OnFailure(Msg("a"), 2, 250);
  EXPECT_EQ(r.NextDueMs(kView123), 450);  // starts over at retry_initial_ms
}

TEST(ReplicatorOnView, TargetOutsideTheViewKeepsItsBackoff) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {4}), 0);
  ASSERT_EQ(r.TakeDue(0, ViewOf({4})).size(), 1u);
  r.OnFailure(Msg("a"), 4, 0);
  EXPECT_TRUE(r.OnView(kView123, 50).empty());
  EXPECT_EQ(r.NextDueMs(kView123), INT64_MAX);  // not a member: never due here
  EXPECT_EQ(r.NextDueMs(ViewOf({4})), 200);     // its backoff is kept
}

TEST(ReplicatorOnView, DoesNotTouchInFlightTargets) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 0);
  ASSERT_EQ(r.TakeDue(0, kView123).size(), 1u);
  r.OnFailure(Msg("a"), 2, 0);  // backoff 200
  ASSERT_EQ(r.TakeDue(200, kView123).size(), 1u);
  EXPECT_TRUE(r.OnView(kView123, 250).empty());
  EXPECT_TRUE(r.TakeDue(250, kView123).empty());
  EXPECT_EQ(r.NextDueMs(kView123), INT64_MAX);
  // Its backoff was kept: the next failure doubles it.
  r.OnFailure(Msg("a"), 2, 300);
  EXPECT_EQ(r.NextDueMs(kView123), 700);
}

TEST(ReplicatorOnView, TakeoverEntriesKeepWaiting) {
  ReplicatorOptions options;
  options.takeover_ms = 1000;
  Replicator r(options);
  r.Add(Takeover(Msg("a"), 10, {2}), 0);
  EXPECT_TRUE(r.OnView(kView123, 100).empty());
  EXPECT_EQ(r.NextDueMs(kView123), 1000);
  EXPECT_TRUE(r.TakeDue(999, kView123).empty());
}

TEST(ReplicatorOnView, DoesNotDelayTargetsDueEarlier) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}), 100);
  EXPECT_TRUE(r.OnView(kView123, 500).empty());
  EXPECT_EQ(r.NextDueMs(kView123), 100);
}

// --- BacklogByPeer ---

TEST(ReplicatorBacklog, EntriesBytesAndOldestPerTarget) {
  Replicator r;
  EXPECT_TRUE(r.BacklogByPeer().empty());
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}, /*created_ms=*/500, /*bytes=*/100), 500);
  r.Add(MakeEntry(Msg("b"), 10, {3}, /*created_ms=*/200, /*bytes=*/30), 500);
  r.Add(MakeEntry(Profile("bob"), 10, {3, 4}, /*created_ms=*/900, /*bytes=*/7), 900);
  std::map<NodeId, Replicator::Backlog> b = r.BacklogByPeer();
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(std::tie(b[2].entries, b[2].bytes, b[2].oldest_ms),
            std::make_tuple(size_t{1}, uint64_t{100}, int64_t{500}));
  EXPECT_EQ(std::tie(b[3].entries, b[3].bytes, b[3].oldest_ms),
            std::make_tuple(size_t{3}, uint64_t{137}, int64_t{200}));
  EXPECT_EQ(std::tie(b[4].entries, b[4].bytes, b[4].oldest_ms),
            std::make_tuple(size_t{1}, uint64_t{7}, int64_t{900}));
}

TEST(ReplicatorBacklog, ShrinksAsTargetsAcknowledge) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2, 3}, 500, 100), 500);
  r.Add(MakeEntry(Msg("b"), 10, {3}, 200, 30), 500);
  ASSERT_EQ(r.TakeDue(500, kView123).size(), 3u);
  ASSERT_EQ(r.OnAck(Msg("b"), 3, 10, 600), Outcome::kRetired);
  ASSERT_EQ(r.OnAck(Msg("a"), 2, 10, 600), Outcome::kPending);
  std::map<NodeId, Replicator::Backlog> b = r.BacklogByPeer();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(std::tie(b[3].entries, b[3].bytes, b[3].oldest_ms),
            std::make_tuple(size_t{1}, uint64_t{100}, int64_t{500}));
}

TEST(ReplicatorBacklog, MergedVersionCountsOnceWithNewerBytes) {
  Replicator r;
  r.Add(MakeEntry(Msg("a"), 10, {2}, 500, 100), 500);
  r.Add(MakeEntry(Msg("a"), 20, {2}, 800, 40), 800);
  std::map<NodeId, Replicator::Backlog> b = r.BacklogByPeer();
  EXPECT_EQ(std::tie(b[2].entries, b[2].bytes, b[2].oldest_ms),
            std::make_tuple(size_t{1}, uint64_t{40}, int64_t{500}));
}

// --- Invariants under a deterministic random workload ---

// Drives a replicator with random adds, takes, acks, failures, retires and
// views (fixed seed) and checks after every step what the header promises:
// no push is handed out twice before its outcome, every push is for a listed
// target that is a member, TakeDue returns nothing before NextDueMs, an entry
// retires exactly when its last target acknowledges, and the backlog agrees
// with the entries.
TEST(ReplicatorInvariants, HoldUnderRandomOperations) {
  ReplicatorOptions options;
  options.retry_initial_ms = 10;
  options.retry_max_ms = 80;
  options.takeover_ms = 50;
  Replicator r(options);
  std::mt19937_64 rng(42);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  const std::vector<ObjectRef> objects = {Msg("a"), Msg("b"), Msg("c", "bob", 2), Profile("bob")};
  std::map<std::pair<ObjectRef, NodeId>, uint64_t> in_flight;  // → hlc handed out
  std::set<NodeId> removed;
  cluster::View view = ViewOf({1, 2, 3, 4});
  uint64_t hlc = 0;
  int64_t now = 0;
  auto check_push = [&](const Push& p) {
    const Entry* e = r.Find(p.object);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(p.hlc, e->hlc);
    EXPECT_TRUE(e->remaining.count(p.target)) << Describe(p);
    EXPECT_TRUE(view.Contains(p.target)) << Describe(p);
    EXPECT_TRUE(in_flight.emplace(std::make_pair(p.object, p.target), p.hlc).second)
        << "handed out twice: " << Describe(p);
  };
  for (int step = 0; step < 5000; ++step) {
    now += static_cast<int64_t>(pick(20));
    switch (pick(8)) {
      case 0:
      case 1: {
        std::set<NodeId> targets;
        for (NodeId n = 2; n <= 5; ++n) {
          if (pick(2) && !removed.count(n)) targets.insert(n);
        }
        r.Add(
            MakeEntry(objects[pick(objects.size())], ++hlc, targets, now, pick(1000), pick(4) == 0),
            now);
        break;
      }
      case 2: {
        const int64_t next = r.NextDueMs(view);
        if (next > now) {
          EXPECT_TRUE(r.TakeDue(now, view).empty());
        }
        for (const Push& p : r.TakeDue(now, view, 1 + pick(4))) check_push(p);
        break;
      }
      case 3:
        for (const Push& p : r.TakeNow(objects[pick(objects.size())], view)) check_push(p);
        break;
      case 4:
      case 5: {
        if (in_flight.empty()) break;
        auto it = std::next(in_flight.begin(), static_cast<long>(pick(in_flight.size())));
        const auto [object, target] = it->first;
        const uint64_t held = it->second;
        in_flight.erase(it);
        if (pick(2)) {
          r.OnFailure(object, target, now);
          break;
        }
        const Entry* e = r.Find(object);
        const bool last = e && e->remaining == std::set<NodeId>{target} && held >= e->hlc;
        const Outcome want = !e ? Outcome::kUnknown : last ? Outcome::kRetired : Outcome::kPending;
        EXPECT_EQ(r.OnAck(object, target, held, now), want);
        if (want == Outcome::kRetired) {
          // Nothing else of the object is in flight any more.
          for (auto f = in_flight.begin(); f != in_flight.end();) {
            f = f->first.first == object ? in_flight.erase(f) : std::next(f);
          }
        }
        break;
      }
      case 6: {
        const ObjectRef& o = objects[pick(objects.size())];
        const Entry* e = r.Find(o);
        const uint64_t retired = pick(hlc + 1);
        const bool want = e && e->takeover && e->hlc <= retired;
        EXPECT_EQ(r.OnRetire(o, retired), want);
        if (want) {
          for (auto f = in_flight.begin(); f != in_flight.end();) {
            f = f->first.first == o ? in_flight.erase(f) : std::next(f);
          }
        }
        break;
      }
      case 7: {
        std::vector<NodeId> members = {1};
        for (NodeId n = 2; n <= 5; ++n) {
          if (!removed.count(n) && pick(3)) members.push_back(n);
        }
        if (pick(50) == 0) removed.insert(static_cast<NodeId>(2 + pick(4)));
        view = ViewOf(members, removed);
        for (const ObjectRef& o : r.OnView(view, now)) {
          EXPECT_EQ(r.Find(o), nullptr);
          for (auto f = in_flight.begin(); f != in_flight.end();) {
            f = f->first.first == o ? in_flight.erase(f) : std::next(f);
          }
        }
        // Removed nodes' pushes are dropped with their targets.
        for (auto f = in_flight.begin(); f != in_flight.end();) {
          f = removed.count(f->first.second) ? in_flight.erase(f) : std::next(f);
        }
        break;
      }
    }
    // The backlog agrees with the entries.
    std::map<NodeId, Replicator::Backlog> want;
    for (const ObjectRef& o : objects) {
      const Entry* e = r.Find(o);
      if (!e) continue;
      for (NodeId n : e->remaining) {
        EXPECT_FALSE(removed.count(n));
        ++want[n].entries;
        want[n].bytes += e->bytes;
      }
    }
    std::map<NodeId, Replicator::Backlog> got = r.BacklogByPeer();
    ASSERT_EQ(got.size(), want.size()) << "step " << step;
    for (const auto& [n, b] : want) {
      EXPECT_EQ(got[n].entries, b.entries) << "step " << step << " node " << n;
      EXPECT_EQ(got[n].bytes, b.bytes) << "step " << step << " node " << n;
    }
    if (HasFailure()) FAIL() << "at step " << step;
  }
}

}  // namespace
}  // namespace porcupine::replication

namespace porcupine::replication {
namespace {

// A target outside the view is never due (the simulation spun on one at a
// fixed time: its due time stayed in the past while TakeDue skipped it).
TEST(ReplicatorNextDue, IgnoresTargetsOutsideTheView) {
  Replicator r;
  Entry e;
  e.object = {ObjectRef::Kind::kMessage, "u@example.test", 1, std::string(16, 'x')};
  e.hlc = 5;
  e.remaining = {9};
  r.Add(e, 100);
  cluster::View without;
  without.epoch = 1;
  without.members = {{1, 1, "a:1", "n1"}};
  EXPECT_EQ(r.NextDueMs(without), INT64_MAX);
  cluster::View with = without;
  with.members.push_back({9, 1, "b:1", "n9"});
  EXPECT_EQ(r.NextDueMs(with), 100);
}

}  // namespace
}  // namespace porcupine::replication
