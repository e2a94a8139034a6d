#include "manager/rebuild.h"

namespace porcupine::manager {

std::vector<uint32_t> BucketsToAnnounce(const cluster::View& prev, const cluster::View& next,
                                        NodeId self) {
  const uint32_t buckets = next.user_map.buckets();
  // A node that missed views in between (next is not computed from prev) may
  // have been dropped and re-added meanwhile, with managers forgetting its
  // fragments: it re-announces everything, as a joined node does.
  const bool all = prev.epoch == 0 || next.Joined(self) || next.base_epoch != prev.epoch ||
                   prev.user_map.buckets() != buckets;
  std::vector<uint32_t> out;
  for (uint32_t b = 0; b < buckets; ++b) {
    if (all || next.user_map.EntryDiffers(prev.user_map, b)) out.push_back(b);
  }
  return out;
}

std::map<NodeId, std::vector<RebuildChunk>> MakeChunks(const cluster::View& next,
                                                       std::vector<BucketAnnouncement> buckets,
                                                       size_t max_users_per_chunk) {
  std::map<NodeId, std::vector<RebuildChunk>> out;
  for (const cluster::Member& m : next.members) out[m.id].emplace_back();
  for (BucketAnnouncement& ba : buckets) {
    if (ba.users.empty()) continue;
    const NodeId manager = next.user_map.ManagerOf(ba.bucket);
    auto set = out.find(manager);
    if (set == out.end()) continue;  // REQUIRES says every manager is a member
    std::vector<RebuildChunk>& chunks = set->second;
    size_t used = 0;
    for (const BucketAnnouncement& c : chunks.back().buckets) used += c.users.size();
    if (used > 0 && used + ba.users.size() > max_users_per_chunk) chunks.emplace_back();
    chunks.back().buckets.push_back(std::move(ba));
  }
  for (auto& [manager, chunks] : out) {
    for (size_t i = 0; i < chunks.size(); ++i) {
      chunks[i].view_epoch = next.epoch;
      chunks[i].seq = static_cast<uint32_t>(i);
      chunks[i].total = static_cast<uint32_t>(chunks.size());
    }
  }
  return out;
}

}  // namespace porcupine::manager
