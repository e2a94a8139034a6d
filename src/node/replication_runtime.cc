#include "node/replication_runtime.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/async.h"
#include "core/hash.h"
#include "replication/log_record.h"
#include "rpc/convert.h"

namespace porcupine::node {

using replication::ObjectRef;

ReplicationRuntime::ReplicationRuntime(const ReplicationRuntimeOptions& options,
                                       asio::io_context& io, store::Store& store,
                                       ClusterRuntime& cluster, ClusterDirectory& directory)
    : options_(options),
      io_(io),
      store_(store),
      cluster_(cluster),
      directory_(directory),
      buckets_(store.node_meta().buckets()),
      replicator_(options.core) {}

ReplicationRuntime::~ReplicationRuntime() { Stop(); }

int64_t ReplicationRuntime::NowMs() const { return SystemNowMs(); }

Status ReplicationRuntime::Start() {
  std::vector<replication::Entry> entries;
  PORCUPINE_RETURN_IF_ERROR(store_.ScanLog(
      [&](const store::LogRecord& r) { entries.push_back(replication::FromRecord(r)); }));
  {
    std::lock_guard lock(mu_);
    for (replication::Entry& e : entries) replicator_.Add(std::move(e), NowMs());
  }
  if (!entries.empty()) {
    spdlog::info("replication: {} unretired updates in the log; pushing them again",
                 entries.size());
  }
  asio::co_spawn(io_, Pump(), asio::detached);
  return Status::Ok();
}

void ReplicationRuntime::Stop() { stopped_ = true; }

void ReplicationRuntime::OnView(const cluster::View& view) {
  std::vector<std::pair<ObjectRef, std::vector<NodeId>>> retired;
  {
    std::lock_guard lock(mu_);
    for (ObjectRef& o : replicator_.OnView(view, NowMs())) {
      std::vector<NodeId> told;
      auto it = told_.find(o);
      if (it != told_.end()) {
        told.assign(it->second.begin(), it->second.end());
        told_.erase(it);
      }
      retired.emplace_back(std::move(o), std::move(told));
    }
  }
  for (const auto& [o, told] : retired) Retired(o, UINT64_MAX, told);
}

void ReplicationRuntime::Track(replication::Entry entry) {
  std::lock_guard lock(mu_);
  replicator_.Add(std::move(entry), NowMs());
}

void ReplicationRuntime::OnRetire(const std::vector<std::pair<ObjectRef, uint64_t>>& objects) {
  for (const auto& [o, hlc] : objects) {
    bool dropped = false;
    {
      std::lock_guard lock(mu_);
      dropped = replicator_.OnRetire(o, hlc);
    }
    if (dropped) Retired(o, hlc, {});
  }
}

void ReplicationRuntime::Retired(const ObjectRef& object, uint64_t hlc,
                                 const std::vector<NodeId>& told) {
  // The log entry goes; a crash before this write only means a push again.
  replication::Entry e;
  e.object = object;
  store::Batch batch;
  batch.DeleteLog(BucketOf(object.user, buckets_), replication::ToRecord(e));
  store_.Submit(std::move(batch), [](Status st) {
    if (!st.ok()) spdlog::warn("replication: cannot delete a retired log entry: {}", st.ToString());
  });
  if (told.empty()) return;
  auto retire = [](ReplicationRuntime* self, NodeId node,
                   rpc::RetireRequest req) -> asio::awaitable<void> {
    if (RemotePeer* peer = self->directory_.Peer(node)) (void)co_await peer->Retire(std::move(req));
  };
  rpc::RetireRequest req;
  rpc::ObjectP* p = req.add_objects();
  p->set_kind(static_cast<uint32_t>(object.kind));
  p->set_user(object.user);
  p->set_folder(object.folder);
  p->set_id(object.id);
  p->set_hlc(hlc);
  for (NodeId n : told) asio::co_spawn(io_, retire(this, n, req), asio::detached);
}

asio::awaitable<bool> ReplicationRuntime::PushOne(replication::Push push, bool in_map) {
  const ObjectRef& o = push.object;
  const store::Bucket bucket = BucketOf(o.user, buckets_);
  rpc::ReplicaUpdate req;
  req.set_kind(static_cast<uint32_t>(o.kind));
  req.set_user(o.user);
  req.set_in_map(in_map);
  bool gone = false;
  Status read;
  std::vector<NodeId> takeover;
  if (o.kind == ObjectRef::Kind::kMessage) {
    std::optional<store::MessageId> id = store::MessageId::FromBytes(o.id);
    Result<std::optional<store::MessageMeta>> meta =
        id ? store_.GetMessage(bucket, o.user, o.folder, *id)
           : Result<std::optional<store::MessageMeta>>(Status::InvalidArgument("bad id"));
    read = meta.status();
    if (meta.ok() && !meta->has_value()) gone = true;
    if (meta.ok() && meta->has_value()) {
      // The current version: a message deleted since travels as its tombstone.
      *req.mutable_meta() = **meta;
      if (!(*meta)->tombstone()) {
        Result<std::string> body = store_.ReadBody(*id);
        read = body.status();
        if (body.ok()) req.set_body(std::move(*body));
      }
      for (uint32_t r : (*meta)->replicas()) {
        if (r != cluster_.self().id && r != push.target) takeover.push_back(r);
      }
    }
  } else {
    Result<std::optional<store::Profile>> p = store_.GetProfile(bucket, o.user);
    read = p.status();
    if (p.ok() && !p->has_value()) gone = true;
    if (p.ok() && p->has_value()) *req.mutable_profile() = **p;
  }
  for (NodeId n : takeover) req.add_takeover(n);
  Result<uint64_t> held = read.ok() ? Result<uint64_t>(UINT64_MAX) : Result<uint64_t>(read);
  if (read.ok() && !gone) {
    pushes_.fetch_add(1);
    RemotePeer* peer = directory_.Peer(push.target);
    held = Status::Unavailable("not a member");
    if (peer) held = co_await peer->Replicate(std::move(req));
  }
  replication::Replicator::Outcome outcome = replication::Replicator::Outcome::kPending;
  std::vector<NodeId> told;
  {
    std::lock_guard lock(mu_);
    if (held.ok()) {
      if (!takeover.empty()) told_[o].insert(push.target);
      outcome = replicator_.OnAck(o, push.target, *held, NowMs());
      if (outcome == replication::Replicator::Outcome::kRetired) {
        auto it = told_.find(o);
        if (it != told_.end()) {
          told.assign(it->second.begin(), it->second.end());
          told_.erase(it);
        }
      }
    } else {
      push_failures_.fetch_add(1);
      replicator_.OnFailure(o, push.target, NowMs());
    }
  }
  if (outcome == replication::Replicator::Outcome::kRetired) Retired(o, push.hlc, told);
  co_return held.ok();
}

asio::awaitable<std::vector<size_t>> ReplicationRuntime::Replicate(
    std::vector<replication::Update> updates) {
  std::shared_ptr<const cluster::View> view = cluster_.Current();
  std::vector<asio::awaitable<bool>> pushes;
  std::vector<size_t> owner;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < updates.size(); ++i) {
      replicator_.Add(updates[i].entry, NowMs());
      for (replication::Push& p : replicator_.TakeNow(updates[i].entry.object, *view)) {
        const std::vector<NodeId>& map = updates[i].mail_map;
        const bool in_map = std::find(map.begin(), map.end(), p.target) != map.end();
        pushes.push_back(PushOne(std::move(p), in_map));
        owner.push_back(i);
      }
    }
  }
  std::vector<bool> acked = co_await WhenAll(std::move(pushes));
  std::vector<size_t> counts(updates.size(), 0);
  for (size_t k = 0; k < acked.size(); ++k) counts[owner[k]] += acked[k] ? 1 : 0;
  co_return counts;
}

asio::awaitable<void> ReplicationRuntime::Pump() {
  asio::steady_timer timer(io_);
  auto background = [](ReplicationRuntime* self, replication::Push p) -> asio::awaitable<void> {
    (void)co_await self->PushOne(std::move(p), false);
    self->in_flight_.fetch_sub(1);
  };
  while (!stopped_) {
    timer.expires_after(options_.tick);
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_) break;
    std::shared_ptr<const cluster::View> view = cluster_.Current();
    if (view->epoch == 0) continue;
    const size_t busy = in_flight_.load();
    if (busy >= options_.max_in_flight) continue;
    std::vector<replication::Push> due;
    {
      std::lock_guard lock(mu_);
      due = replicator_.TakeDue(NowMs(), *view, options_.max_in_flight - busy);
    }
    for (replication::Push& p : due) {
      in_flight_.fetch_add(1);
      asio::co_spawn(io_, background(this, std::move(p)), asio::detached);
    }
  }
}

bool ReplicationRuntime::Pending(const ObjectRef& object) {
  std::lock_guard lock(mu_);
  return replicator_.Find(object) != nullptr;
}

ReplicationRuntime::Stats ReplicationRuntime::stats() {
  std::lock_guard lock(mu_);
  return {replicator_.size(), replicator_.BacklogByPeer(), pushes_.load(), push_failures_.load()};
}

}  // namespace porcupine::node
