#include "manager/soft_state.h"

#include <algorithm>
#include <string_view>
#include <unordered_set>

#include "core/hash.h"
#include "store/profile_merge.h"

namespace porcupine::manager {

SoftState::SoftState(NodeId self, uint32_t buckets, const SoftStateOptions& options)
    : self_(self), buckets_(buckets), options_(options), state_(buckets) {
  view_.user_map = cluster::UserMap(buckets, 0);
}

uint32_t SoftState::BucketOfUser(const std::string& user) const { return BucketOf(user, buckets_); }

bool SoftState::Manages(uint32_t bucket) const {
  return view_.epoch != 0 && bucket < buckets_ && view_.user_map.ManagerOf(bucket) == self_;
}

bool SoftState::Ready(uint32_t bucket) const {
  if (!Manages(bucket)) return false;
  const uint64_t need = view_.user_map.EpochOf(bucket);
  for (const cluster::Member& m : view_.members) {
    auto it = progress_.find(m.id);
    if (it == progress_.end() || it->second.done < need || it->second.done < it->second.min_epoch)
      return false;
  }
  return true;
}

void SoftState::InstallView(const cluster::View& view) {
  const cluster::View old = std::move(view_);
  view_ = view;
  const bool fresh = old.epoch == 0 || view_.Joined(self_);
  std::set<NodeId> members;
  for (const cluster::Member& m : view_.members) members.insert(m.id);
  for (uint32_t b = 0; b < buckets_; ++b) {
    if (view_.user_map.ManagerOf(b) != self_) {
      state_[b].clear();
      continue;
    }
    if (fresh || old.user_map.buckets() != buckets_ ||
        view_.user_map.EntryDiffers(old.user_map, b)) {
      state_[b].clear();
      continue;
    }
    for (auto& [user, e] : state_[b].users) {
      for (auto it = e.nodes.begin(); it != e.nodes.end();) {
        it = members.count(it->first) ? std::next(it) : e.nodes.erase(it);
      }
    }
  }
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = members.count(it->first) ? std::next(it) : progress_.erase(it);
  }
  // A view not computed from our previous one: we missed views, in which
  // members may have been dropped and re-added (restarted) without our
  // noticing. Count only announcement sets from now on, from everyone.
  std::vector<NodeId> reset = view_.joined;
  if (old.epoch != 0 && view_.base_epoch != old.epoch) reset = view_.ids();
  for (NodeId j : reset) {
    Progress& p = progress_[j];
    p.min_epoch = view_.epoch;
    for (auto it = p.partial.begin(); it != p.partial.end();) {
      it = it->first < view_.epoch ? p.partial.erase(it) : std::next(it);
    }
  }
  std::vector<std::pair<NodeId, RebuildChunk>> later;
  std::vector<std::pair<NodeId, RebuildChunk>> now;
  for (auto& entry : buffered_) {
    (entry.second.view_epoch <= view_.epoch ? now : later).push_back(std::move(entry));
  }
  buffered_ = std::move(later);
  for (auto& [from, chunk] : now) {
    if (members.count(from)) Apply(from, chunk);
  }
}

void SoftState::ApplyRebuild(NodeId from, const RebuildChunk& chunk) {
  if (chunk.view_epoch > view_.epoch) {
    if (buffered_.size() >= options_.max_buffered_chunks) {
      buffered_.erase(buffered_.begin());
      ++chunks_dropped_;
    }
    buffered_.emplace_back(from, chunk);
    return;
  }
  if (!view_.Contains(from)) return;
  Apply(from, chunk);
}

void SoftState::Apply(NodeId from, const RebuildChunk& chunk) {
  for (const BucketAnnouncement& ba : chunk.buckets) {
    if (Owns(ba.bucket, ba.entry_epoch)) Merge(state_[ba.bucket], from, ba);
  }
  Progress& p = progress_[from];
  if (chunk.view_epoch < p.min_epoch || chunk.view_epoch <= p.done) return;
  std::set<uint32_t>& seen = p.partial[chunk.view_epoch];
  if (chunk.seq < chunk.total) seen.insert(chunk.seq);
  if (seen.size() >= chunk.total) {
    p.done = chunk.view_epoch;
    for (auto it = p.partial.begin(); it != p.partial.end();) {
      it = it->first <= p.done ? p.partial.erase(it) : std::next(it);
    }
  }
}

void SoftState::Keep(UserEntry& e, const store::Profile& p) {
  // Copies from two sides of a partition both count (store/profile_merge.h).
  e.profile = e.profile ? store::MergeProfiles(*e.profile, p) : p;
}

void SoftState::SetNode(UserEntry& e, NodeId node, uint64_t stamp, bool present) {
  auto it = e.nodes.find(node);
  if (it != e.nodes.end() && it->second.stamp > stamp) return;
  if (it != e.nodes.end() && it->second.stamp == stamp && !present) return;  // add wins a tie
  e.nodes[node] = {stamp, present};
}

void SoftState::Update(Bucket& b, const std::string& user, NodeId node, uint64_t stamp,
                       bool present) {
  auto f = b.floor.find(node);
  if (f != b.floor.end() && stamp <= f->second) return;
  SetNode(b.users[user], node, stamp, present);
}

void SoftState::Merge(Bucket& bucket, NodeId from, const BucketAnnouncement& ba) {
  std::unordered_set<std::string_view> holding;
  uint64_t& floor = bucket.floor[from];
  floor = std::max(floor, ba.stamp);
  for (const Announcement& a : ba.users) {
    UserEntry& e = bucket.users[a.user];
    if (a.profile) Keep(e, *a.profile);
    if (a.has_fragment) {
      SetNode(e, from, ba.stamp, true);
      holding.insert(a.user);
    }
  }
  // The announcement is complete: the sender holds no mail of anyone else in
  // the bucket (as of its stamp; newer adds keep their entries).
  for (auto& [user, e] : bucket.users) {
    auto it = e.nodes.find(from);
    if (it != e.nodes.end() && it->second.present && !holding.count(user)) {
      SetNode(e, from, ba.stamp, false);
    }
  }
}

uint64_t SoftState::EntryEpochOf(const std::string& user) const {
  return view_.user_map.EpochOf(BucketOfUser(user));
}

SoftState::Lookup SoftState::Find(const std::string& user) const {
  return Find(user, EntryEpochOf(user));
}

SoftState::Lookup SoftState::Find(const std::string& user, uint64_t entry_epoch) const {
  Lookup out;
  const uint32_t b = BucketOfUser(user);
  if (!Owns(b, entry_epoch)) return out;
  auto it = state_[b].users.find(user);
  if (it != state_[b].users.end() && it->second.profile && !it->second.profile->tombstone()) {
    out.state = State::kFound;
    out.profile = &*it->second.profile;
    for (const auto& [node, entry] : it->second.nodes) {
      if (entry.present && view_.Contains(node)) out.mail_map.push_back(node);
    }
    return out;
  }
  out.state = Ready(b) ? State::kNotFound : State::kRebuilding;
  return out;
}

bool SoftState::MailMapAdd(const std::string& user, NodeId node, uint64_t stamp,
                           uint64_t entry_epoch) {
  const uint32_t b = BucketOfUser(user);
  if (!Owns(b, entry_epoch)) return false;
  Update(state_[b], user, node, stamp, true);
  return true;
}

bool SoftState::MailMapRemove(const std::string& user, NodeId node, uint64_t stamp,
                              uint64_t entry_epoch) {
  const uint32_t b = BucketOfUser(user);
  if (!Owns(b, entry_epoch)) return false;
  // Recorded even for a user not announced yet: an announcement with an
  // older stamp may still arrive and must not bring the node back.
  Update(state_[b], user, node, stamp, false);
  return true;
}

bool SoftState::PutProfile(const store::Profile& p, uint64_t entry_epoch) {
  const uint32_t b = BucketOfUser(p.user());
  if (!Owns(b, entry_epoch)) return false;
  UserEntry& e = state_[b].users[p.user()];
  Keep(e, p);
  return true;
}

std::vector<std::string> SoftState::Users() const {
  std::vector<std::string> out;
  for (const Bucket& bucket : state_) {
    for (const auto& [user, e] : bucket.users) {
      // Reserved system entries (no '@': acme/record.h) are not users.
      if (user.find('@') == std::string::npos) continue;
      if (e.profile && !e.profile->tombstone()) out.push_back(user);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t SoftState::user_count() const {
  size_t n = 0;
  for (const Bucket& bucket : state_) {
    for (const auto& [user, e] : bucket.users) {
      n += e.profile && !e.profile->tombstone() && user.find('@') != std::string::npos;
    }
  }
  return n;
}

uint32_t SoftState::buckets_managed() const {
  uint32_t n = 0;
  for (uint32_t b = 0; b < buckets_; ++b) n += Manages(b);
  return n;
}

uint32_t SoftState::buckets_rebuilding() const {
  uint32_t n = 0;
  for (uint32_t b = 0; b < buckets_; ++b) n += Manages(b) && !Ready(b);
  return n;
}

}  // namespace porcupine::manager
