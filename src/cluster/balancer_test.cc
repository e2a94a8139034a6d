#include "cluster/balancer.h"

#include <gtest/gtest.h>

#include <map>

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

}  // namespace
}  // namespace porcupine::cluster
