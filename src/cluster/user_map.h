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
  // The fewest manager changes any balanced map for `live` needs, starting
  // from prev: orphaned buckets plus each node's excess over the target
  // Recompute gives it. Recompute moves exactly this many.
  static uint32_t RequiredMoves(const UserMap& prev, const std::vector<NodeId>& live);

  uint32_t buckets() const { return static_cast<uint32_t>(managers_.size()); }
  // REQUIRES: bucket < buckets().
  NodeId ManagerOf(uint32_t bucket) const { return managers_[bucket]; }
  uint64_t EpochOf(uint32_t bucket) const { return epochs_[bucket]; }
  // Buckets managed by `node`.
  uint32_t CountOf(NodeId node) const;
  // Sets one entry. REQUIRES: bucket < buckets().
  void Set(uint32_t bucket, NodeId manager, uint64_t epoch) {
    managers_[bucket] = manager;
    epochs_[bucket] = epoch;
  }
  // True when the bucket's entry (manager and epoch) differs between the maps.
  // REQUIRES: same bucket count.
  bool EntryDiffers(const UserMap& other, uint32_t bucket) const {
    return managers_[bucket] != other.managers_[bucket] || epochs_[bucket] != other.epochs_[bucket];
  }
  bool operator==(const UserMap&) const = default;

 private:
  std::vector<NodeId> managers_;
  std::vector<uint64_t> epochs_;
};

}  // namespace porcupine::cluster
