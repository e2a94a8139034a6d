#include "node/directory.h"

#include <spdlog/spdlog.h>

#include "core/async.h"
#include "core/hash.h"

namespace porcupine::node {

RemotePeer* ClusterDirectory::Peer(NodeId node) {
  if (node == self()) return nullptr;
  std::shared_ptr<const cluster::View> view = runtime_.Current();
  const cluster::Member* m = view->Find(node);
  if (!m) return nullptr;
  std::lock_guard lock(mu_);
  auto it = peers_.find(node);
  if (it == peers_.end()) {
    it = peers_.emplace(node, std::make_unique<RemotePeer>(runtime_, node, m->address)).first;
  } else {
    it->second->SetAddress(m->address);
  }
  return it->second.get();
}

manager::UserManager* ClusterDirectory::ManagerOn(NodeId node) {
  if (node == self()) return &manager_;
  return Peer(node);
}

mail::FragmentStore* ClusterDirectory::FragmentsOn(NodeId node) {
  if (node == self()) return fragments_;
  return Peer(node);
}

asio::awaitable<Status> ProfileReplicas::WriteLocal(store::Profile profile) {
  const store::Bucket bucket = BucketOf(profile.user(), store_.node_meta().buckets());
  Result<std::optional<store::Profile>> held = store_.GetProfile(bucket, profile.user());
  if (!held.ok()) co_return held.status();
  if (held->has_value() && (*held)->hlc() >= profile.hlc()) co_return Status::Ok();
  store::Batch batch;
  batch.PutProfile(bucket, profile);
  auto submit = [this, b = std::move(batch)](auto done) mutable {
    store_.Submit(std::move(b), done);
  };
  co_return co_await AwaitCallback<Status>(std::move(submit));
}

asio::awaitable<Status> ProfileReplicas::Write(store::Profile profile) {
  PORCUPINE_CO_RETURN_IF_ERROR(co_await WriteLocal(profile));
  std::shared_ptr<const cluster::View> view = runtime_->Current();
  std::vector<asio::awaitable<Status>> copies;
  std::vector<std::string> names;
  for (const cluster::Member& m : view->members) {
    RemotePeer* peer = directory_->Peer(m.id);
    if (!peer) continue;
    copies.push_back(peer->PutProfile(profile));
    names.push_back(m.name);
  }
  std::vector<Status> results = co_await WhenAll(std::move(copies));
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i].ok()) continue;
    // Availability first: the change is durable here; the member learns it
    // when it next announces or (replication issue) from the update log.
    copies_failed_.fetch_add(1);
    spdlog::warn("profile of {}: copy to {} failed: {}", profile.user(), names[i],
                 results[i].ToString());
  }
  co_return Status::Ok();
}

}  // namespace porcupine::node
