#include "cluster/load_table.h"

#include "cluster/balancer.h"

namespace porcupine::cluster {

void LoadTable::Update(NodeId node, uint64_t load, int64_t now_ms) {
  Entry& e = entries_[node];
  if (now_ms >= e.at_ms) e = {load, now_ms};
}

std::optional<uint64_t> LoadTable::Get(NodeId node, int64_t now_ms) const {
  auto it = entries_.find(node);
  if (it == entries_.end() || now_ms - it->second.at_ms > stale_after_ms_) return std::nullopt;
  return it->second.load;
}

uint64_t LoadTable::Estimate(NodeId node, int64_t now_ms) const {
  if (std::optional<uint64_t> v = Get(node, now_ms)) return *v;
  uint64_t sum = 0, n = 0;
  for (const auto& [id, e] : entries_) {
    if (now_ms - e.at_ms > stale_after_ms_ || e.load == kInfiniteLoad) continue;
    sum += e.load;
    ++n;
  }
  return n ? sum / n : 0;
}

}  // namespace porcupine::cluster
