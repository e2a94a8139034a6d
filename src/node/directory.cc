#include "node/directory.h"

#include <spdlog/spdlog.h>

#include "core/async.h"
#include "core/hash.h"
#include "replication/log_record.h"
#include "store/profile_merge.h"

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
  // Both copies count: two sides of a partition may each have changed it.
  // Nothing to write when the copy held has it all; otherwise the merge is
  // made again at commit, with the copy held then.
  if (held->has_value() &&
      store::MergeProfiles(**held, profile).SerializeAsString() == (*held)->SerializeAsString()) {
    co_return Status::Ok();
  }
  store::Batch batch;
  batch.MergeProfile(bucket, profile);
  co_return co_await Commit(std::move(batch));
}

asio::awaitable<Status> ProfileReplicas::Commit(store::Batch batch) {
  auto submit = [this, b = std::move(batch)](auto done) mutable {
    store_.Submit(std::move(b), done);
  };
  co_return co_await AwaitCallback<Status>(std::move(submit));
}

asio::awaitable<Status> ProfileReplicas::Write(store::Profile profile) {
  const store::Bucket bucket = BucketOf(profile.user(), store_.node_meta().buckets());
  replication::Update u;
  u.entry.object = {replication::ObjectRef::Kind::kProfile, profile.user(), 0, ""};
  u.entry.hlc = profile.hlc();
  u.entry.created_ms = SystemNowMs();
  u.entry.bytes = profile.ByteSizeLong();
  std::shared_ptr<const cluster::View> view = runtime_->Current();
  for (const cluster::Member& m : view->members) {
    if (m.id != runtime_->self().id) u.entry.remaining.insert(m.id);
  }
  store::Batch batch;
  // Merged with the copy held at commit: a replica's copy that arrived since
  // the manager read its own (the other side of a partition) is kept.
  batch.MergeProfile(bucket, profile);
  if (!u.entry.remaining.empty()) batch.PutLog(bucket, replication::ToRecord(u.entry));
  PORCUPINE_CO_RETURN_IF_ERROR(co_await Commit(std::move(batch)));
  if (u.entry.remaining.empty()) co_return Status::Ok();
  const size_t members = u.entry.remaining.size();
  std::vector<replication::Update> one;
  one.push_back(std::move(u));
  std::vector<size_t> acked = co_await replication_->Replicate(std::move(one));
  // Availability first: the change is durable here; the other copies follow
  // from the update log.
  if (acked[0] < members) copies_failed_.fetch_add(members - acked[0]);
  co_return Status::Ok();
}

}  // namespace porcupine::node
