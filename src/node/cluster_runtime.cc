#include "node/cluster_runtime.h"

#include <spdlog/spdlog.h>

#include <charconv>

#include "manager/rebuild.h"
#include "rpc/convert.h"

namespace porcupine::node {
namespace {

constexpr const char* kLamportMeta = "lamport";

std::string Describe(const cluster::View& v) {
  std::string members;
  for (const cluster::Member& m : v.members) {
    members += (members.empty() ? "" : " ") + m.name + (v.Joined(m.id) ? "*" : "");
  }
  return fmt::format("view {:x} ({} members: {})", v.epoch, v.members.size(), members);
}

}  // namespace

ClusterRuntime::ClusterRuntime(const ClusterRuntimeOptions& options, asio::io_context& io,
                               cluster::Member self, store::Store& store, rpc::Client& client,
                               manager::LocalManager& manager, Hlc& hlc,
                               std::function<uint64_t()> self_load)
    : options_(options),
      io_(io),
      strand_(asio::make_strand(io)),
      self_(std::move(self)),
      store_(store),
      client_(client),
      manager_(manager),
      hlc_(hlc),
      self_load_(std::move(self_load)),
      origin_(std::chrono::steady_clock::now()),
      loads_(options.load_stale.count()) {
  auto empty = std::make_shared<cluster::View>();
  empty->user_map = cluster::UserMap(options_.membership.buckets, 0);
  view_ = empty;
  announced_.user_map = empty->user_map;
}

ClusterRuntime::~ClusterRuntime() { Join(); }

void ClusterRuntime::Join() {
  Stop();
  scan_pool_.join();
  persist_pool_.join();
}

int64_t ClusterRuntime::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               origin_)
      .count();
}

Status ClusterRuntime::Start(const std::string& address, uint64_t incarnation) {
  self_.address = address;
  self_.incarnation = incarnation;
  Result<std::optional<std::string>> floor = store_.GetMeta(kLamportMeta);
  if (!floor.ok()) return floor.status();
  if (floor->has_value()) {
    const std::string& v = **floor;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), persisted_lamport_);
    if (ec != std::errc() || p != v.data() + v.size()) {
      return Status::Corruption("store: bad lamport floor '" + v + "'");
    }
  }
  // A node whose data directory was wiped has lost its floor: the wall clock
  // in seconds keeps its new epochs above the ones it made before (rounds are
  // far rarer than one a second).
  persisted_lamport_ =
      std::max<uint32_t>(persisted_lamport_, static_cast<uint32_t>(SystemNowMs() / 1000));
  // The seed is this process's own: jitter differs between nodes and starts.
  membership_.emplace(options_.membership, self_, options_.seeds, self_.incarnation,
                      persisted_lamport_);
  asio::post(strand_, [this] {
    membership_->Start(NowMs());
    Flush();
    asio::co_spawn(strand_, TimerLoop(), asio::detached);
  });
  asio::co_spawn(io_, GossipLoop(), asio::detached);
  return Status::Ok();
}

void ClusterRuntime::Stop() {
  if (stopped_.exchange(true)) return;
  view_changed_.Notify();  // WaitNewer gives up
  asio::post(strand_, [this] { Nudge(); });
  scan_pool_.stop();
}

void ClusterRuntime::Nudge() {
  if (timer_) timer_->cancel();
}

asio::awaitable<void> ClusterRuntime::TimerLoop() {
  // The timer lives in this frame, which the io_context destroys with its
  // pending work: no io object outlives the io_context.
  asio::steady_timer timer(strand_);
  timer_ = &timer;
  while (!stopped_) {
    const int64_t now = NowMs();
    const int64_t next = std::min(membership_->NextTimerMs(), now + 1000);
    timer.expires_at(origin_ + std::chrono::milliseconds(std::max(next, now)));
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_) break;
    membership_->OnTick(NowMs());
    Flush();
  }
  timer_ = nullptr;
}

void ClusterRuntime::OnMessage(cluster::Message message) {
  {
    std::lock_guard lock(mu_);
    seen_[message.from.id] = message.from;
  }
  asio::post(strand_, [this, m = std::move(message)] {
    if (stopped_ || !membership_) return;
    membership_->OnMessage(NowMs(), m);
    Flush();
    Nudge();  // the next timer may be earlier now
  });
}

void ClusterRuntime::Unreachable(NodeId node) {
  asio::post(strand_, [this, node] {
    if (stopped_ || !membership_) return;
    membership_->OnUnreachable(NowMs(), node);
    Flush();
    Nudge();
  });
}

Status ClusterRuntime::Remove(NodeId node) {
  if (node == self_.id) {
    return Status::InvalidArgument("a node cannot remove itself; ask another node");
  }
  asio::post(strand_, [this, node] {
    if (stopped_ || !membership_) return;
    membership_->Remove(NowMs(), node);
    Flush();
    Nudge();
  });
  return Status::Ok();
}

// Messages leave only once the Lamport counter they may carry is durable
// (Membership's REQUIRES). The synced write runs on persist_pool_, never on
// the strand; messages made meanwhile wait in held_. A failed write drops
// them, as a lossy network would (the protocol resends on its timers), and
// is tried again at the next Flush.
void ClusterRuntime::Persist() {
  if (persisting_) return;  // its completion comes back here
  const uint32_t lamport = membership_->lamport();
  if (lamport <= persisted_lamport_) {
    for (cluster::Outgoing& out : held_) Send(std::move(out));
    held_.clear();
    return;
  }
  persisting_ = true;
  asio::post(persist_pool_, [this, lamport] {
    Status st = store_.PutMeta(kLamportMeta, std::to_string(lamport));
    asio::post(strand_, [this, lamport, st = std::move(st)] {
      persisting_ = false;
      if (stopped_ || !membership_) return;
      if (!st.ok()) {
        persist_failures_.fetch_add(1);
        spdlog::error("cannot persist the membership epoch floor {}: {}; {} messages dropped",
                      lamport, st.ToString(), held_.size());
        held_.clear();
        return;
      }
      persisted_lamport_ = std::max(persisted_lamport_, lamport);
      Persist();  // sends, or persists a counter that moved on meanwhile
    });
  });
}

void ClusterRuntime::Flush() {
  for (cluster::Outgoing& out : membership_->TakeOutbox()) held_.push_back(std::move(out));
  Persist();
  if (membership_->removed() && !removed_.exchange(true)) {
    spdlog::error("this node was removed from the cluster by the operator; it serves no mail");
    // No view any more: every request on this node answers "try later", and
    // clients go to the nodes still in the cluster.
    auto none = std::make_shared<cluster::View>();
    none->user_map = cluster::UserMap(options_.membership.buckets, 0);
    {
      std::lock_guard lock(mu_);
      view_ = none;
    }
    view_changed_.Notify();
  }
  if (membership_->TakeViewChanged() && !removed_) Publish(membership_->view());
}

void ClusterRuntime::Send(cluster::Outgoing out) {
  rpc::MembershipMessage req;
  *req.mutable_header() = Header();
  rpc::ToProto(out.message, &req);
  auto call = [](ClusterRuntime* self, std::string address,
                 rpc::MembershipMessage req) -> asio::awaitable<void> {
    Result<rpc::Ack> r =
        co_await self->client_.Call(address, self->options_.membership_rpc_timeout.count(),
                                    std::move(req), &rpc::AsyncStub::Membership);
    if (r.ok()) self->ObserveLoad(r->header().from(), r->header().load());
  };
  asio::co_spawn(io_, call(this, std::move(out.address), std::move(req)), asio::detached);
}

void ClusterRuntime::Publish(const cluster::View& view) {
  auto snapshot = std::make_shared<const cluster::View>(view);
  {
    std::lock_guard lock(mu_);
    view_ = snapshot;
    ++views_installed_;
    for (const cluster::Member& m : view.members) seen_[m.id] = m;
  }
  view_changed_.Notify();
  spdlog::info("installed {}", Describe(view));
  manager_.InstallView(view);
  for (auto& fn : observers_) fn(view);
  asio::post(scan_pool_, [this, snapshot] { Announce(snapshot); });
}

void ClusterRuntime::Announce(std::shared_ptr<const cluster::View> view) {
  if (stopped_) return;
  std::vector<uint32_t> buckets = manager::BucketsToAnnounce(announced_, *view, self_.id);
  announced_ = *view;
  const auto started = std::chrono::steady_clock::now();
  size_t users = 0;
  Result<std::vector<manager::BucketAnnouncement>> scanned =
      manager::ScanAnnouncements(store_, *view, buckets, hlc_.Now(), &users);
  if (!scanned.ok()) {
    // Announcing less than we hold would hide mail: announce nothing, so the
    // managers keep waiting (lookups of unknown users answer "try later").
    spdlog::error("reconstruction scan failed: {}", scanned.status().ToString());
    return;
  }
  auto chunks = manager::MakeChunks(*view, std::move(*scanned), options_.rebuild_chunk_users);
  spdlog::info("reconstruction for view {:x}: {} buckets, {} users scanned in {} ms", view->epoch,
               buckets.size(), users,
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count());
  for (auto& [manager, set] : chunks) {
    if (manager == self_.id) {
      for (const manager::RebuildChunk& c : set) manager_.ApplyRebuild(self_.id, c);
    } else {
      asio::co_spawn(io_, SendChunks(manager, std::move(set)), asio::detached);
    }
  }
}

asio::awaitable<void> ClusterRuntime::SendChunks(NodeId manager,
                                                 std::vector<manager::RebuildChunk> chunks) {
  asio::steady_timer pause(io_);
  for (const manager::RebuildChunk& chunk : chunks) {
    rpc::RebuildChunkP proto;
    rpc::ToProto(chunk, &proto);
    for (;;) {
      // Re-sent until the manager acknowledges or leaves the view.
      std::shared_ptr<const cluster::View> view = Current();
      const cluster::Member* m = view->Find(manager);
      if (stopped_ || !m) co_return;
      *proto.mutable_header() = Header();
      Result<rpc::Ack> r = co_await client_.Call(m->address, options_.rpc_timeout.count(), proto,
                                                 &rpc::AsyncStub::Rebuild);
      if (r.ok()) ObserveLoad(manager, r->header().load());
      if (r.ok() && rpc::StatusOf(r->header()).ok()) break;
      announcements_failed_.fetch_add(1);
      pause.expires_after(options_.announce_retry);
      asio::error_code ec;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    announcements_sent_.fetch_add(1);
  }
}

asio::awaitable<void> ClusterRuntime::GossipLoop() {
  asio::steady_timer timer(io_);
  auto gossip = [](ClusterRuntime* self, std::string address) -> asio::awaitable<void> {
    rpc::GossipRequest req;
    *req.mutable_header() = self->Header();
    Result<rpc::Ack> r =
        co_await self->client_.Call(address, self->options_.membership_rpc_timeout.count(),
                                    std::move(req), &rpc::AsyncStub::Gossip);
    if (r.ok()) self->ObserveLoad(r->header().from(), r->header().load());
  };
  while (!stopped_) {
    timer.expires_after(options_.gossip_interval);
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_) break;
    std::shared_ptr<const cluster::View> view = Current();
    for (const cluster::Member& m : view->members) {
      if (m.id != self_.id) asio::co_spawn(io_, gossip(this, m.address), asio::detached);
    }
  }
}

std::shared_ptr<const cluster::View> ClusterRuntime::Current() const {
  std::lock_guard lock(mu_);
  return view_;
}

asio::awaitable<void> ClusterRuntime::WaitNewer(cluster::Epoch epoch,
                                                std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Read before the check: a view installed (or a Stop) after the check
    // notifies after, and moves the generation away from `seen`.
    const uint64_t seen = view_changed_.generation();
    if (stopped_ || Current()->epoch > epoch) co_return;
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) co_return;
    co_await view_changed_.WaitChange(seen, left);
  }
}

void ClusterRuntime::ObserveLoad(NodeId node, uint64_t load) {
  if (node == 0 || node == self_.id) return;
  std::lock_guard lock(mu_);
  loads_.Update(node, load, NowMs());
}

uint64_t ClusterRuntime::LoadOf(NodeId node) {
  if (node == self_.id) return self_load_();
  std::lock_guard lock(mu_);
  return loads_.Estimate(node, NowMs());
}

rpc::RequestHeader ClusterRuntime::Header(uint64_t entry_epoch) const {
  rpc::RequestHeader h;
  h.set_version(rpc::kWireVersion);
  h.set_from(self_.id);
  h.set_view_epoch(Current()->epoch);
  h.set_entry_epoch(entry_epoch);
  h.set_load(self_load_());
  return h;
}

void ClusterRuntime::FillReply(const Status& status, rpc::ReplyHeader* h) const {
  h->set_from(self_.id);
  h->set_view_epoch(Current()->epoch);
  h->set_load(self_load_());
  rpc::SetStatus(status, h);
}

ClusterRuntime::Status_ ClusterRuntime::status() {
  std::shared_ptr<const cluster::View> view = Current();
  Status_ out;
  out.epoch = view->epoch;
  out.buckets = view->user_map.buckets();
  out.self = self_.id;
  out.removed = removed_.load();
  out.announcements_sent = announcements_sent_.load();
  out.announcements_failed = announcements_failed_.load();
  out.epoch_floor_write_failures = persist_failures_.load();
  std::lock_guard lock(mu_);
  out.views_installed = views_installed_;
  const int64_t now = NowMs();
  for (const cluster::Member& m : view->members) {
    MemberStatus s{m, "up", std::nullopt, view->user_map.CountOf(m.id)};
    s.load = m.id == self_.id ? std::optional<uint64_t>(self_load_()) : loads_.Get(m.id, now);
    out.members.push_back(std::move(s));
  }
  for (const auto& [id, m] : seen_) {
    if (view->Contains(id)) continue;
    out.members.push_back({m, view->removed.count(id) ? "removed" : "down", std::nullopt, 0});
  }
  return out;
}

std::optional<NodeId> ClusterRuntime::Resolve(const std::string& name_or_id) {
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, m] : seen_) {
      if (m.name == name_or_id) return id;
    }
  }
  uint32_t id = 0;
  const char* b = name_or_id.data();
  const char* e = b + name_or_id.size();
  if (name_or_id.size() == 8 && std::from_chars(b, e, id, 16).ptr == e && id != 0) return id;
  if (!name_or_id.empty() && std::from_chars(b, e, id, 10).ptr == e && id != 0) return id;
  return std::nullopt;
}

}  // namespace porcupine::node
