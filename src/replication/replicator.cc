#include "replication/replicator.h"

#include <algorithm>

namespace porcupine::replication {

void Replicator::Add(Entry entry, int64_t now_ms) {
  if (entry.remaining.empty()) return;
  const int64_t due = entry.takeover ? now_ms + options_.takeover_ms : now_ms;
  auto it = entries_.find(entry.object);
  if (it == entries_.end()) {
    State s;
    for (NodeId t : entry.remaining) s.targets[t] = {due, 0, false};
    entries_.emplace(entry.object, std::move(s)).first->second.entry = std::move(entry);
    return;
  }
  State& s = it->second;
  // A newer update of the same object supersedes the older one: its targets
  // need the newer version; our own update is never a takeover.
  if (entry.hlc > s.entry.hlc) {
    s.entry.hlc = entry.hlc;
    s.entry.bytes = entry.bytes;
    for (auto& [node, t] : s.targets) {
      if (!t.in_flight) t.due_ms = std::min(t.due_ms, due);
    }
  }
  s.entry.takeover = s.entry.takeover && entry.takeover;
  s.entry.created_ms = std::min(s.entry.created_ms, entry.created_ms);
  for (NodeId t : entry.remaining) {
    if (s.entry.remaining.insert(t).second) s.targets[t] = {due, 0, false};
  }
}

std::vector<Push> Replicator::TakeDue(int64_t now_ms, const cluster::View& view, size_t max) {
  std::vector<Push> out;
  for (auto& [object, s] : entries_) {
    for (auto& [node, t] : s.targets) {
      if (out.size() >= max) return out;
      if (t.in_flight || t.due_ms > now_ms || !view.Contains(node)) continue;
      t.in_flight = true;
      out.push_back({object, node, s.entry.hlc});
    }
  }
  return out;
}

std::vector<Push> Replicator::TakeNow(const ObjectRef& object, const cluster::View& view) {
  std::vector<Push> out;
  auto it = entries_.find(object);
  if (it == entries_.end()) return out;
  for (auto& [node, t] : it->second.targets) {
    if (t.in_flight || !view.Contains(node)) continue;
    t.in_flight = true;
    out.push_back({object, node, it->second.entry.hlc});
  }
  return out;
}

Replicator::Outcome Replicator::OnAck(const ObjectRef& object, NodeId target, uint64_t held_hlc,
                                      int64_t now_ms) {
  auto it = entries_.find(object);
  if (it == entries_.end()) return Outcome::kUnknown;
  State& s = it->second;
  auto t = s.targets.find(target);
  if (t == s.targets.end()) return Outcome::kPending;
  t->second.in_flight = false;
  if (held_hlc < s.entry.hlc) {
    // It acknowledged an older version (a newer update came meanwhile).
    t->second.due_ms = now_ms;
    return Outcome::kPending;
  }
  s.targets.erase(t);
  s.entry.remaining.erase(target);
  if (!s.entry.remaining.empty()) return Outcome::kPending;
  entries_.erase(it);
  return Outcome::kRetired;
}

void Replicator::OnFailure(const ObjectRef& object, NodeId target, int64_t now_ms) {
  auto it = entries_.find(object);
  if (it == entries_.end()) return;
  auto t = it->second.targets.find(target);
  if (t == it->second.targets.end()) return;
  Target& tg = t->second;
  tg.in_flight = false;
  tg.backoff_ms = std::min(tg.backoff_ms == 0 ? options_.retry_initial_ms : tg.backoff_ms * 2,
                           options_.retry_max_ms);
  tg.due_ms = now_ms + tg.backoff_ms;
}

bool Replicator::OnRetire(const ObjectRef& object, uint64_t hlc) {
  auto it = entries_.find(object);
  if (it == entries_.end() || !it->second.entry.takeover || it->second.entry.hlc > hlc) {
    return false;
  }
  entries_.erase(it);
  return true;
}

std::vector<ObjectRef> Replicator::OnView(const cluster::View& view, int64_t now_ms) {
  std::vector<ObjectRef> retired;
  std::set<NodeId> members;
  for (const cluster::Member& m : view.members) members.insert(m.id);
  const std::set<NodeId> before = std::move(members_);
  members_ = members;
  for (auto it = entries_.begin(); it != entries_.end();) {
    State& s = it->second;
    for (auto t = s.targets.begin(); t != s.targets.end();) {
      if (view.removed.count(t->first)) {
        s.entry.remaining.erase(t->first);
        t = s.targets.erase(t);
        continue;
      }
      // Back in the view: it receives what it missed now, not after the backoff.
      if (members.count(t->first) && !before.count(t->first) && !t->second.in_flight &&
          !s.entry.takeover) {
        t->second.due_ms = std::min(t->second.due_ms, now_ms);
        t->second.backoff_ms = 0;
      }
      ++t;
    }
    if (s.entry.remaining.empty()) {
      retired.push_back(it->first);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return retired;
}

const Entry* Replicator::Find(const ObjectRef& object) const {
  auto it = entries_.find(object);
  return it == entries_.end() ? nullptr : &it->second.entry;
}

int64_t Replicator::NextDueMs(const cluster::View& view) const {
  int64_t next = INT64_MAX;
  for (const auto& [object, s] : entries_) {
    for (const auto& [node, t] : s.targets) {
      if (!t.in_flight && view.Contains(node)) next = std::min(next, t.due_ms);
    }
  }
  return next;
}

std::map<NodeId, Replicator::Backlog> Replicator::BacklogByPeer() const {
  std::map<NodeId, Backlog> out;
  for (const auto& [object, s] : entries_) {
    for (NodeId node : s.entry.remaining) {
      Backlog& b = out[node];
      ++b.entries;
      b.bytes += s.entry.bytes;
      if (b.oldest_ms == 0 || s.entry.created_ms < b.oldest_ms) b.oldest_ms = s.entry.created_ms;
    }
  }
  return out;
}

}  // namespace porcupine::replication
