// Delivery load balancing (DESIGN.md §6): pick the nodes that store a new
// message for a user. Pure and deterministic given its inputs and rng.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "cluster/user_map.h"

namespace porcupine::cluster {

struct BalancerInput {
  std::vector<NodeId> mail_map;  // live nodes already holding the user's mail
  std::vector<NodeId> live;      // every live node of the view, sorted
  int spread = 2;                // soft limit on nodes holding the user's mail
  int copies = 1;                // replicas to choose
  // Pending disk-bound operations per node; unknown nodes count as 0.
  std::function<uint64_t(NodeId)> load;
};

// Candidates are the mail-map nodes topped up with random live nodes up to
// `spread`; returns the `copies` least loaded of them (ties by node id),
// fewer when fewer nodes are live.
std::vector<NodeId> ChooseReplicas(const BalancerInput& in, std::mt19937_64& rng);

}  // namespace porcupine::cluster
