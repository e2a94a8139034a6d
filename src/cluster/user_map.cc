#include "cluster/user_map.h"

#include <algorithm>
#include <cassert>
#include <map>

namespace porcupine::cluster {

uint32_t UserMap::CountOf(NodeId node) const {
  return static_cast<uint32_t>(std::count(managers_.begin(), managers_.end(), node));
}

namespace {

// Buckets held per live node, and each node's target share: the ⌈B/N⌉ shares
// go to the nodes holding most already (ties: lower id), so a balanced map
// stays as it is.
struct Shares {
  std::map<NodeId, uint32_t> count;
  std::map<NodeId, uint32_t> target;
};

Shares ComputeShares(const std::vector<NodeId>& managers, const std::vector<NodeId>& live) {
  const uint32_t b = static_cast<uint32_t>(managers.size());
  const uint32_t n = static_cast<uint32_t>(live.size());
  Shares s;
  for (NodeId id : live) s.count[id] = 0;
  for (NodeId m : managers) {
    auto it = s.count.find(m);
    if (it != s.count.end()) ++it->second;
  }
  std::vector<NodeId> by_holding = live;
  std::stable_sort(by_holding.begin(), by_holding.end(),
                   [&](NodeId x, NodeId y) { return s.count[x] > s.count[y]; });
  for (uint32_t i = 0; i < n; ++i) s.target[by_holding[i]] = b / n + (i < b % n ? 1 : 0);
  return s;
}

}  // namespace

uint32_t UserMap::RequiredMoves(const UserMap& prev, const std::vector<NodeId>& live) {
  Shares s = ComputeShares(prev.managers_, live);
  uint32_t moves = 0;
  for (NodeId m : prev.managers_) moves += !s.count.count(m);
  for (const auto& [id, c] : s.count) moves += c > s.target[id] ? c - s.target[id] : 0;
  return moves;
}

UserMap UserMap::Recompute(const UserMap& prev, const std::vector<NodeId>& live, uint64_t epoch) {
  assert(!live.empty() && std::is_sorted(live.begin(), live.end()));
  const uint32_t b = prev.buckets();
  Shares s = ComputeShares(prev.managers_, live);
  std::map<NodeId, uint32_t>& count = s.count;
  std::map<NodeId, uint32_t>& target = s.target;

  UserMap next = prev;
  std::vector<uint32_t> orphans;
  for (uint32_t bucket = 0; bucket < b; ++bucket) {
    if (!count.count(prev.managers_[bucket])) orphans.push_back(bucket);
  }
  // Over-full nodes give up their highest-numbered buckets.
  for (uint32_t bucket = b; bucket-- > 0;) {
    NodeId m = prev.managers_[bucket];
    auto it = count.find(m);
    if (it != count.end() && it->second > target[m]) {
      --it->second;
      orphans.push_back(bucket);
    }
  }
  std::sort(orphans.begin(), orphans.end());
  for (uint32_t bucket : orphans) {
    // The node furthest below its target; ties go to the lowest id.
    NodeId best = live.front();
    int64_t best_gap = INT64_MIN;
    for (NodeId id : live) {
      int64_t gap = static_cast<int64_t>(target[id]) - static_cast<int64_t>(count[id]);
      if (gap > best_gap) {
        best = id;
        best_gap = gap;
      }
    }
    ++count[best];
    if (next.managers_[bucket] != best) {
      next.managers_[bucket] = best;
      next.epochs_[bucket] = epoch;
    }
  }
  return next;
}

}  // namespace porcupine::cluster
