// The user map (DESIGN.md §2, §6): bucket → manager node, with the epoch at
// which each entry last changed. Identical on every node of a view.
//
// The foundation runs one node that manages every bucket; the membership
// protocol (cluster issue) computes balanced maps with fewest moves.
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

  uint32_t buckets() const { return static_cast<uint32_t>(managers_.size()); }
  // REQUIRES: bucket < buckets().
  NodeId ManagerOf(uint32_t bucket) const { return managers_[bucket]; }
  uint64_t EpochOf(uint32_t bucket) const { return epochs_[bucket]; }

 private:
  std::vector<NodeId> managers_;
  std::vector<uint64_t> epochs_;
};

}  // namespace porcupine::cluster
