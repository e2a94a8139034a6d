#include "cluster/membership.h"

#include <algorithm>
#include <cassert>

namespace porcupine::cluster {

const Member* View::Find(NodeId id) const {
  auto it = std::lower_bound(members.begin(), members.end(), id,
                             [](const Member& m, NodeId x) { return m.id < x; });
  return it != members.end() && it->id == id ? &*it : nullptr;
}

bool View::HasIncarnation(const Member& m) const {
  const Member* found = Find(m.id);
  return found && found->incarnation == m.incarnation;
}

bool View::Joined(NodeId id) const { return std::binary_search(joined.begin(), joined.end(), id); }

std::vector<NodeId> View::ids() const {
  std::vector<NodeId> out;
  out.reserve(members.size());
  for (const Member& m : members) out.push_back(m.id);
  return out;
}

UserMap ComputeUserMap(uint32_t buckets, const View& base, const std::vector<Member>& members,
                       Epoch epoch, std::vector<NodeId>* joined) {
  std::vector<NodeId> ids;
  for (const Member& m : members) ids.push_back(m.id);
  // Node id 0 is never a member, so an all-zero map makes every bucket an
  // orphan: the first view of a cluster is a plain balanced assignment.
  const bool have_base = base.epoch != 0 && base.user_map.buckets() == buckets;
  UserMap next = UserMap::Recompute(have_base ? base.user_map : UserMap(buckets, 0), ids, epoch);
  joined->clear();
  for (const Member& m : members) {
    if (!have_base || !base.HasIncarnation(m)) joined->push_back(m.id);
  }
  // A joined node's soft state is stale or gone: the buckets it manages are
  // rebuilt from scratch there, so every node must see them as changed.
  for (uint32_t b = 0; b < buckets; ++b) {
    if (std::binary_search(joined->begin(), joined->end(), next.ManagerOf(b))) {
      next.Set(b, next.ManagerOf(b), epoch);
    }
  }
  return next;
}

Membership::Membership(const MembershipOptions& options, Member self,
                       std::vector<std::string> seeds, uint64_t rng_seed, uint32_t lamport_floor)
    : options_(options), self_(std::move(self)), rng_(rng_seed), lamport_(lamport_floor) {
  assert(self_.id != 0 && !self_.address.empty());
  view_.user_map = UserMap(options_.buckets, 0);
  previous_.user_map = UserMap(options_.buckets, 0);
  for (std::string& s : seeds) {
    if (s.empty() || s == self_.address) continue;
    seeds_.insert(s);
    known_.emplace(s, 0);
  }
}

int64_t Membership::Jitter() {
  if (options_.max_jitter_ms <= 0) return 0;
  return static_cast<int64_t>(rng_() % static_cast<uint64_t>(options_.max_jitter_ms + 1));
}

void Membership::Send(const std::string& address, NodeId to, Body body) {
  if (address.empty() || address == self_.address) return;
  outbox_.push_back({address, to, Message{self_, view_.epoch, std::move(body)}});
}

void Membership::Learn(const Member& m) {
  if (m.id == self_.id || m.address.empty() || m.address == self_.address) return;
  // One address per id: a node restarted elsewhere is not probed at its old
  // address (unless that is a seed, which stays known without an id).
  for (auto it = known_.begin(); it != known_.end();) {
    if (it->second == m.id && it->first != m.address) {
      if (seeds_.count(it->first)) {
        it->second = 0;
        ++it;
      } else {
        it = known_.erase(it);
      }
    } else {
      ++it;
    }
  }
  known_[m.address] = m.id;
}

void Membership::Start(int64_t now_ms) {
  started_ = true;
  next_probe_ms_ = now_ms + options_.probe_interval_ms;
  for (const auto& [address, id] : known_) Send(address, id, Probe{});
  // Leave a running cluster time to answer the probes with a round that
  // includes us (it may be busy with a round of its own: wait a round's
  // timeout); if none comes, coordinate (alone, or with whoever answers).
  // A node that commits a view of itself while a cluster is there would take
  // mail on its own for a moment. With nobody to ask, start at once.
  round_at_ms_ = known_.empty() ? now_ms : now_ms + options_.round_timeout_ms + Jitter();
  if (known_.empty()) OnTick(now_ms);
}

bool Membership::InRound() const { return coordinating_ || accepted_ > view_.epoch; }

void Membership::StartRoundSoon(int64_t now_ms) {
  if (self_removed_ || InRound() || round_at_ms_) return;
  round_at_ms_ = now_ms + Jitter();
}

std::vector<std::string> Membership::ProposeTargets() const {
  std::set<std::string> out;
  for (const auto& [address, id] : known_) {
    if (!removed_.count(id)) out.insert(address);
  }
  for (const Member& m : view_.members) out.insert(m.address);
  out.erase(self_.address);
  return {out.begin(), out.end()};
}

void Membership::BeginRound(int64_t now_ms) {
  round_at_ms_.reset();
  lamport_ = std::max({lamport_, EpochCounter(accepted_), EpochCounter(view_.epoch)}) + 1;
  accepted_ = MakeEpoch(lamport_, self_.id);
  accepted_at_ms_ = now_ms;
  coordinating_ = true;
  acceptors_.clear();
  acceptors_[self_.id] = {self_, view_};
  const std::vector<std::string> targets = ProposeTargets();
  // Nobody to hear from: commit at once (a lone node's first view).
  commit_at_ms_ = targets.empty() ? now_ms : now_ms + options_.accept_window_ms;
  for (const std::string& address : targets) {
    auto it = known_.find(address);
    Send(address, it == known_.end() ? 0 : it->second, Propose{accepted_});
  }
}

View Membership::ComputeView(Epoch epoch) const {
  View v;
  v.epoch = epoch;
  // Removals any acceptor knows of hold, whoever coordinates: otherwise a
  // merge coordinated by a node that never heard of one would let the
  // removed node back in.
  v.removed = removed_;
  for (const auto& [id, a] : acceptors_)
    v.removed.insert(a.view.removed.begin(), a.view.removed.end());
  const View* base = nullptr;
  for (const auto& [id, a] : acceptors_) {
    if (!v.removed.count(id)) v.members.push_back(a.member);
    if (!base || a.view.epoch > base->epoch) base = &a.view;
  }
  v.base_epoch = base ? base->epoch : 0;
  v.user_map = ComputeUserMap(options_.buckets, base ? *base : View{}, v.members, epoch, &v.joined);
  return v;
}

void Membership::CommitRound(int64_t now_ms) {
  coordinating_ = false;
  View v = ComputeView(accepted_);
  for (const Member& m : v.members) {
    if (m.id != self_.id) Send(m.address, m.id, Commit{v});
  }
  Install(now_ms, std::move(v));
}

void Membership::Install(int64_t now_ms, View v) {
  previous_ = std::move(view_);
  view_ = std::move(v);
  view_changed_ = true;
  accepted_ = std::max(accepted_, view_.epoch);
  lamport_ = std::max(lamport_, EpochCounter(view_.epoch));
  coordinating_ = false;
  acceptors_.clear();
  round_at_ms_.reset();
  removed_.insert(view_.removed.begin(), view_.removed.end());
  for (const Member& m : view_.members) Learn(m);
  // The successor by node id, wrapping around; none when alone.
  successor_ = 0;
  if (view_.members.size() > 1) {
    auto it = std::upper_bound(view_.members.begin(), view_.members.end(), self_.id,
                               [](NodeId x, const Member& m) { return x < m.id; });
    successor_ = (it == view_.members.end() ? view_.members.front() : *it).id;
  }
  last_ping_ack_ms_ = now_ms;
  next_ping_ms_ = now_ms + options_.ping_interval_ms;
  // A coordinator that had not heard of a removal kept the node in.
  for (const Member& m : view_.members) {
    if (removed_.count(m.id)) StartRoundSoon(now_ms);
  }
}

void Membership::OnOutsider(int64_t now_ms, const Message& m) {
  if (removed_.count(m.from.id)) return;
  StartRoundSoon(now_ms);
}

void Membership::SyncView(int64_t now_ms, const Message& m) {
  if (m.view_epoch >= view_.epoch || view_.epoch == 0) return;
  auto it = last_sync_ms_.find(m.from.id);
  if (it != last_sync_ms_.end() && now_ms - it->second < options_.ping_interval_ms) return;
  last_sync_ms_[m.from.id] = now_ms;
  Send(m.from.address, m.from.id, Commit{view_});
}

void Membership::OnPropose(int64_t now_ms, const Message& m, Epoch proposal) {
  if (proposal == accepted_ && !coordinating_ && proposal > view_.epoch) {
    // A repeated proposal (the coordinator pulled us in twice): accept again.
    Send(m.from.address, m.from.id, Accept{proposal, view_});
  } else if (proposal > accepted_ && proposal > view_.epoch) {
    accepted_ = proposal;
    accepted_at_ms_ = now_ms;
    coordinating_ = false;
    acceptors_.clear();
    round_at_ms_.reset();
    lamport_ = std::max(lamport_, EpochCounter(proposal));
    Send(m.from.address, m.from.id, Accept{proposal, view_});
  } else if (coordinating_ && accepted_ > proposal) {
    // Pull the proposer into the larger round instead of making it retry.
    Send(m.from.address, m.from.id, Propose{accepted_});
  } else {
    Send(m.from.address, m.from.id,
         Reject{proposal, std::max(accepted_, view_.epoch), accepted_ > view_.epoch});
  }
}

void Membership::OnReject(int64_t now_ms, const Reject& r) {
  lamport_ = std::max(lamport_, EpochCounter(r.seen));
  if (!coordinating_ || r.proposal != accepted_ || r.seen <= r.proposal) return;
  coordinating_ = false;
  acceptors_.clear();
  if (r.in_round) {
    // Another round is under way; its coordinator will propose to us (we are
    // known to it now). If it never commits, the round timeout starts ours.
    accepted_at_ms_ = now_ms;
  } else {
    // Our epoch was stale (e.g. just restarted or resumed): retry above it.
    accepted_ = view_.epoch;
    round_at_ms_ = now_ms + Jitter();
  }
}

void Membership::OnCommit(int64_t now_ms, const Message& m, const View& v) {
  if (v.epoch <= view_.epoch) {
    SyncView(now_ms, m);
    return;
  }
  if (v.epoch < accepted_ && InRound()) return;  // a newer round is pending
  const Member* me = v.Find(self_.id);
  if (!me) return;
  if (me->incarnation != self_.incarnation) {
    // The cluster still lists our previous incarnation: it must learn that
    // this process lost its soft state.
    StartRoundSoon(now_ms);
    return;
  }
  Install(now_ms, v);
}

void Membership::OnMessage(int64_t now_ms, const Message& m) {
  if (!started_ || self_removed_ || m.from.id == self_.id) return;
  if (std::holds_alternative<Removed>(m.body)) {
    // Cluster traffic is authenticated (the shared secret): any member may
    // tell us.
    self_removed_ = true;
    coordinating_ = false;
    round_at_ms_.reset();
    return;
  }
  if (removed_.count(m.from.id)) {
    auto it = last_removed_ms_.find(m.from.id);
    if (it == last_removed_ms_.end() || now_ms - it->second >= options_.ping_interval_ms) {
      last_removed_ms_[m.from.id] = now_ms;
      Send(m.from.address, m.from.id, Removed{});
    }
    return;
  }
  lamport_ = std::max(lamport_, EpochCounter(m.view_epoch));
  Learn(m.from);
  const bool member = view_.HasIncarnation(m.from);
  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, Ping> || std::is_same_v<T, Probe>) {
          Send(m.from.address, m.from.id,
               std::is_same_v<T, Ping> ? Body{PingAck{}} : Body{ProbeAck{}});
        }
        if constexpr (std::is_same_v<T, PingAck>) {
          if (m.from.id == successor_) last_ping_ack_ms_ = now_ms;
        }
        if constexpr (std::is_same_v<T, Ping> || std::is_same_v<T, PingAck> ||
                      std::is_same_v<T, Probe> || std::is_same_v<T, ProbeAck>) {
          if (!member) {
            OnOutsider(now_ms, m);
          } else {
            SyncView(now_ms, m);
          }
        }
        if constexpr (std::is_same_v<T, Propose>) OnPropose(now_ms, m, body.proposal);
        if constexpr (std::is_same_v<T, Accept>) {
          if (coordinating_ && body.proposal == accepted_) {
            acceptors_[m.from.id] = {m.from, body.view};
          } else if (body.proposal == view_.epoch && !member) {
            OnOutsider(now_ms, m);  // accepted after we committed: include it next
          }
        }
        if constexpr (std::is_same_v<T, Reject>) OnReject(now_ms, body);
        if constexpr (std::is_same_v<T, Commit>) OnCommit(now_ms, m, body.view);
      },
      m.body);
}

void Membership::OnTick(int64_t now_ms) {
  if (!started_ || self_removed_) return;
  if (round_at_ms_ && now_ms >= *round_at_ms_) BeginRound(now_ms);
  if (coordinating_ && now_ms >= commit_at_ms_) CommitRound(now_ms);
  if (!coordinating_ && accepted_ > view_.epoch &&
      now_ms >= accepted_at_ms_ + options_.round_timeout_ms) {
    // The round we joined never committed (its coordinator died or we were
    // left out): start one of our own.
    BeginRound(now_ms);
  }
  if (view_.epoch != 0 && successor_ != 0 && now_ms >= next_ping_ms_) {
    const Member* s = view_.Find(successor_);
    Send(s->address, s->id, Ping{});
    next_ping_ms_ = now_ms + options_.ping_interval_ms;
    if (now_ms - last_ping_ack_ms_ > options_.ping_timeout_ms) StartRoundSoon(now_ms);
  }
  if (now_ms >= next_probe_ms_) {
    next_probe_ms_ = now_ms + options_.probe_interval_ms;
    std::set<std::string> member_addresses;
    for (const Member& m : view_.members) member_addresses.insert(m.address);
    for (const auto& [address, id] : known_) {
      if (!member_addresses.count(address) && !removed_.count(id)) Send(address, id, Probe{});
    }
  }
}

void Membership::OnUnreachable(int64_t now_ms, NodeId node) {
  if (view_.Contains(node) && node != self_.id) StartRoundSoon(now_ms);
}

bool Membership::Remove(int64_t now_ms, NodeId node) {
  if (node == self_.id || node == 0) return false;
  removed_.insert(node);
  // A round under way may still commit with the node in it; Install then
  // starts another one.
  StartRoundSoon(now_ms);
  return true;
}

std::vector<Outgoing> Membership::TakeOutbox() {
  std::vector<Outgoing> out;
  out.swap(outbox_);
  return out;
}

int64_t Membership::NextTimerMs() const {
  int64_t next = INT64_MAX;
  if (!started_ || self_removed_) return next;
  if (round_at_ms_) next = std::min(next, *round_at_ms_);
  if (coordinating_) next = std::min(next, commit_at_ms_);
  if (!coordinating_ && accepted_ > view_.epoch) {
    next = std::min(next, accepted_at_ms_ + options_.round_timeout_ms);
  }
  if (view_.epoch != 0 && successor_ != 0) next = std::min(next, next_ping_ms_);
  next = std::min(next, next_probe_ms_);
  return next;
}

bool Membership::TakeViewChanged() {
  bool changed = view_changed_;
  view_changed_ = false;
  return changed;
}

std::vector<std::string> Membership::KnownAddresses() const { return ProposeTargets(); }

std::string Membership::DebugString(int64_t now_ms) const {
  std::string out =
      "view=" + std::to_string(view_.epoch) + " accepted=" + std::to_string(accepted_) +
      " lamport=" + std::to_string(lamport_) + " coordinating=" + std::to_string(coordinating_) +
      " acceptors=" + std::to_string(acceptors_.size()) +
      " accepted_ago=" + std::to_string(now_ms - accepted_at_ms_) +
      " round_in=" + (round_at_ms_ ? std::to_string(*round_at_ms_ - now_ms) : "-") +
      " commit_in=" + std::to_string(commit_at_ms_ - now_ms) +
      " removed=" + std::to_string(self_removed_);
  return out;
}

}  // namespace porcupine::cluster
