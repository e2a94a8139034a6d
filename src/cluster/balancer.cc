#include "cluster/balancer.h"

#include <algorithm>

namespace porcupine::cluster {

std::vector<NodeId> ChooseReplicas(const BalancerInput& in, std::mt19937_64& rng) {
  std::vector<NodeId> candidates;
  for (NodeId n : in.mail_map)
    if (std::binary_search(in.live.begin(), in.live.end(), n)) candidates.push_back(n);
  const size_t want = static_cast<size_t>(std::max(in.spread, in.copies));
  std::vector<NodeId> others;
  for (NodeId n : in.live)
    if (std::find(candidates.begin(), candidates.end(), n) == candidates.end()) others.push_back(n);
  std::shuffle(others.begin(), others.end(), rng);
  for (NodeId n : others) {
    if (candidates.size() >= want) break;
    candidates.push_back(n);
  }
  auto load = [&](NodeId n) { return in.load ? in.load(n) : 0; };
  std::sort(candidates.begin(), candidates.end(), [&](NodeId a, NodeId b) {
    uint64_t la = load(a), lb = load(b);
    return la != lb ? la < lb : a < b;
  });
  candidates.resize(std::min(candidates.size(), static_cast<size_t>(in.copies)));
  return candidates;
}

}  // namespace porcupine::cluster
