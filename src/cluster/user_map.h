// The user map (DESIGN.md §2, §6): bucket → manager node, with the epoch at
// which each entry last changed. Identical on every node of a view.
//
// A new view's map comes from Recompute(): deterministic, balanced (every
// live node manages ⌊B/N⌋ or ⌈B/N⌉ buckets) and with the fewest moves.
#pragma once

#include <cstdint>
#include <vector>

namespace porcupine::cluster {

using NodeId = uint32_t;

class UserMap {
 public:
  // Every bucket managed by `owner`, stamped with `epoch`.
  UserMap(uint32_t buckets, NodeId owner, uint64_t epoch = 0)
      : managers_(buckets, owner), epochs_(buckets, epoch) {}

  // The map for a new view with members `live` (sorted, unique, non-empty),
  // starting from `prev`. Only buckets whose manager left, or that an
  // over-full node must give up, move; moved entries are stamped `epoch`.
  // Which nodes get the ⌈B/N⌉ share: those already holding the most buckets
  // (ties: lower id), so a balanced map stays as it is.
  static UserMap Recompute(const UserMap& prev, const std::vector<NodeId>& live, uint64_t epoch);

  uint32_t buckets() const { return static_cast<uint32_t>(managers_.size()); }
  // REQUIRES: bucket < buckets().
  NodeId ManagerOf(uint32_t bucket) const { return managers_[bucket]; }
  uint64_t EpochOf(uint32_t bucket) const { return epochs_[bucket]; }
  // Buckets managed by `node`.
  uint32_t CountOf(NodeId node) const;
  bool operator==(const UserMap&) const = default;

 private:
  std::vector<NodeId> managers_;
  std::vector<uint64_t> epochs_;
};

}  // namespace porcupine::cluster
