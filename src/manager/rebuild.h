// Reconstruction, the announcing side (DESIGN.md §6, PAPER.md §6): after a
// node installs a view it scans the key ranges of the buckets whose user-map
// entry changed (all of them when it is new to the view) and sends what it
// holds — (user, this node) mail-map entries and profile replicas — to each
// bucket's new manager, batched per manager. Pure functions; the daemon and
// sim/ do the scanning and sending.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "manager/soft_state.h"
#include "store/store.h"

namespace porcupine::manager {

// The buckets `self` must announce after installing `next`, having last
// announced under `prev` (epoch 0: never): all when prev is empty, when self
// is listed as joined in next, or when next was not computed from prev (views
// were missed); else those whose entry (manager, epoch) differs.
std::vector<uint32_t> BucketsToAnnounce(const cluster::View& prev, const cluster::View& next,
                                        NodeId self);

// Collects one node's scan into complete announcements: one per bucket in
// `buckets` (empty ones too: "nothing here" is news for a manager), for the
// entries of `view`, stamped `stamp` (the node's clock before the scan).
class AnnouncementBuilder {
 public:
  AnnouncementBuilder(const cluster::View& view, const std::vector<uint32_t>& buckets,
                      uint64_t stamp);
  // One user found in `bucket`. Users of a bucket must come in one run (scan
  // order); a bucket not in the list is ignored.
  void Add(uint32_t bucket, const std::string& user, bool has_fragment,
           const store::Profile* profile);
  std::vector<BucketAnnouncement> Take() { return std::move(out_); }

 private:
  std::vector<BucketAnnouncement> out_;
  std::vector<int> index_;  // bucket → position in out_, -1 if not announced
};

// Scans this node's store for `buckets` (one snapshot) into announcements for
// `view`, stamped `stamp`. *users_out (optional) gets the users scanned.
Result<std::vector<BucketAnnouncement>> ScanAnnouncements(store::Store& store,
                                                          const cluster::View& view,
                                                          const std::vector<uint32_t>& buckets,
                                                          uint64_t stamp,
                                                          size_t* users_out = nullptr);

// Groups the scanned buckets by their manager in `next` into chunk sets of
// about `max_users_per_chunk` users each. A bucket never spans chunks (its
// announcement must be complete), so a larger bucket gets a chunk of its own.
// Every member of `next` gets a set, empty ones included: an empty set still
// tells the manager that this node has nothing more for the view. Empty
// bucket announcements travel too (see AnnouncementBuilder).
// REQUIRES: max_users_per_chunk >= 1.
std::map<NodeId, std::vector<RebuildChunk>> MakeChunks(const cluster::View& next,
                                                       std::vector<BucketAnnouncement> buckets,
                                                       size_t max_users_per_chunk);

}  // namespace porcupine::manager
