// The load table (DESIGN.md §6, PAPER.md §8.3): the last load heard from
// every node, from replies (piggybacked) and periodic gossip. Entries older
// than `stale_after_ms` fade to "unknown", which the balancer treats as the
// average of the known loads. Deterministic; time is passed in.
//
// Thread-compatible: the caller serializes access.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "cluster/user_map.h"

namespace porcupine::cluster {

class LoadTable {
 public:
  explicit LoadTable(int64_t stale_after_ms = 5000) : stale_after_ms_(stale_after_ms) {}

  // Records `load` heard from `node` at now_ms (a newer report replaces it).
  void Update(NodeId node, uint64_t load, int64_t now_ms);
  void Forget(NodeId node) { entries_.erase(node); }
  // The node's load if heard within stale_after_ms, else nullopt.
  std::optional<uint64_t> Get(NodeId node, int64_t now_ms) const;
  // For the balancer: the fresh value, or the average of the fresh values of
  // all nodes when this one is unknown (0 when nothing is fresh).
  uint64_t Estimate(NodeId node, int64_t now_ms) const;

 private:
  struct Entry {
    uint64_t load = 0;
    int64_t at_ms = 0;
  };
  int64_t stale_after_ms_;
  std::map<NodeId, Entry> entries_;
};

}  // namespace porcupine::cluster
