#include "sim/world.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/hash.h"

namespace porcupine::sim {

std::string Result::Summary() const {
  return fmt::format(
      "events={} messages={} views={} delivered={} failed={} deletes={} created={} chunks={} "
      "upkeep_rounds={} slots_repaired={} repair_pushes={} rereplicated={} purged={} "
      "violations={}",
      events, messages, views_installed, deliveries_acked, deliveries_failed, deletes,
      users_created, rebuild_chunks, upkeep_rounds, slots_repaired, repair_pushes, rereplicated,
      purged, violations.size());
}

World::World(const Options& options) : options_(options), rng_(options.seed) {
  if (options_.max_down < 0) options_.max_down = (options_.nodes - 1) / 2;
  options_.membership.buckets = options_.buckets;
  loss_ = options_.loss;
  std::set<NodeId> ids;
  std::vector<std::string> addresses;
  for (int i = 0; i < options_.nodes; ++i) {
    NodeId id = 0;
    while (id == 0 || ids.count(id)) id = static_cast<NodeId>(rng_());
    ids.insert(id);
    addresses.push_back(fmt::format("10.0.{}.{}:7000", i / 250, i % 250 + 1));
    by_address_[addresses.back()] = i;
    by_id_[id] = i;
  }
  for (int i = 0; i < options_.nodes; ++i) {
    // Every node knows a few seeds only; the rest it learns from views.
    std::vector<std::string> seeds;
    for (int s = 0; s < std::min(options_.nodes, 3); ++s) seeds.push_back(addresses[s]);
    NodeId id = 0;
    for (const auto& [nid, idx] : by_id_)
      if (idx == i) id = nid;
    nodes_.push_back(std::make_unique<SimNode>(*this, i, id, addresses[i], seeds));
  }
  wake_at_.assign(options_.nodes, INT64_MAX);
  group_.assign(options_.nodes, 0);
  for (int u = 0; u < options_.users; ++u) {
    std::string user = fmt::format("u{}@example.test", u);
    users_.push_back(user);
    initial_.insert(user);
    existing_.insert(user);
    store::Profile p;
    p.set_version(1);
    p.set_user(user);
    p.set_hlc(1);
    for (auto& n : nodes_) n->disk().profiles[user] = p;
  }
}

void World::At(int64_t at, std::function<void()> fn) {
  events_.push(Event{at, ++seq_, std::move(fn)});
}

int World::IndexOf(NodeId id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? -1 : it->second;
}

SimNode* World::Node(NodeId id) {
  int i = IndexOf(id);
  return i < 0 ? nullptr : nodes_[i].get();
}

bool World::CanTalk(int a, int b) const { return group_[a] == group_[b]; }

void World::Send(int from_index, const std::string& to_address, Envelope e) {
  auto it = by_address_.find(to_address);
  if (it == by_address_.end()) return;
  const int to = it->second;
  if (!CanTalk(from_index, to)) return;
  if (chaos_ && loss_ > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < loss_) return;
  const int64_t delay =
      std::uniform_int_distribution<int64_t>(options_.min_delay_ms, options_.max_delay_ms)(rng_);
  At(now_ + delay,
     [this, from_index, to, e = std::move(e)]() mutable { Deliver(from_index, to, std::move(e)); });
}

void World::SendId(int from_index, NodeId to, Envelope e) {
  int i = IndexOf(to);
  if (i >= 0) Send(from_index, nodes_[i]->address(), std::move(e));
}

void World::Deliver(int from, int to, Envelope e) {
  SimNode& n = *nodes_[to];
  if (!n.alive() || !CanTalk(from, to)) return;
  if (n.paused(now_)) {
    // A stopped process: the kernel queues its input until it runs again.
    At(n.paused_until(),
       [this, from, to, e = std::move(e)]() mutable { Deliver(from, to, std::move(e)); });
    return;
  }
  n.Receive(e);
}

void World::Wake(int index, int64_t at) {
  if (at == INT64_MAX || at >= wake_at_[index]) return;
  wake_at_[index] = at;
  At(at, [this, index, at] {
    if (wake_at_[index] != at) return;  // superseded by an earlier wake
    wake_at_[index] = INT64_MAX;
    SimNode& n = *nodes_[index];
    if (!n.alive()) return;
    if (n.paused(now_)) {
      Wake(index, n.paused_until());
      return;
    }
    n.Tick();
  });
}

void World::Violation(const std::string& what) {
  if (result_.violations.size() < 50) {
    result_.violations.push_back(fmt::format("t={}ms: {}", now_, what));
  }
}

void World::Trace(const std::string& what, bool force) {
  if (options_.trace || force)
    std::printf("%8lld ms  %s\n", static_cast<long long>(now_), what.c_str());
}

// ---- invariants at every view installation ---------------------------

void World::OnInstall(SimNode& node, const cluster::View& prev, const cluster::View& view) {
  ++result_.views_installed;
  const cluster::Member* me = view.Find(node.id());
  if (!me || !view.HasIncarnation(node.membership().self())) {
    Violation(fmt::format("node {:08x} installed view {:x} without itself", node.id(), view.epoch));
  }
  const std::vector<NodeId> ids = view.ids();
  const uint32_t b = view.user_map.buckets();
  const uint32_t lo = b / static_cast<uint32_t>(ids.size());
  for (NodeId id : ids) {
    uint32_t c = view.user_map.CountOf(id);
    if (c < lo || c > lo + 1) {
      Violation(fmt::format("view {:x} unbalanced: node {:08x} manages {}", view.epoch, id, c));
    }
  }
  for (uint32_t bucket = 0; bucket < b; ++bucket) {
    if (!view.Contains(view.user_map.ManagerOf(bucket))) {
      Violation(fmt::format("view {:x}: bucket {} managed by non-member", view.epoch, bucket));
      break;
    }
  }
  auto [it, fresh] = views_.emplace(view.epoch, view);
  if (!fresh && !(it->second == view)) {
    Violation(fmt::format("two different views with epoch {:x}", view.epoch));
  }
  if (prev.epoch != 0 && prev.epoch == view.base_epoch) {
    uint32_t moved = 0;
    for (uint32_t bucket = 0; bucket < b; ++bucket) {
      moved += prev.user_map.ManagerOf(bucket) != view.user_map.ManagerOf(bucket);
    }
    uint32_t need = cluster::UserMap::RequiredMoves(prev.user_map, ids);
    if (moved != need) {
      Violation(fmt::format("view {:x} moved {} buckets, {} needed", view.epoch, moved, need));
    }
  }
  if (fresh) {
    std::string members;
    for (const cluster::Member& m : view.members) {
      members += fmt::format(" {}{}", m.name, view.Joined(m.id) ? "*" : "");
    }
    Trace(fmt::format("view {:x} base {:x}:{}", view.epoch, view.base_epoch, members));
  }
}

void World::OnDeliveryDone(const std::string& user, uint64_t msg, bool acked) {
  ++(acked ? result_.deliveries_acked : result_.deliveries_failed);
  if (acked) acked_.insert({user, msg});
}

void World::OnDeleted(const std::string& user, uint64_t msg) { deleted_.insert({user, msg}); }

void World::OnNotFound(SimNode& node, const std::string& user) {
  if (initial_.count(user)) {
    Violation(fmt::format("manager {:08x} said no such user for existing {}", node.id(), user));
  }
}

void World::OnUserCreated(const std::string& user) {
  if (existing_.insert(user).second) {
    ++result_.users_created;
    users_.push_back(user);
  }
}

// ---- workload and nemesis ---------------------------------------------

int64_t World::Exp(double per_s) {
  double u = std::uniform_real_distribution<double>(1e-9, 1.0)(rng_);
  return std::max<int64_t>(1, static_cast<int64_t>(-std::log(u) * 1000.0 / per_s));
}

int World::PickAlive() {
  std::vector<int> up;
  for (int i = 0; i < options_.nodes; ++i) {
    if (nodes_[i]->alive() && !nodes_[i]->paused(now_)) up.push_back(i);
  }
  if (up.empty()) return -1;
  return up[std::uniform_int_distribution<size_t>(0, up.size() - 1)(rng_)];
}

void World::ScheduleWorkload() {
  auto every = [this](double rate, std::function<void()> action) {
    if (rate <= 0) return;
    // The loop lives in the world; events hold copies that point at it.
    loops_.push_back(std::make_unique<std::function<void()>>());
    std::function<void()>* loop = loops_.back().get();
    *loop = [this, rate, action, loop] {
      if (!chaos_) return;
      action();
      At(now_ + Exp(rate), *loop);
    };
    At(now_ + 500 + Exp(rate), *loop);
  };
  every(options_.deliveries_per_s, [this] {
    int i = PickAlive();
    if (i < 0 || users_.empty()) return;
    const std::string& user =
        users_[std::uniform_int_distribution<size_t>(0, users_.size() - 1)(rng_)];
    nodes_[i]->Deliver(user, ++next_msg_);
  });
  every(options_.deletes_per_s, [this] {
    int i = PickAlive();
    if (i < 0) return;
    auto& msgs = nodes_[i]->disk().messages;
    if (msgs.empty()) return;
    auto it = msgs.begin();
    std::advance(it, std::uniform_int_distribution<size_t>(0, msgs.size() - 1)(rng_));
    std::vector<uint64_t> live = nodes_[i]->disk().Live(it->first);
    if (live.empty()) return;
    nodes_[i]->DeleteOne(it->first,
                         live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng_)]);
  });
  every(options_.creates_per_s, [this] {
    int i = PickAlive();
    if (i < 0) return;
    nodes_[i]->CreateUser(fmt::format("new{}@example.test", ++next_user_));
  });
}

int World::Down() const {
  int down = 0;
  for (const auto& n : nodes_) down += !n->alive() || n->paused(now_);
  return down;
}

void World::ScheduleNemesis() {
  if (options_.faults_per_s <= 0) return;
  At(now_ + 1000 + Exp(options_.faults_per_s), [this] {
    if (!chaos_) return;
    Nemesis();
    ScheduleNemesis();
  });
}

void World::Nemesis() {
  const int action = std::uniform_int_distribution<int>(0, options_.partitions ? 2 : 1)(rng_);
  const int i = std::uniform_int_distribution<int>(0, options_.nodes - 1)(rng_);
  SimNode& n = *nodes_[i];
  if (action == 0 && n.alive() && !n.paused(now_) && Down() < options_.max_down) {
    Trace(fmt::format("crash n{} ({:08x})", i, n.id()));
    n.Crash();
    wake_at_[i] = INT64_MAX;
    At(now_ + std::uniform_int_distribution<int64_t>(1000, 8000)(rng_), [this, i] {
      if (!chaos_ || nodes_[i]->alive()) return;
      Trace(fmt::format("restart n{}", i));
      nodes_[i]->Boot();
    });
  } else if (action == 1 && n.alive() && !n.paused(now_) && Down() < options_.max_down) {
    int64_t until = now_ + std::uniform_int_distribution<int64_t>(1500, 6000)(rng_);
    Trace(fmt::format("pause n{} until {}", i, until));
    n.Pause(until);
    Wake(i, until);
  } else if (action == 2 && !partitioned_ && options_.nodes > 1) {
    std::vector<int> side(options_.nodes);
    int ones = 0;
    for (int& s : side) ones += (s = std::uniform_int_distribution<int>(0, 1)(rng_));
    if (ones == 0 || ones == options_.nodes) side[0] = 1 - side[0];
    group_ = side;
    partitioned_ = true;
    std::string a;
    for (int k = 0; k < options_.nodes; ++k) a += std::to_string(side[k]);
    Trace("partition " + a);
    At(now_ + std::uniform_int_distribution<int64_t>(2000, 10000)(rng_), [this] {
      if (partitioned_) Heal();
    });
  }
}

void World::Heal() {
  Trace("heal");
  group_.assign(options_.nodes, 0);
  partitioned_ = false;
}

void World::Finish() {
  Trace("chaos ends: heal, restart and resume every node");
  chaos_ = false;
  Heal();
  for (int i = 0; i < options_.nodes; ++i) {
    SimNode& n = *nodes_[i];
    if (!n.alive()) {
      n.Boot();
    } else if (n.paused(now_)) {
      n.Pause(now_);
      Wake(i, now_);
    }
  }
}

// ---- final checks -----------------------------------------------------

void World::CheckReplicas() {
  // Every version of every message, by holder.
  std::map<std::pair<std::string, uint64_t>, std::map<NodeId, Version>> all;
  for (const auto& n : nodes_) {
    for (const auto& [u, msgs] : n->disk().messages) {
      for (const auto& [msg, v] : msgs) all[{u, msg}][n->id()] = v;
    }
  }
  // Lost or resurrected mail has a report budget of its own: it is never
  // crowded out by replica-list differences.
  size_t reported = 0, reported_data = 0;
  auto report = [&](const std::string& what) {
    if (reported++ < 10) Violation(what);
  };
  auto report_data = [&](const std::string& what) {
    if (reported_data++ < 10) Violation(what);
  };
  for (const auto& [key, holders] : all) {
    // A deletion is final: a tombstone is newer than any live version.
    auto order = [](const Version& v) { return store::MessageVersion(v.hlc, v.tombstone); };
    const Version* newest = nullptr;
    for (const auto& [node, v] : holders) {
      if (!newest || order(v) > order(*newest)) newest = &v;
    }
    std::set<NodeId> want(newest->replicas.begin(), newest->replicas.end());
    std::set<NodeId> have;
    for (const auto& [node, v] : holders) {
      have.insert(node);
      if (!(v == *newest)) {
        report(fmt::format(
            "replicas of {} #{} differ: {:08x} holds hlc {:x} tombstone {}, newest "
            "{:x} tombstone {}",
            key.first, key.second, node, v.hlc, v.tombstone, newest->hlc, newest->tombstone));
      }
    }
    // Tombstones are collected by each replica on its own, so fewer holders
    // than replicas is right for one; never a holder outside the set.
    const bool collected =
        newest->tombstone && std::includes(want.begin(), want.end(), have.begin(), have.end());
    if (have != want && !collected) {
      report(fmt::format("{} #{} held by {} nodes, its replica set has {}", key.first, key.second,
                         have.size(), want.size()));
    }
    // Upkeep tops every message up to R copies once the cluster is whole.
    const size_t copies = std::min(static_cast<size_t>(options_.replication), nodes_.size());
    if (options_.upkeep && !newest->tombstone && want.size() < copies) {
      report(
          fmt::format("{} #{} has {} replicas of {}", key.first, key.second, want.size(), copies));
    }
    if (deleted_.count(key) && !newest->tombstone) {
      report_data(fmt::format("deleted {} #{} is live again", key.first, key.second));
    }
  }
  for (const auto& key : acked_) {
    // A deleted message's tombstone may be collected: gone is right then.
    if (!all.count(key) && !deleted_.count(key)) {
      report_data(fmt::format("acknowledged {} #{} lost", key.first, key.second));
    }
  }
  for (const auto& key : deleted_) {
    auto it = all.find(key);
    if (it == all.end()) continue;
    for (const auto& [node, v] : it->second) {
      if (!v.tombstone) {
        report_data(fmt::format("deleted {} #{} visible on {:08x}", key.first, key.second, node));
      }
    }
  }
}

void World::CheckFinal() {
  CheckReplicas();
  const cluster::View& v0 = nodes_[0]->membership().view();
  for (const auto& n : nodes_) {
    const cluster::View& v = n->membership().view();
    if (v.epoch != v0.epoch) {
      for (const auto& x : nodes_) {
        Trace(fmt::format("  {:08x} {} wake_at={} next={}", x->id(),
                          x->membership().DebugString(now_), wake_at_[IndexOf(x->id())],
                          x->NextWake()));
      }
      Violation(fmt::format("not converged: n? {:08x} in view {:x}, n0 in {:x}", n->id(), v.epoch,
                            v0.epoch));
      return;
    }
    if (!v.HasIncarnation(n->membership().self())) {
      Violation(fmt::format("node {:08x} not a member of the final view", n->id()));
      return;
    }
    if (n->Busy()) Violation(fmt::format("node {:08x} still has work queued", n->id()));
  }
  if (v0.members.size() != nodes_.size()) {
    Violation(fmt::format("final view has {} of {} nodes", v0.members.size(), nodes_.size()));
  }
  for (uint32_t b = 0; b < v0.user_map.buckets(); ++b) {
    SimNode* m = Node(v0.user_map.ManagerOf(b));
    if (!m->soft_state().Ready(b)) {
      Violation(fmt::format("bucket {} still rebuilding at {:08x}", b, m->id()));
      return;
    }
  }
  std::set<std::string> users = existing_;
  for (const auto& n : nodes_) {
    for (const auto& [u, f] : n->disk().messages) users.insert(u);
  }
  for (const std::string& u : users) {
    SimNode* m = Node(v0.user_map.ManagerOf(BucketOf(u, v0.user_map.buckets())));
    SoftState::Lookup l = m->soft_state().Find(u);
    if (l.state != SoftState::State::kFound) {
      Violation(fmt::format("user {} not found at its manager ({})", u, static_cast<int>(l.state)));
      continue;
    }
    std::vector<NodeId> holders;
    for (const auto& n : nodes_) {
      if (n->disk().HoldsLive(u)) holders.push_back(n->id());
    }
    std::sort(holders.begin(), holders.end());
    if (holders != l.mail_map) {
      std::string want, got;
      for (NodeId h : holders) want += fmt::format(" {:08x}", h);
      for (NodeId h : l.mail_map) got += fmt::format(" {:08x}", h);
      Violation(fmt::format("mail map of {}:{} but fragments on{}", u, got, want));
    }
  }
}

Result World::Run() {
  for (int i = 0; i < options_.nodes; ++i) {
    At(std::uniform_int_distribution<int64_t>(0, 200)(rng_), [this, i] { nodes_[i]->Boot(); });
  }
  ScheduleWorkload();
  ScheduleNemesis();
  At(options_.chaos_ms, [this] { Finish(); });
  const int64_t end = options_.chaos_ms + options_.quiesce_ms;
  while (!events_.empty() && events_.top().at <= end) {
    Event e = events_.top();
    events_.pop();
    now_ = e.at;
    ++result_.events;
    e.fn();
  }
  now_ = end;
  CheckFinal();
  return result_;
}

Result Run(const Options& options) { return World(options).Run(); }

}  // namespace porcupine::sim
