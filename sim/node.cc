#include <fmt/format.h>

#include <algorithm>

#include "core/hash.h"
#include "core/hlc.h"
#include "sim/world.h"

namespace porcupine::sim {

using State = SoftState::State;

namespace {
constexpr int64_t kReplyTimeoutMs = 500;  // proxy: re-send a request with no answer
constexpr int64_t kRetryPauseMs = 50;     // proxy: wait before retrying a refused request
constexpr int64_t kGossipMs = 1000;
}  // namespace

bool Disk::HoldsLive(const std::string& user) const {
  auto it = messages.find(user);
  if (it == messages.end()) return false;
  for (const auto& [msg, v] : it->second) {
    if (!v.tombstone) return true;
  }
  return false;
}

std::vector<uint64_t> Disk::Live(const std::string& user) const {
  std::vector<uint64_t> out;
  auto it = messages.find(user);
  if (it == messages.end()) return out;
  for (const auto& [msg, v] : it->second) {
    if (!v.tombstone) out.push_back(msg);
  }
  return out;
}

replication::ObjectRef MessageRef(const std::string& user, uint64_t msg) {
  return {replication::ObjectRef::Kind::kMessage, user, 1, std::to_string(msg)};
}

namespace {
uint64_t MsgOf(const replication::ObjectRef& o) { return std::stoull(o.id); }
constexpr int64_t kPushTimeoutMs = 500;
}  // namespace

SimNode::SimNode(World& world, int index, NodeId id, std::string address,
                 std::vector<std::string> seeds)
    : world_(world),
      index_(index),
      id_(id),
      address_(std::move(address)),
      seeds_(std::move(seeds)) {}

int64_t SimNode::now() const { return world_.now(); }

void SimNode::Watch(const std::string& user, const std::string& what) {
  if (user == world_.options().watch_user) {
    world_.Trace(fmt::format("[{}] {:08x} {}", user, id_, what), true);
  }
}

uint64_t SimNode::Stamp() {
  soft_->last_stamp = std::max(soft_->last_stamp + 1, Hlc::Make(now(), 0));
  return soft_->last_stamp;
}

uint64_t SimNode::Load() const { return soft_ ? soft_->disk_queue.size() : 0; }

bool SimNode::Busy() const {
  return soft_ &&
         (!soft_->reliable.empty() || !soft_->deliveries.empty() || !soft_->creates.empty() ||
          !soft_->disk_queue.empty() || soft_->replicator.size() > 0 || !soft_->pushes.empty());
}

void SimNode::Boot() {
  ++incarnation_;
  cluster::Member self{id_, incarnation_, address_, "n" + std::to_string(index_)};
  cluster::MembershipOptions mo = world_.options().membership;
  mo.buckets = world_.options().buckets;
  soft_ = std::make_unique<Soft>(mo, self, seeds_, world_.rng()(), disk_.lamport_floor, id_,
                                 mo.buckets, UpkeepOptions(), now());
  soft_->rng.seed(world_.rng()());
  soft_->announced.user_map = cluster::UserMap(mo.buckets, 0);
  soft_->next_gossip = now() + kGossipMs;
  // The update log survives the crash: its entries are pushed again.
  for (const auto& [object, entry] : disk_.log) soft_->replicator.Add(entry, now());
  soft_->membership.Start(now());
  AfterMembership();
}

void SimNode::Crash() {
  soft_.reset();
  req_to_delivery_.clear();
  paused_until_ = 0;
}

void SimNode::Send(NodeId to, Body body) {
  world_.SendId(index_, to, Envelope{id_, Load(), std::move(body)});
}

void SimNode::SendAddress(const std::string& address, Body body) {
  world_.Send(index_, address, Envelope{id_, Load(), std::move(body)});
}

void SimNode::Receive(const Envelope& e) {
  if (!soft_) return;
  ++world_.result().messages;
  soft_->loads.Update(e.from, e.load, now());
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, cluster::Message>) {
          soft_->membership.OnMessage(now(), m);
          AfterMembership();
        } else if constexpr (std::is_same_v<T, MLookup>) {
          OnLookup(e.from, m);
        } else if constexpr (std::is_same_v<T, MLookupRep>) {
          OnLookupRep(m);
        } else if constexpr (std::is_same_v<T, MStore>) {
          OnStore(e.from, m);
        } else if constexpr (std::is_same_v<T, MStoreRep>) {
          OnStoreRep(m);
        } else if constexpr (std::is_same_v<T, MMapUpdate>) {
          OnMapUpdate(e.from, m);
        } else if constexpr (std::is_same_v<T, MMapUpdateRep>) {
          if (m.ok) Ack(m.id);
        } else if constexpr (std::is_same_v<T, MChunk>) {
          soft_->state.ApplyRebuild(e.from, m.chunk);
          Send(e.from, MChunkAck{m.id});
          RunParked(false);
        } else if constexpr (std::is_same_v<T, MChunkAck>) {
          Ack(m.id);
        } else if constexpr (std::is_same_v<T, MCreate>) {
          OnCreate(e.from, m);
        } else if constexpr (std::is_same_v<T, MCreateRep>) {
          OnCreateRep(m);
        } else if constexpr (std::is_same_v<T, MProfilePut>) {
          OnProfilePut(e.from, m);
        } else if constexpr (std::is_same_v<T, MProfileAck>) {
          Ack(m.id);
        } else if constexpr (std::is_same_v<T, MReplica>) {
          OnReplica(e.from, m);
        } else if constexpr (std::is_same_v<T, MReplicaAck>) {
          OnReplicaAck(m);
        } else if constexpr (std::is_same_v<T, MDigests>) {
          OnDigests(e.from, m);
        } else if constexpr (std::is_same_v<T, MDiffering>) {
          OnDiffering(e.from, m);
        } else if constexpr (std::is_same_v<T, MSlotItems>) {
          OnSlotItems(e.from, m);
        } else if constexpr (std::is_same_v<T, MSlotPull>) {
          RepairPush(e.from, m.items);
        }
      },
      e.body);
  world_.Wake(index_, NextWake());
}

// ---- membership and reconstruction ----------------------------------

void SimNode::AfterMembership() {
  disk_.lamport_floor = std::max(disk_.lamport_floor, soft_->membership.lamport());
  for (cluster::Outgoing& out : soft_->membership.TakeOutbox()) {
    SendAddress(out.address, std::move(out.message));
  }
  if (soft_->membership.TakeViewChanged()) OnView();
}

void SimNode::OnView() {
  const cluster::View& view = soft_->membership.view();
  world_.OnInstall(*this, soft_->membership.previous_view(), view);
  soft_->state.InstallView(view);
  soft_->upkeep.OnView(view, now());
  for (const replication::ObjectRef& o : soft_->replicator.OnView(view, now())) {
    disk_.log.erase(o);
  }
  Announce(view);
  // Reliable messages to nodes that left are dropped (map updates follow the
  // user's manager and stay).
  for (auto it = soft_->reliable.begin(); it != soft_->reliable.end();) {
    bool fixed = it->second.kind != Reliable::kMapUpdate;
    it = fixed && !view.Contains(it->second.dest) ? soft_->reliable.erase(it) : std::next(it);
  }
  RunParked(false);
}

void SimNode::Announce(const cluster::View& view) {
  std::vector<uint32_t> buckets = manager::BucketsToAnnounce(soft_->announced, view, id_);
  soft_->announced = view;
  manager::AnnouncementBuilder builder(view, buckets, Stamp());
  // Users in key order so one user's facts land in one announcement.
  std::set<std::string> users;
  for (const auto& [u, p] : disk_.profiles) users.insert(u);
  for (const auto& [u, f] : disk_.messages) users.insert(u);
  std::map<uint32_t, std::vector<std::string>> by_bucket;
  for (const std::string& u : users) by_bucket[BucketOf(u, view.user_map.buckets())].push_back(u);
  for (const auto& [b, list] : by_bucket) {
    for (const std::string& u : list) {
      const bool has = disk_.HoldsLive(u);
      auto p = disk_.profiles.find(u);
      Watch(u, fmt::format("announce has={} view={:x} to {:08x}", has, view.epoch,
                           view.user_map.ManagerOf(b)));
      builder.Add(b, u, has, p == disk_.profiles.end() ? nullptr : &p->second);
    }
  }
  std::vector<manager::BucketAnnouncement> list = builder.Take();
  auto chunks = manager::MakeChunks(view, std::move(list), world_.options().max_users_per_chunk);
  for (auto& [manager, set] : chunks) {
    for (manager::RebuildChunk& c : set) {
      ++world_.result().rebuild_chunks;
      if (manager == id_) {
        soft_->state.ApplyRebuild(id_, c);
      } else {
        SendReliable({Reliable::kChunk, manager, 0, MChunk{0, std::move(c)}, nullptr});
      }
    }
  }
}

uint64_t SimNode::EntryEpoch(const std::string& user) const {
  const cluster::View& v = soft_->membership.view();
  return v.user_map.EpochOf(BucketOf(user, v.user_map.buckets()));
}

NodeId SimNode::ManagerOf(const std::string& user) const {
  const cluster::View& v = soft_->membership.view();
  if (v.epoch == 0) return 0;
  return v.user_map.ManagerOf(BucketOf(user, v.user_map.buckets()));
}

// ---- reliable messages ------------------------------------------------

void SimNode::SendReliable(Reliable r) {
  const uint64_t id = NextId();
  auto [it, inserted] = soft_->reliable.emplace(id, std::move(r));
  Resend(id, it->second);
}

void SimNode::Resend(uint64_t id, Reliable& r) {
  r.next_send = now() + world_.options().retry_ms;
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, MMapUpdate> || std::is_same_v<T, MChunk> ||
                      std::is_same_v<T, MProfilePut>) {
          m.id = id;
        }
      },
      r.body);
  if (r.kind == Reliable::kMapUpdate) {
    auto& m = std::get<MMapUpdate>(r.body);
    NodeId manager = ManagerOf(m.user);
    if (manager == 0) return;
    m.entry_epoch = EntryEpoch(m.user);
    if (manager == id_) {
      bool ok = m.add ? soft_->state.MailMapAdd(m.user, id_, m.stamp, m.entry_epoch)
                      : soft_->state.MailMapRemove(m.user, id_, m.stamp, m.entry_epoch);
      if (ok) Ack(id);
      return;
    }
    Send(manager, r.body);
    return;
  }
  Send(r.dest, r.body);
}

void SimNode::RunReliable() {
  std::vector<uint64_t> due;
  for (auto& [id, r] : soft_->reliable) {
    if (r.next_send <= now()) due.push_back(id);
  }
  for (uint64_t id : due) {
    auto it = soft_->reliable.find(id);
    if (it != soft_->reliable.end()) Resend(id, it->second);
  }
}

void SimNode::Ack(uint64_t id) {
  auto it = soft_->reliable.find(id);
  if (it == soft_->reliable.end()) return;
  std::function<void()> done = std::move(it->second.on_ack);
  soft_->reliable.erase(it);
  if (done) done();
}

// ---- manager role -----------------------------------------------------

bool SimNode::AnswerLookup(NodeId from, const MLookup& m, bool final) {
  SoftState::Lookup l = soft_->state.Find(m.user, m.entry_epoch);
  if (l.state == State::kRebuilding && !final) return false;
  if (l.state == State::kNotFound) world_.OnNotFound(*this, m.user);
  MLookupRep rep{m.req, l.state, l.mail_map};
  if (from == id_) {
    OnLookupRep(rep);
  } else {
    Send(from, rep);
  }
  return true;
}

void SimNode::OnLookup(NodeId from, const MLookup& m) {
  if (!AnswerLookup(from, m, false)) {
    soft_->parked.push_back({from, m, now() + world_.options().rebuild_wait_ms});
  }
}

void SimNode::RunParked(bool force) {
  std::vector<Parked> keep;
  std::vector<Parked> parked;
  parked.swap(soft_->parked);
  for (Parked& p : parked) {
    if (!AnswerLookup(p.from, p.lookup, force || now() >= p.deadline)) keep.push_back(p);
  }
  if (!soft_) return;
  for (Parked& p : soft_->parked) keep.push_back(p);  // parked during this pass
  soft_->parked = std::move(keep);
}

void SimNode::OnMapUpdate(NodeId from, const MMapUpdate& m) {
  bool ok = m.add ? soft_->state.MailMapAdd(m.user, from, m.stamp, m.entry_epoch)
                  : soft_->state.MailMapRemove(m.user, from, m.stamp, m.entry_epoch);
  Watch(m.user,
        fmt::format("map update from {:08x} add={} stamp={:x} ok={}", from, m.add, m.stamp, ok));
  Send(from, MMapUpdateRep{m.id, ok});
}

void SimNode::OnCreate(NodeId from, const MCreate& m) {
  SoftState::Lookup l = soft_->state.Find(m.user, m.entry_epoch);
  CreateResult result = CreateResult::kRetry;
  if (l.state == State::kFound) result = CreateResult::kExists;
  if (l.state == State::kNotFound) {
    store::Profile p;
    p.set_version(1);
    p.set_user(m.user);
    p.set_hlc(Stamp());
    disk_.profiles[m.user] = p;
    disk_.profiles_changed = true;
    soft_->state.PutProfile(p, m.entry_epoch);
    for (const cluster::Member& member : soft_->membership.view().members) {
      if (member.id == id_) continue;
      SendReliable({Reliable::kProfile, member.id, 0, MProfilePut{0, p}, nullptr});
    }
    result = CreateResult::kCreated;
  }
  MCreateRep rep{m.req, result};
  if (from == id_) {
    OnCreateRep(rep);
  } else {
    Send(from, rep);
  }
}

void SimNode::OnProfilePut(NodeId from, const MProfilePut& m) {
  auto it = disk_.profiles.find(m.profile.user());
  if (it == disk_.profiles.end() || it->second.hlc() < m.profile.hlc()) {
    disk_.profiles[m.profile.user()] = m.profile;
    disk_.profiles_changed = true;
  }
  // A no-op unless this node manages the user.
  soft_->state.PutProfile(m.profile, soft_->state.EntryEpochOf(m.profile.user()));
  Send(from, MProfileAck{m.id});
}

// ---- fragment role ----------------------------------------------------

void SimNode::Log(const std::string& user, uint64_t msg, const Version& v) {
  replication::Entry e;
  e.object = MessageRef(user, msg);
  e.hlc = v.hlc;
  for (NodeId r : v.replicas) {
    if (r != id_) e.remaining.insert(r);
  }
  e.created_ms = now();
  if (e.remaining.empty()) return;
  // Durable with the object (the same write), then pushed.
  auto [it, fresh] = disk_.log.emplace(e.object, e);
  if (!fresh) {
    it->second.hlc = std::max(it->second.hlc, e.hlc);
    it->second.remaining.insert(e.remaining.begin(), e.remaining.end());
  }
  soft_->replicator.Add(e, now());
}

void SimNode::Push(const replication::Push& p, uint64_t store, bool in_map) {
  const uint64_t msg = MsgOf(p.object);
  auto& versions = disk_.messages[p.object.user];
  auto v = versions.find(msg);
  const uint64_t push = NextId();
  soft_->pushes[push] = {p.object, p.target, now() + kPushTimeoutMs, store};
  if (v == versions.end()) {
    Pushed(push, true, UINT64_MAX);  // nothing to push any more
    return;
  }
  ++world_.result().replica_pushes;
  // The current version: a message deleted since goes as its tombstone.
  Send(p.target, MReplica{push, p.object.user, msg, v->second, in_map});
}

void SimNode::Pushed(uint64_t push, bool ok, uint64_t held) {
  auto it = soft_->pushes.find(push);
  if (it == soft_->pushes.end()) return;
  InFlightPush p = it->second;
  soft_->pushes.erase(it);
  if (ok) {
    if (soft_->replicator.OnAck(p.object, p.target, held, now()) ==
        replication::Replicator::Outcome::kRetired) {
      disk_.log.erase(p.object);
    }
  } else {
    soft_->replicator.OnFailure(p.object, p.target, now());
  }
  if (p.store == 0) return;
  auto w = soft_->waiting.find(p.store);
  if (w == soft_->waiting.end()) return;
  --w->second.outstanding;
  if (ok && w->second.needed > 0) --w->second.needed;
  if (w->second.needed == 0 || w->second.outstanding == 0) Release(p.store);
}

void SimNode::Release(uint64_t store) {
  auto w = soft_->waiting.find(store);
  if (w == soft_->waiting.end()) return;
  std::function<void()> reply = std::move(w->second.reply);
  soft_->waiting.erase(w);
  if (reply) reply();
}

void SimNode::RunPushes() {
  std::vector<uint64_t> expired;
  for (const auto& [id, p] : soft_->pushes) {
    if (now() >= p.deadline) expired.push_back(id);
  }
  for (uint64_t id : expired) Pushed(id, false, 0);
  std::vector<uint64_t> late;
  for (const auto& [id, w] : soft_->waiting) {
    if (now() >= w.deadline) late.push_back(id);
  }
  for (uint64_t id : late) Release(id);  // availability first: fewer copies than wanted
  for (const replication::Push& p : soft_->replicator.TakeDue(now(), soft_->membership.view())) {
    Push(p, 0);
  }
}

void SimNode::OnReplica(NodeId from, const MReplica& m) {
  auto& versions = disk_.messages[m.user];
  auto [found, fresh] = versions.try_emplace(m.msg, m.version);
  Version& held = found->second;
  if (fresh || store::MessageVersion(held.hlc, held.tombstone) <
                   store::MessageVersion(m.version.hlc, m.version.tombstone)) {
    // The later version wins (store/version.h), naming every node the held
    // one named (replication/maintenance.h).
    std::optional<std::vector<NodeId>> wider =
        fresh || !world_.options().widen_replicas
            ? std::nullopt
            : replication::WidenedReplicas(held.replicas, m.version.replicas,
                                           soft_->membership.view().removed);
    held = m.version;
    if (wider) {
      held.replicas = std::move(*wider);
      held.hlc = std::max(m.version.hlc + 1, Stamp());
      Log(m.user, m.msg, held);
      Watch(m.user, fmt::format("widen msg {} to {} replicas", m.msg, held.replicas.size()));
    }
    Watch(m.user, fmt::format("replica msg {} hlc={:x} tombstone={}", m.msg, m.version.hlc,
                              m.version.tombstone));
    const uint64_t stamp = Stamp();
    if (!m.version.tombstone && soft_->presence.LiveWritten(m.user, m.in_map, false)) {
      SendReliable({Reliable::kMapUpdate, 0, 0, MMapUpdate{0, m.user, true, stamp}, nullptr});
    }
    if (m.version.tombstone && !disk_.HoldsLive(m.user)) {  // LocalFragments::MaybeEmptied
      soft_->presence.Emptied(m.user);
      SendReliable({Reliable::kMapUpdate, 0, 0, MMapUpdate{0, m.user, false, stamp}, nullptr});
    }
  }
  Send(from, MReplicaAck{m.push, m.user, m.msg, store::MessageVersion(held.hlc, held.tombstone)});
}

void SimNode::OnReplicaAck(const MReplicaAck& m) { Pushed(m.push, true, m.held); }

void SimNode::OnStore(NodeId from, const MStore& m) {
  const Epoch at_receipt = soft_->membership.view().epoch;
  auto op = [this, from, m, at_receipt] {
    Version v{Stamp(), false, m.replicas};
    disk_.messages[m.user][m.msg] = v;
    Log(m.user, m.msg, v);
    Watch(m.user,
          fmt::format("store msg {} in_map={} proxy_epoch={:x}", m.msg, m.in_map, m.proxy_epoch));
    const Epoch epoch = soft_->membership.view().epoch;
    const bool announce = soft_->presence.LiveWritten(
        m.user, m.in_map, m.proxy_epoch != epoch || at_receipt != epoch);
    // The proxy hears back once ack_copies copies are durable (or the
    // pushes failed: availability first).
    const uint64_t store = NextId();
    WaitingStore& w = soft_->waiting[store];
    const size_t copies = static_cast<size_t>(std::max(world_.options().ack_copies, 1));
    w.needed = std::min(copies, m.replicas.size()) - 1;
    w.deadline = now() + 4 * kPushTimeoutMs;
    w.reply = [this, from, req = m.req] {
      if (from == id_) {
        OnStoreRep({req});
      } else {
        Send(from, MStoreRep{req});
      }
    };
    std::vector<replication::Push> pushes =
        soft_->replicator.TakeNow(MessageRef(m.user, m.msg), soft_->membership.view());
    w.outstanding = pushes.size() + (announce ? 1 : 0);
    if (w.needed > w.outstanding) w.needed = w.outstanding;
    for (const replication::Push& p : pushes) {
      Push(p, store, std::binary_search(m.mail_map.begin(), m.mail_map.end(), p.target));
    }
    if (announce) {
      // The durable write first, then the manager learns of the fragment,
      // then the proxy may acknowledge.
      SendReliable(
          {Reliable::kMapUpdate, 0, 0, MMapUpdate{0, m.user, true, Stamp()}, [this, store] {
             auto it = soft_->waiting.find(store);
             if (it == soft_->waiting.end()) return;
             if (--it->second.outstanding == 0 || it->second.needed == 0) Release(store);
           }});
      return;
    }
    if (w.needed == 0 && w.outstanding == 0) Release(store);
  };
  if (soft_->disk_queue.empty()) {
    soft_->disk_done_at = std::max(soft_->disk_done_at, now() + world_.options().disk_ms);
  }
  soft_->disk_queue.push_back(op);
}

void SimNode::DeleteOne(std::string user, uint64_t msg) {
  if (!soft_) return;
  auto f = disk_.messages.find(user);
  if (f == disk_.messages.end()) return;
  auto v = f->second.find(msg);
  if (v == f->second.end() || v->second.tombstone) return;
  ++world_.result().deletes;
  // A replicated tombstone with a newer timestamp.
  v->second.tombstone = true;
  v->second.hlc = std::max(v->second.hlc + 1, Stamp());
  Log(user, msg, v->second);
  world_.OnDeleted(user, msg);
  Watch(user, fmt::format("delete msg {}", msg));
  for (const replication::Push& p :
       soft_->replicator.TakeNow(MessageRef(user, msg), soft_->membership.view())) {
    Push(p, 0);
  }
  const uint64_t stamp = Stamp();  // before the emptiness check (manager/soft_state.h)
  if (!disk_.HoldsLive(user)) {
    soft_->presence.Emptied(user);
    SendReliable({Reliable::kMapUpdate, 0, 0, MMapUpdate{0, user, false, stamp}, nullptr});
  }
  world_.Wake(index_, NextWake());
}

void SimNode::RunDisk() {
  while (!soft_->disk_queue.empty() && now() >= soft_->disk_done_at) {
    std::function<void()> op = std::move(soft_->disk_queue.front());
    soft_->disk_queue.pop_front();
    soft_->disk_done_at = now() + world_.options().disk_ms;
    op();
    if (!soft_) return;
  }
}

// ---- proxy role -------------------------------------------------------

void SimNode::Deliver(const std::string& user, uint64_t msg) {
  if (!soft_) return;
  const uint64_t id = NextId();
  Delivery& d = soft_->deliveries[id];
  d.user = user;
  d.msg = msg;
  d.deadline = now() + world_.options().delivery_deadline_ms;
  SendLookup(id, d);
  world_.Wake(index_, NextWake());
}

void SimNode::SendLookup(uint64_t delivery_id, Delivery& d) {
  d.retry_at = 0;
  d.storing = false;
  d.current_req = NextId();
  d.reply_by = now() + kReplyTimeoutMs;
  req_to_delivery_[d.current_req] = delivery_id;
  NodeId manager = ManagerOf(d.user);
  if (manager == 0) {
    d.retry_at = now() + kRetryPauseMs;
    return;
  }
  if (manager == id_) {
    OnLookup(id_, MLookup{d.current_req, d.user, EntryEpoch(d.user)});
  } else {
    Send(manager, MLookup{d.current_req, d.user, EntryEpoch(d.user)});
  }
}

void SimNode::OnLookupRep(const MLookupRep& m) {
  auto r = req_to_delivery_.find(m.req);
  if (r == req_to_delivery_.end()) return;
  auto it = soft_->deliveries.find(r->second);
  req_to_delivery_.erase(r);
  if (it == soft_->deliveries.end() || it->second.current_req != m.req) return;
  Delivery& d = it->second;
  if (m.state == State::kNotFound) {
    world_.OnDeliveryDone(d.user, d.msg, false);
    soft_->deliveries.erase(it);
    return;
  }
  if (m.state != State::kFound) {
    d.retry_at = now() + kRetryPauseMs;
    return;
  }
  const cluster::View& view = soft_->membership.view();
  cluster::BalancerInput in;
  in.mail_map = m.mail_map;
  in.live = view.ids();
  in.spread = world_.options().spread;
  in.copies = world_.options().replication;
  in.policy = world_.options().policy;
  in.user_hash = Hash64(d.user);
  in.load = [this](NodeId n) { return n == id_ ? Load() : soft_->loads.Estimate(n, now()); };
  std::vector<NodeId> chosen = cluster::ChooseReplicas(in, soft_->rng);
  if (chosen.empty()) {
    d.retry_at = now() + kRetryPauseMs;
    return;
  }
  d.storing = true;
  d.current_req = NextId();
  d.reply_by = now() + kReplyTimeoutMs * 4;
  req_to_delivery_[d.current_req] = it->first;
  MStore store{
      d.current_req, d.user,
      d.msg,         std::binary_search(m.mail_map.begin(), m.mail_map.end(), chosen.front()),
      view.epoch,    chosen,
      m.mail_map};
  if (chosen.front() == id_) {
    OnStore(id_, store);
  } else {
    Send(chosen.front(), store);
  }
}

void SimNode::OnStoreRep(const MStoreRep& m) {
  auto r = req_to_delivery_.find(m.req);
  if (r == req_to_delivery_.end()) return;
  auto it = soft_->deliveries.find(r->second);
  req_to_delivery_.erase(r);
  if (it == soft_->deliveries.end() || it->second.current_req != m.req) return;
  world_.OnDeliveryDone(it->second.user, it->second.msg, true);
  soft_->deliveries.erase(it);
}

void SimNode::RunDeliveries() {
  std::vector<uint64_t> ids;
  for (auto& [id, d] : soft_->deliveries) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = soft_->deliveries.find(id);
    if (it == soft_->deliveries.end()) continue;
    Delivery& d = it->second;
    if (now() >= d.deadline) {
      world_.OnDeliveryDone(d.user, d.msg, false);
      soft_->deliveries.erase(it);
      continue;
    }
    if (!d.retry_at && now() >= d.reply_by && d.storing) {
      // A store with no answer may have happened, with its replica set:
      // trying it elsewhere under the same id could leave a copy a delete
      // misses. The client retries (as the daemon answers 451): a new message.
      world_.OnDeliveryDone(d.user, d.msg, false);
      soft_->deliveries.erase(it);
      continue;
    }
    if ((d.retry_at && now() >= d.retry_at) || (!d.retry_at && now() >= d.reply_by)) {
      SendLookup(id, d);
    }
  }
  std::vector<uint64_t> cids;
  for (auto& [id, c] : soft_->creates) cids.push_back(id);
  for (uint64_t id : cids) {
    auto it = soft_->creates.find(id);
    if (it == soft_->creates.end()) continue;
    Create& c = it->second;
    if (now() >= c.deadline) {
      soft_->creates.erase(it);
      continue;
    }
    if ((c.retry_at && now() >= c.retry_at) || (!c.retry_at && now() >= c.reply_by)) {
      SendCreate(id, c);
    }
  }
}

void SimNode::CreateUser(const std::string& user) {
  if (!soft_) return;
  const uint64_t id = NextId();
  Create& c = soft_->creates[id];
  c.user = user;
  c.deadline = now() + world_.options().delivery_deadline_ms;
  SendCreate(id, c);
  world_.Wake(index_, NextWake());
}

void SimNode::SendCreate(uint64_t create_id, Create& c) {
  c.retry_at = 0;
  c.current_req = NextId();
  c.reply_by = now() + kReplyTimeoutMs;
  req_to_delivery_[c.current_req] = create_id;
  NodeId manager = ManagerOf(c.user);
  if (manager == 0) {
    c.retry_at = now() + kRetryPauseMs;
  } else if (manager == id_) {
    OnCreate(id_, MCreate{c.current_req, c.user, EntryEpoch(c.user)});
  } else {
    Send(manager, MCreate{c.current_req, c.user, EntryEpoch(c.user)});
  }
}

void SimNode::OnCreateRep(const MCreateRep& m) {
  auto r = req_to_delivery_.find(m.req);
  if (r == req_to_delivery_.end()) return;
  auto it = soft_->creates.find(r->second);
  req_to_delivery_.erase(r);
  if (it == soft_->creates.end() || it->second.current_req != m.req) return;
  if (m.result == CreateResult::kRetry) {
    it->second.retry_at = now() + kRetryPauseMs;
    return;
  }
  // kExists after a retry means an earlier attempt created the user.
  world_.OnUserCreated(it->second.user);
  soft_->creates.erase(it);
}

// ---- timers -----------------------------------------------------------

void SimNode::Tick() {
  if (!soft_ || paused(now())) return;
  soft_->membership.OnTick(now());
  AfterMembership();
  if (!soft_) return;
  RunDisk();
  if (!soft_) return;
  RunReliable();
  RunPushes();
  RunDeliveries();
  RunParked(false);
  if (world_.options().upkeep && soft_->upkeep.TakeRound(now())) RunUpkeep();
  if (now() >= soft_->next_gossip) {
    soft_->next_gossip = now() + kGossipMs;
    for (const cluster::Member& m : soft_->membership.view().members) {
      if (m.id != id_) Send(m.id, MGossip{});
    }
  }
  world_.Wake(index_, NextWake());
}

int64_t SimNode::NextWake() const {
  if (!soft_) return INT64_MAX;
  int64_t t = std::min(soft_->membership.NextTimerMs(), soft_->next_gossip);
  for (const auto& [id, r] : soft_->reliable) t = std::min(t, r.next_send);
  for (const auto& [id, d] : soft_->deliveries) {
    t = std::min({t, d.deadline, d.retry_at ? d.retry_at : d.reply_by});
  }
  for (const auto& [id, c] : soft_->creates) {
    t = std::min({t, c.deadline, c.retry_at ? c.retry_at : c.reply_by});
  }
  for (const Parked& p : soft_->parked) t = std::min(t, p.deadline);
  t = std::min(t, soft_->replicator.NextDueMs(soft_->membership.view()));
  for (const auto& [id, p] : soft_->pushes) t = std::min(t, p.deadline);
  for (const auto& [id, w] : soft_->waiting) t = std::min(t, w.deadline);
  if (!soft_->disk_queue.empty()) t = std::min(t, soft_->disk_done_at);
  if (world_.options().upkeep) t = std::min(t, soft_->upkeep.NextMs());
  return std::max(t, now());
}

}  // namespace porcupine::sim
