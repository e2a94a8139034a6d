// This node's answers to inter-node calls (rpc::Handler): membership
// messages to the runtime, manager calls to the local manager, fragment
// calls to the local fragments. Every request's load is recorded; every
// reply carries this node's view, load and status. Malformed requests get
// InvalidArgument and change nothing.
#pragma once

#include "mail/fragments.h"
#include "manager/local_manager.h"
#include "node/cluster_runtime.h"
#include "node/directory.h"
#include "rpc/server.h"

namespace porcupine::node {

class ClusterService : public rpc::Handler {
 public:
  // Every reference must outlive the service.
  ClusterService(ClusterRuntime& runtime, manager::LocalManager& manager,
                 mail::LocalFragments& fragments, ProfileReplicas& profiles, uint32_t buckets)
      : runtime_(runtime),
        manager_(manager),
        fragments_(fragments),
        profiles_(profiles),
        buckets_(buckets) {}

  asio::awaitable<void> Membership(const rpc::MembershipMessage& req, rpc::Ack* rep) override;
  asio::awaitable<void> Gossip(const rpc::GossipRequest& req, rpc::Ack* rep) override;
  asio::awaitable<void> LookupUser(const rpc::LookupRequest& req, rpc::LookupReply* rep) override;
  asio::awaitable<void> UpdateMailMap(const rpc::MailMapUpdate& req, rpc::Ack* rep) override;
  asio::awaitable<void> ManageUser(const rpc::UserOp& req, rpc::Ack* rep) override;
  asio::awaitable<void> ListUsers(const rpc::ListUsersRequest& req,
                                  rpc::ListUsersReply* rep) override;
  asio::awaitable<void> Rebuild(const rpc::RebuildChunkP& req, rpc::Ack* rep) override;
  asio::awaitable<void> StoreMessages(const rpc::StoreRequest& req, rpc::Ack* rep) override;
  asio::awaitable<void> ListFragment(const rpc::ListRequest& req, rpc::ListReply* rep) override;
  asio::awaitable<void> FetchMessage(const rpc::FetchRequest& req, rpc::FetchReply* rep) override;
  asio::awaitable<void> DeleteMessages(const rpc::DeleteRequest& req, rpc::Ack* rep) override;
  asio::awaitable<void> SetFlags(const rpc::FlagsRequest& req, rpc::FlagsReply* rep) override;
  asio::awaitable<void> WatchVersions(const rpc::WatchRequest& req, rpc::WatchReply* rep) override;
  asio::awaitable<void> Folders(const rpc::FolderRequest& req, rpc::FolderReply* rep) override;
  asio::awaitable<void> Replicate(const rpc::ReplicaUpdate& req, rpc::ReplicaAck* rep) override;
  asio::awaitable<void> Retire(const rpc::RetireRequest& req, rpc::Ack* rep) override;
  asio::awaitable<void> AntiEntropy(const rpc::AntiEntropyRequest& req,
                                    rpc::AntiEntropyReply* rep) override;
  asio::awaitable<void> AntiEntropyCompare(const rpc::AntiEntropyCompareRequest& req,
                                           rpc::AntiEntropyCompareReply* rep) override;
  void SetAntiEntropy(class AntiEntropyRuntime* a) { anti_entropy_ = a; }
  // Set before serving (the replication runtime is built after this service).
  void SetReplication(class ReplicationRuntime* r) { replication_ = r; }

 private:
  void Heard(const rpc::RequestHeader& h) { runtime_.ObserveLoad(h.from(), h.load()); }

  ClusterRuntime& runtime_;
  manager::LocalManager& manager_;
  mail::LocalFragments& fragments_;
  ProfileReplicas& profiles_;
  const uint32_t buckets_;
  class ReplicationRuntime* replication_ = nullptr;
  class AntiEntropyRuntime* anti_entropy_ = nullptr;
};

}  // namespace porcupine::node
