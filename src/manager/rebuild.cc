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

AnnouncementBuilder::AnnouncementBuilder(const cluster::View& view,
                                         const std::vector<uint32_t>& buckets, uint64_t stamp)
    : index_(view.user_map.buckets(), -1) {
  for (uint32_t b : buckets) {
    if (b >= index_.size() || index_[b] >= 0) continue;
    index_[b] = static_cast<int>(out_.size());
    out_.push_back({b, view.user_map.EpochOf(b), stamp, {}});
  }
}

void AnnouncementBuilder::Add(uint32_t bucket, const std::string& user, bool has_fragment,
                              const store::Profile* profile) {
  if (bucket >= index_.size() || index_[bucket] < 0) return;
  std::vector<Announcement>& users = out_[static_cast<size_t>(index_[bucket])].users;
  if (users.empty() || users.back().user != user) users.push_back({user, false, std::nullopt});
  Announcement& a = users.back();
  a.has_fragment = a.has_fragment || has_fragment;
  if (profile) a.profile = *profile;
}

Result<std::vector<BucketAnnouncement>> ScanAnnouncements(store::Store& store,
                                                          const cluster::View& view,
                                                          const std::vector<uint32_t>& buckets,
                                                          uint64_t stamp, size_t* users_out) {
  AnnouncementBuilder builder(view, buckets, stamp);
  std::vector<store::Bucket> scan(buckets.begin(), buckets.end());
  size_t users = 0;
  PORCUPINE_RETURN_IF_ERROR(store.ScanForRebuild(
      scan, [&](store::Bucket b, const std::string& user, bool live, const store::Profile* p) {
        builder.Add(b, user, live, p);
        ++users;
      }));
  if (users_out) *users_out = users;
  return builder.Take();
}

std::map<NodeId, std::vector<RebuildChunk>> MakeChunks(const cluster::View& next,
                                                       std::vector<BucketAnnouncement> buckets,
                                                       size_t max_users_per_chunk) {
  std::map<NodeId, std::vector<RebuildChunk>> out;
  for (const cluster::Member& m : next.members) out[m.id].emplace_back();
  for (BucketAnnouncement& ba : buckets) {
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
