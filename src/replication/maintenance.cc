#include "replication/maintenance.h"

#include <algorithm>

#include "core/hlc.h"

namespace porcupine::replication {

void UpkeepSchedule::OnView(const cluster::View& view, int64_t now_ms) {
  const size_t removed = view.removed.size();
  const bool more_removed = removed > removed_seen_;
  removed_seen_ = std::max(removed_seen_, removed);
  if (!view.joined.empty() || more_removed) {
    const int64_t soon = now_ms + options_.after_join_ms;
    soon_ms_ = soon_ms_ == 0 ? soon : std::min(soon_ms_, soon);
  }
}

bool UpkeepSchedule::TakeRound(int64_t now_ms) {
  if (now_ms < NextMs()) return false;
  soon_ms_ = 0;
  next_round_ms_ = now_ms + options_.interval_ms;
  return true;
}

int64_t UpkeepSchedule::NextMs() const {
  return soon_ms_ == 0 ? next_round_ms_ : std::min(soon_ms_, next_round_ms_);
}

bool InDigest(const HeldVersion& v, int64_t now_ms, const UpkeepOptions& options) {
  return !v.tombstone || Hlc::PhysicalMs(v.hlc) >= now_ms - options.grace_ms / 2;
}

bool Collectable(const HeldVersion& v, bool pending, int64_t now_ms, const UpkeepOptions& options) {
  return v.tombstone && !pending && Hlc::PhysicalMs(v.hlc) < now_ms - options.grace_ms;
}

std::optional<Replan> PlanRereplication(const std::vector<cluster::NodeId>& replicas,
                                        const std::string& id, const HeldVersion& held,
                                        uint64_t now_hlc, const ReplicaPlanInput& in) {
  if (held.tombstone) return std::nullopt;
  std::optional<std::vector<cluster::NodeId>> next = PlanReplicas(replicas, id, in);
  if (!next) return std::nullopt;
  return Replan{std::move(*next), std::max(held.hlc + 1, now_hlc)};
}

std::optional<std::vector<cluster::NodeId>> WidenedReplicas(
    const std::vector<cluster::NodeId>& held, const std::vector<cluster::NodeId>& incoming,
    const std::set<cluster::NodeId>& removed) {
  std::vector<cluster::NodeId> out = incoming;
  for (cluster::NodeId n : held) {
    if (removed.count(n) || std::find(out.begin(), out.end(), n) != out.end()) continue;
    out.push_back(n);
  }
  if (out.size() == incoming.size()) return std::nullopt;
  return out;
}

}  // namespace porcupine::replication
