// Re-replication (docs/replication.md): the replica list a message should
// have once a node is removed for good, or once more members are there than
// when the message was accepted where fewer nodes were reachable (a
// partition, a node alone for a moment). A pure decision: the daemon
// (node/anti_entropy_runtime.h) takes it against the record as it is stored
// when its write happens, never against an older read.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cluster/membership.h"

namespace porcupine::replication {

struct ReplicaPlanInput {
  const cluster::View* view = nullptr;  // REQUIRES: not null
  cluster::NodeId self = 0;
  size_t want = 2;  // copies a message should have (replication factor)
  // The balancer's load of a member (lower is preferred).
  std::function<uint64_t(cluster::NodeId)> load;
};

// True when a message held with `replicas` lacks copies: a replica was
// removed for good, or fewer than `want` replicas while more members exist.
bool ShortOfCopies(const std::vector<cluster::NodeId>& replicas, const ReplicaPlanInput& in);

// The new replica list of a message held with `replicas` (id: its message
// id, which spreads the choice of new replicas), or nullopt when nothing is
// to change here: it has its copies, nobody can be added, or another replica
// repairs it (the lowest-id replica still in the view does; the others wait
// for its new version). Removed replicas leave the list; the least loaded
// members without a copy join it, ties broken by a per-message hash.
std::optional<std::vector<cluster::NodeId>> PlanReplicas(
    const std::vector<cluster::NodeId>& replicas, const std::string& id,
    const ReplicaPlanInput& in);

}  // namespace porcupine::replication
