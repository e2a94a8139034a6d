// Where the data path finds a node's manager role and fragments: this node's
// own objects, or a RemotePeer per other member of the current view.
//
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "mail/fragments.h"
#include "manager/local_manager.h"
#include "manager/router.h"
#include "node/cluster_runtime.h"
#include "node/remote.h"
#include "replication/sink.h"

namespace porcupine::node {

class ClusterDirectory : public manager::ManagerDirectory, public mail::NodeDirectory {
 public:
  // Every reference must outlive the directory; SetLocalFragments before use.
  ClusterDirectory(ClusterRuntime& runtime, manager::LocalManager& manager)
      : runtime_(runtime), manager_(manager) {}
  void SetLocalFragments(mail::LocalFragments* fragments) { fragments_ = fragments; }

  manager::UserManager* ManagerOn(NodeId node) override;
  NodeId self() const override { return runtime_.self().id; }
  mail::FragmentStore* FragmentsOn(NodeId node) override;
  uint64_t LoadOf(NodeId node) override { return runtime_.LoadOf(node); }
  // Another member, or nullptr when `node` is self or not a member. Peer
  // objects live as long as the directory.
  RemotePeer* Peer(NodeId node);

 private:
  ClusterRuntime& runtime_;
  manager::LocalManager& manager_;
  mail::LocalFragments* fragments_ = nullptr;
  std::mutex mu_;
  std::map<NodeId, std::unique_ptr<RemotePeer>> peers_;  // guarded by mu_
};

// Writes profiles to this node's store and, through the replication
// manager, to every other member (manager::ProfileWriter): the profile and
// its log entry in one batch, pushed at once, retried until every member
// has it.
class ProfileReplicas : public manager::ProfileWriter {
 public:
  explicit ProfileReplicas(store::Store& store) : store_(store) {}
  // REQUIRES: called once before Write (the manager that uses this writer is
  // built before the runtime and the replication manager exist).
  void Attach(ClusterRuntime* runtime, replication::Sink* replication) {
    runtime_ = runtime;
    replication_ = replication;
  }
  asio::awaitable<Status> Write(store::Profile profile) override;
  // Stores the merge of `profile` and the copy held here
  // (store/profile_merge.h) unless that is the copy held; OK either way.
  asio::awaitable<Status> WriteLocal(store::Profile profile);
  uint64_t copies_failed() const { return copies_failed_.load(); }

 private:
  asio::awaitable<Status> Commit(store::Batch batch);
  store::Store& store_;
  ClusterRuntime* runtime_ = nullptr;
  replication::Sink* replication_ = nullptr;
  std::atomic<uint64_t> copies_failed_{0};
};

}  // namespace porcupine::node
