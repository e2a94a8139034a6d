#include "replication/rereplication.h"

#include <algorithm>

#include "core/hash.h"

namespace porcupine::replication {

using cluster::NodeId;

namespace {

std::vector<NodeId> Kept(const std::vector<NodeId>& replicas, const cluster::View& view) {
  std::vector<NodeId> out;
  for (NodeId r : replicas) {
    if (!view.removed.count(r)) out.push_back(r);
  }
  return out;
}

}  // namespace

bool ShortOfCopies(const std::vector<NodeId>& replicas, const ReplicaPlanInput& in) {
  const std::vector<NodeId> live = Kept(replicas, *in.view);
  if (live.size() < replicas.size()) return true;
  return live.size() < in.want && in.view->members.size() > live.size();
}

std::optional<std::vector<NodeId>> PlanReplicas(const std::vector<NodeId>& replicas,
                                                const std::string& id, const ReplicaPlanInput& in) {
  const cluster::View& view = *in.view;
  if (!ShortOfCopies(replicas, in)) return std::nullopt;
  std::vector<NodeId> next = Kept(replicas, view);
  NodeId lead = 0;
  for (NodeId r : next) {
    if (view.Contains(r) && (lead == 0 || r < lead)) lead = r;
  }
  if (lead != in.self) return std::nullopt;
  std::vector<NodeId> candidates;
  for (const cluster::Member& m : view.members) {
    if (std::find(next.begin(), next.end(), m.id) == next.end()) candidates.push_back(m.id);
  }
  const uint64_t h = Hash64(id);
  std::sort(candidates.begin(), candidates.end(), [&](NodeId a, NodeId b) {
    const uint64_t la = in.load(a), lb = in.load(b);
    if (la != lb) return la < lb;
    return (a ^ h) < (b ^ h);
  });
  for (NodeId n : candidates) {
    if (next.size() >= in.want) break;
    next.push_back(n);
  }
  if (next == replicas) return std::nullopt;  // nobody to add
  return next;
}

}  // namespace porcupine::replication
