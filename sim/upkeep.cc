// Upkeep in the simulation: anti-entropy, re-replication and tombstone GC
// rounds, decided by replication/maintenance.h and replication/anti_entropy.h
// as in the daemon (node/anti_entropy_runtime.cc), over the simulated disk.
#include <fmt/format.h>

#include "core/hash.h"
#include "core/hlc.h"
#include "sim/world.h"

namespace porcupine::sim {

using replication::Item;
using replication::ObjectRef;

namespace {

bool Lists(const Version& v, NodeId node) {
  return std::find(v.replicas.begin(), v.replicas.end(), node) != v.replicas.end();
}

Item MessageItem(const std::string& user, uint64_t msg, const Version& v) {
  return {MessageRef(user, msg), store::MessageVersion(v.hlc, v.tombstone)};
}

Item ProfileItem(const store::Profile& p) {
  return {{ObjectRef::Kind::kProfile, p.user(), 0, ""}, p.hlc()};
}

}  // namespace

replication::UpkeepOptions SimNode::UpkeepOptions() const {
  const Options& o = world_.options();
  replication::UpkeepOptions u;
  u.interval_ms = o.upkeep_interval_ms;
  u.after_join_ms = o.upkeep_after_join_ms;
  u.grace_ms = o.tombstone_grace_ms;
  return u;
}

void SimNode::RunUpkeep() {
  const cluster::View& view = soft_->membership.view();
  if (view.epoch == 0) return;
  ++world_.result().upkeep_rounds;
  Rereplicate();
  CollectTombstones();
  // One side of each pair starts the exchange; both sides repair.
  for (const cluster::Member& m : view.members) {
    if (m.id > id_) Send(m.id, MDigests{Digests(m.id)});
  }
}

void SimNode::Rereplicate() {
  const cluster::View& view = soft_->membership.view();
  replication::ReplicaPlanInput in;
  in.view = &view;
  in.self = id_;
  in.want = static_cast<size_t>(std::max(world_.options().replication, 1));
  in.load = [this](NodeId n) { return n == id_ ? Load() : soft_->loads.Estimate(n, now()); };
  for (auto& [user, msgs] : disk_.messages) {
    for (auto& [msg, v] : msgs) {
      const uint64_t now_hlc = std::max(soft_->last_stamp + 1, Hlc::Make(now(), 0));
      std::optional<replication::Replan> plan = replication::PlanRereplication(
          v.replicas, std::to_string(msg), {v.hlc, v.tombstone}, now_hlc, in);
      if (!plan) continue;
      soft_->last_stamp = std::max(soft_->last_stamp, plan->hlc);
      v.replicas = std::move(plan->replicas);
      v.hlc = plan->hlc;
      Log(user, msg, v);
      ++world_.result().rereplicated;
      Watch(user, fmt::format("re-replicate msg {} to {} replicas", msg, v.replicas.size()));
    }
  }
}

void SimNode::CollectTombstones() {
  const replication::UpkeepOptions options = UpkeepOptions();
  for (auto& [user, msgs] : disk_.messages) {
    for (auto it = msgs.begin(); it != msgs.end();) {
      const bool pending = soft_->replicator.Find(MessageRef(user, it->first)) != nullptr;
      if (replication::Collectable({it->second.hlc, it->second.tombstone}, pending, now(),
                                   options)) {
        Watch(user, fmt::format("purge tombstone of msg {}", it->first));
        ++world_.result().purged;
        it = msgs.erase(it);
      } else {
        ++it;
      }
    }
  }
}

std::vector<uint64_t> SimNode::Digests(NodeId peer) {
  const uint32_t buckets = world_.options().buckets;
  const replication::UpkeepOptions options = UpkeepOptions();
  std::vector<uint64_t> d(2 * buckets, 0);
  for (const auto& [user, msgs] : disk_.messages) {
    const uint32_t b = BucketOf(user, buckets);
    for (const auto& [msg, v] : msgs) {
      if (!Lists(v, peer) || !replication::InDigest({v.hlc, v.tombstone}, now(), options)) {
        continue;
      }
      d[replication::MessageSlot(b)] ^= replication::ItemHash(MessageItem(user, msg, v));
    }
  }
  if (disk_.profiles_changed) {
    disk_.profile_digests.assign(buckets, 0);
    for (const auto& [user, p] : disk_.profiles) {
      disk_.profile_digests[BucketOf(user, buckets)] ^= replication::ItemHash(ProfileItem(p));
    }
    disk_.profiles_changed = false;
  }
  for (uint32_t b = 0; b < buckets; ++b) {
    d[replication::ProfileSlot(buckets, b)] = disk_.profile_digests[b];
  }
  return d;
}

std::vector<Item> SimNode::SlotItems(NodeId peer, uint32_t slot) const {
  const uint32_t buckets = world_.options().buckets;
  std::vector<Item> out;
  if (slot < buckets) {
    for (const auto& [user, msgs] : disk_.messages) {
      if (BucketOf(user, buckets) != slot) continue;
      for (const auto& [msg, v] : msgs) {
        if (Lists(v, peer)) out.push_back(MessageItem(user, msg, v));
      }
    }
  } else {
    for (const auto& [user, p] : disk_.profiles) {
      if (BucketOf(user, buckets) == slot - buckets) out.push_back(ProfileItem(p));
    }
  }
  return out;
}

void SimNode::RepairPush(NodeId peer, const std::vector<Item>& items) {
  for (const Item& item : items) {
    ++world_.result().repair_pushes;
    if (item.object.kind == ObjectRef::Kind::kProfile) {
      auto p = disk_.profiles.find(item.object.user);
      if (p != disk_.profiles.end()) {
        SendReliable({Reliable::kProfile, peer, 0, MProfilePut{0, p->second}, nullptr});
      }
      continue;
    }
    // A transient entry: the replicator pushes the current version.
    replication::Entry e;
    e.object = item.object;
    e.hlc = item.hlc;
    e.remaining = {peer};
    e.created_ms = now();
    soft_->replicator.Add(std::move(e), now());
  }
}

void SimNode::OnDigests(NodeId from, const MDigests& m) {
  if (m.digests.size() != 2 * world_.options().buckets) return;
  Send(from, MDiffering{replication::Differing(Digests(from), m.digests)});
}

void SimNode::OnDiffering(NodeId from, const MDiffering& m) {
  for (uint32_t slot : m.slots) {
    if (slot >= 2 * world_.options().buckets) break;
    ++world_.result().slots_repaired;
    Send(from, MSlotItems{slot, SlotItems(from, slot)});
  }
}

void SimNode::OnSlotItems(NodeId from, const MSlotItems& m) {
  if (m.slot >= 2 * world_.options().buckets) return;
  replication::Comparison c = replication::Compare(SlotItems(from, m.slot), m.items);
  RepairPush(from, c.push);
  Send(from, MSlotPull{std::move(c.pull)});
}

}  // namespace porcupine::sim
