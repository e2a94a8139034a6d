// Delivery load balancing (DESIGN.md §6, PAPER.md §8): pick the nodes that
// store a new message for a user. Pure and deterministic given its inputs and
// rng.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "cluster/user_map.h"

namespace porcupine::cluster {

enum class Policy {
  kDynamic,  // Porcupine: mail-map nodes topped up at random to `spread`, least loaded win
  kStatic,   // `spread` candidates fixed per user by hashing (classic partitioning at 1)
  kRandom,   // any live nodes, uniformly, no affinity
};
// "dynamic", "static", "random"; nullopt for anything else.
std::optional<Policy> ParsePolicy(std::string_view name);
std::string_view PolicyName(Policy p);

// A load the balancer never picks while another node can take the mail
// (a full disk, a node refusing writes).
inline constexpr uint64_t kInfiniteLoad = UINT64_MAX;

struct BalancerInput {
  std::vector<NodeId> mail_map;  // nodes already holding the user's mail
  std::vector<NodeId> live;      // every live node of the view, sorted
  int spread = 2;                // soft limit on nodes holding the user's mail
  int copies = 1;                // replicas to choose
  Policy policy = Policy::kDynamic;
  uint64_t user_hash = 0;  // Hash64 of the user (kStatic)
  // Pending disk-bound operations per node; kInfiniteLoad = never if avoidable.
  // Called at most once per node per choice.
  std::function<uint64_t(NodeId)> load;
};

// Returns up to `copies` distinct live nodes, least loaded first (ties by
// node id); fewer only when fewer nodes are live. Candidates by policy:
//  - dynamic: the live mail-map nodes that are not infinitely loaded, topped
//    up with random other live nodes until there are max(spread, copies);
//  - static: the max(spread, copies) live nodes ranked highest for the user
//    by rendezvous hashing (stable as nodes come and go);
//  - random: max(spread, copies) live nodes drawn uniformly.
// Infinitely loaded candidates are replaced by other live nodes when any
// exist (the soft spread limit gives way).
std::vector<NodeId> ChooseReplicas(const BalancerInput& in, std::mt19937_64& rng);

}  // namespace porcupine::cluster
