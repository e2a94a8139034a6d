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

namespace porcupine::manager {

// The buckets `self` must announce after installing `next`, having last
// announced under `prev` (epoch 0: never): all when prev is empty, when self
// is listed as joined in next, or when next was not computed from prev (views
// were missed); else those whose entry (manager, epoch) differs.
std::vector<uint32_t> BucketsToAnnounce(const cluster::View& prev, const cluster::View& next,
                                        NodeId self);

// Groups the scanned buckets by their manager in `next` into chunk sets of
// about `max_users_per_chunk` users each. A bucket never spans chunks (its
// announcement must be complete), so a larger bucket gets a chunk of its own.
// Every member of `next` gets a set, empty ones included: an empty set still
// tells the manager that this node has nothing more for the view.
// REQUIRES: max_users_per_chunk >= 1.
std::map<NodeId, std::vector<RebuildChunk>> MakeChunks(const cluster::View& next,
                                                       std::vector<BucketAnnouncement> buckets,
                                                       size_t max_users_per_chunk);

}  // namespace porcupine::manager
