#include "replication/rereplication.h"

#include <gtest/gtest.h>

#include <map>

namespace porcupine::replication {
namespace {

using cluster::NodeId;
using Ids = std::vector<NodeId>;

cluster::View ViewOf(const Ids& members, const Ids& removed = {}) {
  cluster::View v;
  v.epoch = 1;
  for (NodeId id : members) v.members.push_back({id, 1, "", "n" + std::to_string(id)});
  v.removed = {removed.begin(), removed.end()};
  return v;
}

ReplicaPlanInput Input(const cluster::View& view, NodeId self, std::map<NodeId, uint64_t> loads) {
  ReplicaPlanInput in;
  in.view = &view;
  in.self = self;
  in.want = 2;
  in.load = [loads](NodeId n) { return loads.count(n) ? loads.at(n) : 0; };
  return in;
}

TEST(RereplicationTest, AMessageWithItsCopiesIsLeftAlone) {
  const cluster::View view = ViewOf({1, 2, 3});
  EXPECT_FALSE(ShortOfCopies({1, 2}, Input(view, 1, {})));
  EXPECT_FALSE(PlanReplicas({1, 2}, "id", Input(view, 1, {})).has_value());
}

TEST(RereplicationTest, ARemovedReplicaIsReplacedByTheLeastLoadedMember) {
  const cluster::View view = ViewOf({1, 3, 4}, {2});
  ReplicaPlanInput in = Input(view, 1, {{3, 50}, {4, 5}});
  EXPECT_TRUE(ShortOfCopies({1, 2}, in));
  EXPECT_EQ(PlanReplicas({1, 2}, "id", in), (Ids{1, 4}));
}

TEST(RereplicationTest, OnlyTheLowestReplicaInTheViewRepairs) {
  const cluster::View view = ViewOf({1, 2, 3});
  // Accepted by node 2 alone (a partition): node 2 tops it up, not node 1.
  EXPECT_EQ(PlanReplicas({2}, "id", Input(view, 2, {})).value().size(), 2u);
  EXPECT_FALSE(PlanReplicas({2}, "id", Input(view, 1, {})).has_value());
  // Node 3 is a replica, node 2 (lower) is too and is in the view: 2 leads.
  const cluster::View four = ViewOf({1, 2, 3, 4});
  ReplicaPlanInput in = Input(four, 3, {});
  in.want = 3;
  EXPECT_FALSE(PlanReplicas({3, 2}, "id", in).has_value());
}

TEST(RereplicationTest, ARemovedReplicaLeavesTheListEvenWithNobodyToAdd) {
  const cluster::View view = ViewOf({1}, {2});
  EXPECT_EQ(PlanReplicas({1, 2}, "id", Input(view, 1, {})), (Ids{1}));
  // Alone and with one copy: nothing to change.
  EXPECT_FALSE(PlanReplicas({1}, "id", Input(view, 1, {})).has_value());
}

}  // namespace
}  // namespace porcupine::replication
