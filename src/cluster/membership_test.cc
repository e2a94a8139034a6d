#include "cluster/membership.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace porcupine::cluster {
namespace {

std::string AddressOf(NodeId id) { return "10.0.0." + std::to_string(id) + ":7000"; }

Member MakeMember(NodeId id, uint64_t incarnation = 1) {
  return {id, incarnation, AddressOf(id), "n" + std::to_string(id)};
}

std::vector<NodeId> Sorted(std::vector<uint32_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// A deterministic network of Membership machines: simulated time, a wire
// ordered by delivery time (fixed latency unless set_latency), crashes,
// partitions and a drop filter. Every installed view is checked against the
// invariants of a view (membership.h) as it happens, and no epoch may name two
// different views anywhere in the cluster.
class Cluster {
 public:
  static constexpr int64_t kLatencyMs = 1;

  explicit Cluster(std::vector<NodeId> ids, MembershipOptions options = {}, uint64_t seed = 1)
      : options_(options), seed_(seed) {
    for (NodeId id : ids) {
      nodes_[id];
      seeds_.push_back(AddressOf(id));
    }
  }

  // Starts `id`; a node that ran before restarts with a new incarnation and,
  // when `keep_floor`, the lamport counter it persisted.
  void Start(NodeId id, bool keep_floor = true) {
    Node& n = nodes_.at(id);
    ++n.incarnation;
    n.installed.clear();
    n.m = std::make_unique<Membership>(options_, MakeMember(id, n.incarnation), seeds_,
                                       seed_ * 1000 + id * 10 + n.incarnation,
                                       keep_floor ? n.lamport_floor : 0);
    n.m->Start(now_);
    Drain(id);
  }
  void StartAll() {
    for (auto& [id, n] : nodes_) Start(id);
  }
  // The process dies: messages to it, and its own still in flight, are lost.
  void Crash(NodeId id) { nodes_.at(id).m.reset(); }
  bool Up(NodeId id) const { return nodes_.at(id).m != nullptr; }

  // Messages between nodes of different groups are lost; unlisted nodes form
  // a group of their own.
  void Partition(const std::vector<std::vector<NodeId>>& groups) {
    for (auto& [id, n] : nodes_) n.group = -static_cast<int>(id);
    for (size_t g = 0; g < groups.size(); ++g) {
      for (NodeId id : groups[g]) nodes_.at(id).group = static_cast<int>(g);
    }
  }
  void Heal() {
    for (auto& [id, n] : nodes_) n.group = 0;
  }
  // Off for tests that show what happens without the lamport floor.
  void set_check_unique_epochs(bool on) { check_unique_epochs_ = on; }
  // Per-message latency (default kLatencyMs); varying it reorders messages.
  void set_latency(std::function<int64_t()> latency) { latency_ = std::move(latency); }
  // Messages for which `drop` returns true are lost.
  void DropIf(std::function<bool(NodeId to, const Message&)> drop) { drop_ = std::move(drop); }

  // Delivers messages and runs timers until done() holds (true) or the next
  // event lies past deadline_ms (false; time then stands at deadline_ms).
  bool RunUntil(const std::function<bool()>& done, int64_t deadline_ms) {
    for (int steps = 0; steps < 1'000'000; ++steps) {
      if (done()) return true;
      if (!Step(deadline_ms)) {
        now_ = std::max(now_, deadline_ms);
        return done();
      }
    }
    ADD_FAILURE() << "no progress at " << now_ << " ms: a timer that is due does not advance";
    return false;
  }
  void RunFor(int64_t ms) {
    RunUntil([] { return false; }, now_ + ms);
  }

  // True when every node of `ids` is up, has installed the same view, whose
  // members are exactly `ids` (current incarnations), and is not in a round.
  bool Converged(const std::vector<NodeId>& ids) const {
    const View* first = nullptr;
    for (NodeId id : ids) {
      const Node& n = nodes_.at(id);
      if (!n.m || n.m->view().epoch == 0 || n.m->InRound()) return false;
      if (first && !(n.m->view() == *first)) return false;
      first = &n.m->view();
    }
    if (!first || first->ids() != Sorted(ids)) return false;
    for (NodeId id : ids) {
      if (!first->HasIncarnation(nodes_.at(id).m->self())) return false;
    }
    return true;
  }
  bool RunUntilConverged(const std::vector<NodeId>& ids, int64_t within_ms) {
    return RunUntil([&] { return Converged(ids); }, now_ + within_ms);
  }

  Membership& node(NodeId id) { return *nodes_.at(id).m; }
  int64_t now() const { return now_; }
  // Epochs the current incarnation of `id` installed, in order.
  const std::vector<Epoch>& installed(NodeId id) const { return nodes_.at(id).installed; }
  // Drains `id`'s outbox onto the wire (after a direct call on node(id)).
  void Drain(NodeId id) {
    Node& n = nodes_.at(id);
    // The driver makes lamport() durable before sending.
    n.lamport_floor = std::max(n.lamport_floor, n.m->lamport());
    for (Outgoing& out : n.m->TakeOutbox()) {
      EXPECT_NE(out.address, AddressOf(id)) << "node " << id << " sends to itself";
      const int64_t at = now_ + (latency_ ? latency_() : kLatencyMs);
      wire_.emplace(at, InFlight{id, std::move(out)});
    }
    if (n.m->TakeViewChanged()) Check(id, n);
  }

 private:
  struct Node {
    std::unique_ptr<Membership> m;
    uint64_t incarnation = 0;
    uint32_t lamport_floor = 0;
    int group = 0;
    std::vector<Epoch> installed;
  };
  struct InFlight {
    NodeId from;
    Outgoing out;
  };

  // Invariants of every installed view.
  void Check(NodeId id, Node& n) {
    const View& v = n.m->view();
    SCOPED_TRACE("node " + std::to_string(id) + " view " + std::to_string(v.epoch));
    EXPECT_TRUE(n.installed.empty() || v.epoch > n.installed.back()) << "epochs must increase";
    n.installed.push_back(v.epoch);
    EXPECT_TRUE(v.HasIncarnation(n.m->self())) << "installed a view without itself";
    for (size_t i = 1; i < v.members.size(); ++i) {
      EXPECT_LT(v.members[i - 1].id, v.members[i].id) << "members not sorted and unique";
    }
    EXPECT_EQ(v.user_map.buckets(), options_.buckets);
    for (uint32_t b = 0; b < v.user_map.buckets(); ++b) {
      ASSERT_TRUE(v.Contains(v.user_map.ManagerOf(b))) << "bucket " << b << " has no manager";
    }
    for (NodeId r : v.removed) EXPECT_FALSE(v.Contains(r)) << "removed node " << r;
    auto [it, fresh] = views_.emplace(v.epoch, v);
    if (check_unique_epochs_) {
      EXPECT_TRUE(fresh || it->second == v) << "two different views share an epoch";
    }
  }

  bool Step(int64_t deadline_ms) {
    int64_t t = wire_.empty() ? INT64_MAX : wire_.begin()->first;
    for (auto& [id, n] : nodes_) {
      if (n.m) t = std::min(t, n.m->NextTimerMs());
    }
    if (t == INT64_MAX || t > deadline_ms) return false;
    now_ = std::max(now_, t);
    if (!wire_.empty() && wire_.begin()->first <= now_) {
      InFlight f = std::move(wire_.begin()->second);
      wire_.erase(wire_.begin());
      Deliver(f);
      return true;
    }
    for (auto& [id, n] : nodes_) {
      if (n.m && n.m->NextTimerMs() <= now_) {
        n.m->OnTick(now_);
        Drain(id);
      }
    }
    return true;
  }

  void Deliver(const InFlight& f) {
    for (auto& [id, n] : nodes_) {
      if (AddressOf(id) != f.out.address) continue;
      if (!n.m || !nodes_.at(f.from).m || n.group != nodes_.at(f.from).group) return;
      if (drop_ && drop_(id, f.out.message)) return;
      n.m->OnMessage(now_, f.out.message);
      Drain(id);
      return;
    }
  }

  MembershipOptions options_;
  uint64_t seed_;
  int64_t now_ = 0;
  std::vector<std::string> seeds_;
  std::map<NodeId, Node> nodes_;
  std::multimap<int64_t, InFlight> wire_;  // by delivery time, then sending order
  std::function<int64_t()> latency_;
  std::function<bool(NodeId, const Message&)> drop_;
  std::map<Epoch, View> views_;
  bool check_unique_epochs_ = true;
};

const MembershipOptions kOptions;
// Upper bound for a round once it is due: jitter, then the accept window,
// plus a few message latencies.
const int64_t kRoundMs = kOptions.max_jitter_ms + kOptions.accept_window_ms + 10;
const std::vector<uint64_t> kSeeds = {1, 2, 3, 4, 5, 6, 7, 8};

std::vector<uint32_t> SortedCounts(const View& v) {
  std::vector<uint32_t> counts;
  for (const Member& m : v.members) counts.push_back(v.user_map.CountOf(m.id));
  return Sorted(counts);
}

// ---- Start-up --------------------------------------------------------------

TEST(Membership, SingleNodeCommitsAViewOfItself) {
  struct Case {
    const char* name;
    std::vector<NodeId> configured;  // seeds: every configured node; only node 1 starts
    int64_t within_ms;
  };
  const Case cases[] = {
      // Nobody to ask: the view is committed at once.
      {"no seeds", {1}, 0},
      // Start waits a round timeout for a running cluster, then runs a round.
      {"seeds never answer", {1, 2, 3}, kOptions.round_timeout_ms + kRoundMs},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Cluster cluster(c.configured);
    cluster.Start(1);
    ASSERT_TRUE(cluster.RunUntil([&] { return cluster.node(1).view().epoch != 0; }, c.within_ms));
    const View& v = cluster.node(1).view();
    EXPECT_EQ(v.members, std::vector<Member>{MakeMember(1)});
    EXPECT_EQ(v.joined, std::vector<NodeId>{1});
    EXPECT_EQ(v.base_epoch, 0u);
    EXPECT_EQ(EpochCoordinator(v.epoch), 1u);
    EXPECT_EQ(v.user_map, UserMap(256, 1, v.epoch));
    EXPECT_FALSE(cluster.node(1).InRound());
    // Alone and stable: no further views.
    cluster.RunFor(10'000);
    EXPECT_EQ(cluster.installed(1).size(), 1u);
  }
}

TEST(Membership, ThreeNodesStartedTogetherConvergeToOneBalancedView) {
  for (uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster cluster({1, 2, 3}, kOptions, seed);
    cluster.StartAll();
    ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 3000));
    const View& v = cluster.node(1).view();
    EXPECT_EQ(SortedCounts(v), (std::vector<uint32_t>{85, 85, 86}));
    EXPECT_EQ(v.joined, (std::vector<NodeId>{1, 2, 3}));
    // A converged cluster stays quiet: pings are answered, nobody suspects.
    const Epoch epoch = v.epoch;
    cluster.RunFor(20'000);
    for (NodeId id : {1u, 2u, 3u}) EXPECT_EQ(cluster.node(id).view().epoch, epoch) << id;
  }
}

TEST(Membership, TakeViewChangedIsTrueOncePerInstall) {
  Membership m(kOptions, MakeMember(1), {}, 1);
  EXPECT_FALSE(m.TakeViewChanged()) << "before Start";
  m.Start(0);
  for (int i = 0; i < 10 && m.view().epoch == 0; ++i) m.OnTick(m.NextTimerMs());
  ASSERT_NE(m.view().epoch, 0u);
  EXPECT_TRUE(m.TakeViewChanged());
  EXPECT_FALSE(m.TakeViewChanged());
  EXPECT_TRUE(m.TakeOutbox().empty());  // nobody to tell
}

TEST(Membership, PreviousViewIsTheViewInstalledBefore) {
  Cluster cluster({1, 2});
  cluster.Start(1);
  ASSERT_TRUE(cluster.RunUntilConverged({1}, 2000));
  const View first = cluster.node(1).view();
  EXPECT_EQ(cluster.node(1).previous_view().epoch, 0u);
  cluster.Start(2);
  ASSERT_TRUE(cluster.RunUntilConverged({1, 2}, 3000));
  EXPECT_EQ(cluster.node(1).previous_view(), first);
  EXPECT_EQ(cluster.node(1).view().base_epoch, first.epoch);
  EXPECT_EQ(cluster.node(1).view().joined, std::vector<NodeId>{2});
  // Node 2's first view: nothing before it.
  EXPECT_EQ(cluster.node(2).previous_view().epoch, 0u);
}

// ---- Failures ----------------------------------------------------------------

TEST(Membership, SilentNodeIsExcludedWithinTheDetectionBound) {
  // The predecessor notices at its first ping after ping_timeout without an
  // ack (pings run every ping_interval), then runs a round.
  const int64_t bound =
      kOptions.ping_timeout_ms + kOptions.ping_interval_ms + kRoundMs + 2 * Cluster::kLatencyMs;
  for (uint64_t seed : kSeeds) {
    for (NodeId dead : {1u, 2u, 3u}) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " dead " + std::to_string(dead));
      Cluster cluster({1, 2, 3}, kOptions, seed);
      cluster.StartAll();
      ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 3000));
      cluster.RunFor(777);  // somewhere in the ping cycle
      std::vector<NodeId> rest;
      for (NodeId id : {1u, 2u, 3u})
        if (id != dead) rest.push_back(id);
      const int64_t crash = cluster.now();
      cluster.Crash(dead);
      ASSERT_TRUE(cluster.RunUntilConverged(rest, bound)) << "not excluded within " << bound;
      EXPECT_GE(cluster.now() - crash, kOptions.ping_timeout_ms) << "suspected too early";
      EXPECT_EQ(SortedCounts(cluster.node(rest[0]).view()), (std::vector<uint32_t>{128, 128}));
      EXPECT_TRUE(cluster.node(rest[0]).view().joined.empty());
    }
  }
}

TEST(Membership, RestartedNodeRejoinsAsJoinedAndItsBucketsAreRestamped) {
  struct Case {
    const char* name;
    int64_t downtime_ms;  // 0: back before the others notice it was gone
  };
  for (const Case& c : {Case{"quick restart", 0}, Case{"after exclusion", 5000}}) {
    for (uint64_t seed : kSeeds) {
      SCOPED_TRACE(std::string(c.name) + " seed " + std::to_string(seed));
      Cluster cluster({1, 2, 3}, kOptions, seed);
      cluster.StartAll();
      ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 3000));
      const View before_crash = cluster.node(1).view();
      cluster.Crash(3);
      cluster.RunFor(c.downtime_ms);
      const View base = cluster.node(1).view();
      cluster.Start(3);
      ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 5000));
      const View& v = cluster.node(1).view();
      EXPECT_EQ(v.Find(3)->incarnation, 2u);
      EXPECT_EQ(v.joined, std::vector<NodeId>{3});
      EXPECT_EQ(v.base_epoch, base.epoch);
      EXPECT_EQ(SortedCounts(v), (std::vector<uint32_t>{85, 85, 86}));
      for (uint32_t b = 0; b < v.user_map.buckets(); ++b) {
        if (v.user_map.ManagerOf(b) == 3) {
          EXPECT_EQ(v.user_map.EpochOf(b), v.epoch) << "bucket " << b;
        } else {
          EXPECT_FALSE(v.user_map.EntryDiffers(base.user_map, b)) << "bucket " << b;
        }
      }
      if (c.downtime_ms == 0) {
        EXPECT_EQ(base.epoch, before_crash.epoch) << "excluded although it came back at once";
      } else {
        EXPECT_FALSE(base.Contains(3)) << "not excluded while down";
      }
    }
  }
}

TEST(Membership, EpochsStayUniqueAcrossARestartOnlyWithTheLamportFloor) {
  struct Case {
    bool keep_floor;
    bool unique;
  };
  for (const Case& c : {Case{true, true}, Case{false, false}}) {
    SCOPED_TRACE(c.keep_floor ? "lamport floor passed" : "no lamport floor");
    Cluster cluster({1});
    cluster.set_check_unique_epochs(c.unique);
    cluster.Start(1);
    ASSERT_TRUE(cluster.RunUntilConverged({1}, 2000));
    const Epoch old_epoch = cluster.node(1).view().epoch;
    const uint32_t old_lamport = cluster.node(1).lamport();
    cluster.Crash(1);
    cluster.Start(1, c.keep_floor);
    ASSERT_TRUE(cluster.RunUntilConverged({1}, 2000));
    const Epoch new_epoch = cluster.node(1).view().epoch;
    if (c.unique) {
      EXPECT_GT(EpochCounter(new_epoch), old_lamport);
      EXPECT_GT(new_epoch, old_epoch);
    } else {
      // Without the floor the counter starts over and the epoch repeats:
      // why the driver must persist lamport().
      EXPECT_EQ(new_epoch, old_epoch);
    }
  }
}

TEST(Membership, EpochsStayUniqueAcrossRepeatedRestartsInACluster) {
  // The harness checks that no epoch names two different views.
  Cluster cluster({1, 2, 3});
  cluster.StartAll();
  ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 3000));
  for (int round = 0; round < 6; ++round) {
    const NodeId id = static_cast<NodeId>(round % 3 + 1);
    SCOPED_TRACE("restart " + std::to_string(round) + " of node " + std::to_string(id));
    cluster.Crash(id);
    cluster.RunFor(round % 2 ? 4000 : 0);
    cluster.Start(id);
    ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 5000));
  }
}

TEST(Membership, LostCommitIsResentWhenTheMemberPings) {
  Cluster cluster({1, 2, 3});
  cluster.StartAll();
  ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 3000));
  bool dropped = false;
  cluster.DropIf([&](NodeId to, const Message& m) {
    if (to != 3 || dropped || !std::holds_alternative<Commit>(m.body)) return false;
    dropped = true;
    return true;
  });
  cluster.node(1).OnUnreachable(cluster.now(), 2);  // forces a round with the same members
  cluster.Drain(1);
  ASSERT_TRUE(cluster.RunUntil([&] { return dropped; }, cluster.now() + 2000));
  const Epoch committed = cluster.node(1).view().epoch;
  // Node 3 pings node 1 from the older view; node 1 re-sends its Commit.
  ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, kOptions.ping_interval_ms + 10));
  EXPECT_EQ(cluster.node(3).view().epoch, committed);
}

TEST(Membership, UnreachableLiveMemberReformsTheSameViewWithTheSameMap) {
  Cluster cluster({1, 2, 3});
  cluster.StartAll();
  ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 3000));
  const View before = cluster.node(1).view();
  cluster.node(1).OnUnreachable(cluster.now(), 2);
  cluster.Drain(1);
  ASSERT_TRUE(cluster.RunUntil([&] { return cluster.node(1).view().epoch != before.epoch; },
                               cluster.now() + kRoundMs));
  ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 100));
  const View& after = cluster.node(1).view();
  EXPECT_EQ(after.members, before.members);
  EXPECT_TRUE(after.joined.empty());
  EXPECT_EQ(after.base_epoch, before.epoch);
  EXPECT_EQ(after.user_map, before.user_map);  // no entry moves or is restamped
}

TEST(Membership, UnreachableNonMemberOrSelfStartsNoRound) {
  for (NodeId node : {1u, 9u}) {
    SCOPED_TRACE("node " + std::to_string(node));
    Cluster cluster({1, 2});
    cluster.StartAll();
    ASSERT_TRUE(cluster.RunUntilConverged({1, 2}, 3000));
    const Epoch epoch = cluster.node(1).view().epoch;
    cluster.node(1).OnUnreachable(cluster.now(), node);
    cluster.Drain(1);
    cluster.RunFor(5000);
    EXPECT_EQ(cluster.node(1).view().epoch, epoch);
  }
}

// ---- Partitions ----------------------------------------------------------------

TEST(Membership, PartitionFormsTwoViewsThatMergeAfterHealing) {
  struct Case {
    std::vector<NodeId> a, b;
  };
  for (const Case& c : {Case{{1, 2}, {3}}, Case{{1, 2}, {3, 4, 5}}, Case{{1, 4}, {2, 3, 5}}}) {
    for (uint64_t seed : kSeeds) {
      SCOPED_TRACE(::testing::PrintToString(c.a) + " | " + ::testing::PrintToString(c.b) +
                   " seed " + std::to_string(seed));
      std::vector<NodeId> all = c.a;
      all.insert(all.end(), c.b.begin(), c.b.end());
      all = Sorted(all);
      Cluster cluster(all, kOptions, seed);
      cluster.StartAll();
      ASSERT_TRUE(cluster.RunUntilConverged(all, 3000));
      cluster.Partition({c.a, c.b});
      ASSERT_TRUE(cluster.RunUntil([&] { return cluster.Converged(c.a) && cluster.Converged(c.b); },
                                   cluster.now() + 5000));
      const View va = cluster.node(c.a[0]).view();
      const View vb = cluster.node(c.b[0]).view();
      EXPECT_NE(va.epoch, vb.epoch);
      cluster.Heal();
      // Probes find the other side within a probe interval; then a round (or
      // two, when both sides start one and the smaller proposal is rejected).
      ASSERT_TRUE(cluster.RunUntilConverged(all, kOptions.probe_interval_ms + 3 * kRoundMs));
      const View& v = cluster.node(all[0]).view();
      ASSERT_TRUE(v.base_epoch == va.epoch || v.base_epoch == vb.epoch) << v.base_epoch;
      EXPECT_EQ(v.joined, Sorted(v.base_epoch == va.epoch ? c.b : c.a));
      std::vector<uint32_t> counts = SortedCounts(v);
      EXPECT_LE(counts.back() - counts.front(), 1u);
    }
  }
}

// ---- Operator removal ----------------------------------------------------------

TEST(Membership, RemoveExcludesALiveNodeForGood) {
  for (NodeId coordinator : {1u, 2u}) {
    SCOPED_TRACE("Remove called on node " + std::to_string(coordinator));
    Cluster cluster({1, 2, 3});
    cluster.StartAll();
    ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 3000));
    EXPECT_FALSE(cluster.node(coordinator).Remove(cluster.now(), coordinator)) << "itself";
    EXPECT_FALSE(cluster.node(coordinator).Remove(cluster.now(), 0));
    EXPECT_TRUE(cluster.node(coordinator).Remove(cluster.now(), 3));
    cluster.Drain(coordinator);
    ASSERT_TRUE(cluster.RunUntil(
        [&] {
          return cluster.Converged({1, 2}) && cluster.node(3).removed();
        },
        cluster.now() + 2000));
    EXPECT_EQ(cluster.node(1).view().removed, std::set<NodeId>{3});
    // The removed node stays out: it neither rejoins nor disturbs the view.
    const Epoch epoch = cluster.node(1).view().epoch;
    cluster.RunFor(10'000);
    EXPECT_EQ(cluster.node(1).view().epoch, epoch);
    EXPECT_EQ(cluster.node(2).view().epoch, epoch);
    EXPECT_EQ(cluster.node(3).NextTimerMs(), INT64_MAX);
  }
}

TEST(Membership, RemovedNodeIsToldWhenItRestarts) {
  Cluster cluster({1, 2, 3});
  cluster.StartAll();
  ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3}, 3000));
  cluster.Crash(3);
  ASSERT_TRUE(cluster.node(1).Remove(cluster.now(), 3));
  cluster.Drain(1);
  ASSERT_TRUE(cluster.RunUntilConverged({1, 2}, 2000));
  cluster.Start(3);
  ASSERT_TRUE(cluster.RunUntil([&] { return cluster.node(3).removed(); }, cluster.now() + 2000));
  cluster.RunFor(5000);
  EXPECT_TRUE(cluster.Converged({1, 2}));
  EXPECT_EQ(cluster.node(3).view().epoch, 0u);
}

TEST(Membership, RemovalOnOneSideOfAPartitionHoldsAfterTheMerge) {
  for (uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster cluster({1, 2, 3, 4}, kOptions, seed);
    cluster.StartAll();
    ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3, 4}, 3000));
    cluster.Partition({{1, 2}, {3, 4}});
    ASSERT_TRUE(cluster.RunUntil(
        [&] {
          return cluster.Converged({1, 2}) && cluster.Converged({3, 4});
        },
        cluster.now() + 5000));
    // Node 4 is alive on the other side and hears of its removal only after healing.
    ASSERT_TRUE(cluster.node(1).Remove(cluster.now(), 4));
    cluster.Drain(1);
    ASSERT_TRUE(cluster.RunUntilConverged({1, 2}, 2000));
    cluster.Heal();
    ASSERT_TRUE(cluster.RunUntil(
        [&] {
          return cluster.Converged({1, 2, 3}) && cluster.node(4).removed();
        },
        cluster.now() + 10'000));
    EXPECT_EQ(cluster.node(3).view().removed, std::set<NodeId>{4});
  }
}

// The removed set of a new view is the union of what the coordinator and the
// acceptors' views carry. Otherwise, when the merge after a partition is
// coordinated from the side that never heard of a removal, the committed view
// would forget it, and once the nodes that still remember it locally restart,
// the removed node would be let back in (found by this test).
TEST(Membership, RemovedSetSurvivesAMergeCoordinatedByTheOtherSide) {
  for (uint64_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster cluster({1, 2, 3, 4}, kOptions, seed);
    cluster.StartAll();
    ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 3, 4}, 3000));
    cluster.Partition({{1, 2, 3}, {4}});
    ASSERT_TRUE(cluster.RunUntil(
        [&] {
          return cluster.Converged({1, 2, 3}) && cluster.Converged({4});
        },
        cluster.now() + 5000));
    ASSERT_TRUE(cluster.node(1).Remove(cluster.now(), 3));
    cluster.Drain(1);
    ASSERT_TRUE(cluster.RunUntil(
        [&] {
          return cluster.Converged({1, 2}) && cluster.node(3).removed();
        },
        cluster.now() + 2000));
    cluster.Crash(3);
    cluster.Heal();
    ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 4}, 5000));
    EXPECT_EQ(cluster.node(1).view().removed, std::set<NodeId>{3})
        << "merge coordinated by node " << EpochCoordinator(cluster.node(1).view().epoch);
    // The consequence: nodes 1 and 2 restart, then node 3 comes back.
    cluster.Crash(1);
    cluster.Crash(2);
    cluster.Start(1);
    cluster.Start(2);
    ASSERT_TRUE(cluster.RunUntilConverged({1, 2, 4}, 5000));
    cluster.Start(3);
    cluster.RunFor(5000);
    EXPECT_TRUE(cluster.Converged({1, 2, 4}));
    EXPECT_TRUE(cluster.node(3).removed());
  }
}

// ---- Random faults -------------------------------------------------------------

// Random faults for a Cluster: crashes, restarts, partitions, one-way links
// and message loss; Install() makes the cluster consult them.
struct RandomFaults {
  explicit RandomFaults(uint64_t seed) : rng(seed) {}

  void Install(Cluster& cluster) {
    cluster.DropIf([this](NodeId to, const Message& m) {
      return cut.count({m.from.id, to}) || static_cast<int>(rng() % 1000) < drop_per_mille;
    });
    cluster.set_latency([this] { return static_cast<int64_t>(1 + rng() % 80); });  // reorders
  }
  void InjectOne(Cluster& cluster, const std::vector<NodeId>& all) {
    const NodeId a = all[rng() % all.size()], b = all[rng() % all.size()];
    switch (rng() % 6) {
      case 0:
        if (cluster.Up(a)) cluster.Crash(a);
        if (rng() % 2) cluster.Start(a);
        log += " restart" + std::to_string(a);
        break;
      case 1:
        if (!cluster.Up(a)) cluster.Start(a);
        log += " start" + std::to_string(a);
        break;
      case 2: {
        std::vector<NodeId> x, y;
        for (NodeId n : all) (rng() % 2 ? x : y).push_back(n);
        cluster.Partition({x, y});
        log += " partition";
        break;
      }
      case 3:
        drop_per_mille = static_cast<int>(rng() % 6) * 100;
        log += " drop" + std::to_string(drop_per_mille);
        break;
      case 4:
        cut.insert({a, b});
        log += " cut" + std::to_string(a) + ">" + std::to_string(b);
        break;
      case 5:
        Clear(cluster);
        log += " heal";
        break;
    }
  }
  void Clear(Cluster& cluster) {
    cluster.Heal();
    cut.clear();
    drop_per_mille = 0;
  }

  std::mt19937_64 rng;
  int drop_per_mille = 0;
  std::set<std::pair<NodeId, NodeId>> cut;  // (from, to)
  std::string log;
};

// Once every fault is gone and every node is back, the cluster converges to
// one view of everybody and stays there. The harness checks the per-install
// invariants throughout.
TEST(Membership, RandomFaultsHealToOneStableView) {
  const std::vector<NodeId> all = {1, 2, 3, 4, 5};
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Cluster cluster(all, kOptions, seed);
    RandomFaults faults(seed);
    faults.Install(cluster);
    cluster.StartAll();
    for (int step = 0; step < 25; ++step) {
      faults.InjectOne(cluster, all);
      cluster.RunFor(static_cast<int64_t>(faults.rng() % 3000));
    }
    SCOPED_TRACE("seed " + std::to_string(seed) + ":" + faults.log);
    faults.Clear(cluster);
    for (NodeId n : all) {
      if (!cluster.Up(n)) cluster.Start(n);
    }
    ASSERT_TRUE(cluster.RunUntilConverged(all, 20'000));
    cluster.RunFor(5000);  // rounds the faults already triggered may still run
    ASSERT_TRUE(cluster.RunUntilConverged(all, 20'000));
    const Epoch epoch = cluster.node(1).view().epoch;
    cluster.RunFor(10'000);
    EXPECT_EQ(cluster.node(1).view().epoch, epoch) << "views keep changing without faults";
  }
}

// ---- ComputeUserMap ------------------------------------------------------------

View BaseView(Epoch epoch, std::vector<Member> members, uint32_t buckets = 16) {
  View v;
  v.epoch = epoch;
  v.members = std::move(members);
  v.user_map = UserMap::Recompute(UserMap(buckets, 0), v.ids(), epoch);
  return v;
}

TEST(ComputeUserMap, JoinedSetAndRestamping) {
  const Epoch kNew = MakeEpoch(9, 1);
  const View base = BaseView(MakeEpoch(5, 1), {MakeMember(1), MakeMember(2), MakeMember(3)});
  struct Case {
    const char* name;
    View base;
    std::vector<Member> members;
    std::vector<NodeId> joined;
  };
  const Case cases[] = {
      {"first view: everybody joined", View{}, {MakeMember(1), MakeMember(2)}, {1, 2}},
      {"same members", base, base.members, {}},
      {"new node", base, {MakeMember(1), MakeMember(2), MakeMember(3), MakeMember(4)}, {4}},
      {"restarted node", base, {MakeMember(1), MakeMember(2, 2), MakeMember(3)}, {2}},
      {"node left", base, {MakeMember(1), MakeMember(3)}, {}},
      {"base with another bucket count",
       BaseView(MakeEpoch(5, 1), base.members, 8),
       base.members,
       {1, 2, 3}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<NodeId> joined = {77};  // replaced, not appended to
    UserMap got = ComputeUserMap(16, c.base, c.members, kNew, &joined);
    EXPECT_EQ(joined, c.joined);
    std::vector<NodeId> ids;
    for (const Member& m : c.members) ids.push_back(m.id);
    const bool have_base = c.base.epoch != 0 && c.base.user_map.buckets() == 16;
    UserMap recomputed =
        UserMap::Recompute(have_base ? c.base.user_map : UserMap(16, 0), ids, kNew);
    for (uint32_t b = 0; b < 16; ++b) {
      EXPECT_EQ(got.ManagerOf(b), recomputed.ManagerOf(b)) << "bucket " << b;
      const bool joined_manager =
          std::find(c.joined.begin(), c.joined.end(), got.ManagerOf(b)) != c.joined.end();
      EXPECT_EQ(got.EpochOf(b), joined_manager ? kNew : recomputed.EpochOf(b)) << "bucket " << b;
    }
  }
}

TEST(ComputeUserMap, RestartedManagerKeepsItsBucketsButRestamped) {
  const View base = BaseView(MakeEpoch(5, 1), {MakeMember(1), MakeMember(2)});
  std::vector<NodeId> joined;
  UserMap got =
      ComputeUserMap(16, base, {MakeMember(1), MakeMember(2, 7)}, MakeEpoch(6, 1), &joined);
  for (uint32_t b = 0; b < 16; ++b) {
    EXPECT_EQ(got.ManagerOf(b), base.user_map.ManagerOf(b));
    EXPECT_EQ(got.EpochOf(b), got.ManagerOf(b) == 2 ? MakeEpoch(6, 1) : MakeEpoch(5, 1));
  }
}

TEST(Epoch, OrderIsCounterThenCoordinator) {
  EXPECT_LT(MakeEpoch(1, 9), MakeEpoch(2, 1));
  EXPECT_LT(MakeEpoch(2, 1), MakeEpoch(2, 3));
  EXPECT_EQ(EpochCounter(MakeEpoch(7, 0xffffffffu)), 7u);
  EXPECT_EQ(EpochCoordinator(MakeEpoch(7, 0xffffffffu)), 0xffffffffu);
}

}  // namespace
}  // namespace porcupine::cluster
