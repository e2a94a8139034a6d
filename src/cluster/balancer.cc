#include "cluster/balancer.h"

#include <algorithm>
#include <map>

#include "core/hash.h"

namespace porcupine::cluster {

std::optional<Policy> ParsePolicy(std::string_view name) {
  if (name == "dynamic") return Policy::kDynamic;
  if (name == "static") return Policy::kStatic;
  if (name == "random") return Policy::kRandom;
  return std::nullopt;
}

std::string_view PolicyName(Policy p) {
  switch (p) {
    case Policy::kDynamic:
      return "dynamic";
    case Policy::kStatic:
      return "static";
    case Policy::kRandom:
      return "random";
  }
  return "dynamic";
}

namespace {

bool Contains(const std::vector<NodeId>& v, NodeId n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

// Rendezvous rank of a node for a user: higher is preferred.
uint64_t Rank(uint64_t user_hash, NodeId node) {
  char key[12];
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>(user_hash >> (8 * i));
  for (int i = 0; i < 4; ++i) key[8 + i] = static_cast<char>(node >> (8 * i));
  return Hash64(std::string_view(key, sizeof key));
}

std::vector<NodeId> Candidates(const BalancerInput& in, size_t want, std::mt19937_64& rng,
                               const std::function<uint64_t(NodeId)>& load) {
  std::vector<NodeId> out;
  switch (in.policy) {
    case Policy::kDynamic: {
      for (NodeId n : in.mail_map) {
        if (std::binary_search(in.live.begin(), in.live.end(), n) && load(n) != kInfiniteLoad &&
            !Contains(out, n)) {
          out.push_back(n);
        }
      }
      std::vector<NodeId> others;
      for (NodeId n : in.live)
        if (!Contains(out, n)) others.push_back(n);
      std::shuffle(others.begin(), others.end(), rng);
      for (NodeId n : others) {
        if (out.size() >= want) break;
        out.push_back(n);
      }
      break;
    }
    case Policy::kStatic: {
      out = in.live;
      std::sort(out.begin(), out.end(), [&](NodeId a, NodeId b) {
        uint64_t ra = Rank(in.user_hash, a), rb = Rank(in.user_hash, b);
        return ra != rb ? ra > rb : a < b;
      });
      out.resize(std::min(out.size(), want));
      break;
    }
    case Policy::kRandom: {
      out = in.live;
      std::shuffle(out.begin(), out.end(), rng);
      out.resize(std::min(out.size(), want));
      break;
    }
  }
  return out;
}

}  // namespace

std::vector<NodeId> ChooseReplicas(const BalancerInput& in, std::mt19937_64& rng) {
  // Loads change while we choose (they are read live): read each node's once,
  // so that the ordering below is consistent.
  std::map<NodeId, uint64_t> loads;
  auto load = [&](NodeId n) -> uint64_t {
    auto it = loads.find(n);
    if (it == loads.end()) it = loads.emplace(n, in.load ? in.load(n) : 0).first;
    return it->second;
  };
  const size_t want = static_cast<size_t>(std::max({in.spread, in.copies, 1}));
  std::vector<NodeId> candidates = Candidates(in, want, rng, load);
  // Replace infinitely loaded candidates while other live nodes can take mail.
  for (NodeId& c : candidates) {
    if (load(c) != kInfiniteLoad) continue;
    for (NodeId n : in.live) {
      if (!Contains(candidates, n) && load(n) != kInfiniteLoad) {
        c = n;
        break;
      }
    }
  }
  std::sort(candidates.begin(), candidates.end(), [&](NodeId a, NodeId b) {
    uint64_t la = load(a), lb = load(b);
    return la != lb ? la < lb : a < b;
  });
  candidates.resize(std::min(candidates.size(), static_cast<size_t>(std::max(in.copies, 0))));
  return candidates;
}

}  // namespace porcupine::cluster
