// Another node as the data path sees it: its manager role and its fragments,
// reached over RPC (rpc/cluster.proto). Every call carries this node's
// header; every reply's load goes to the load table; a call that cannot
// reach the node tells membership (an RPC timeout is a failure signal,
// PAPER.md §5.1).
//
// Thread-safe.
#pragma once

#include <mutex>
#include <string>

#include "mail/fragments.h"
#include "manager/user_manager.h"
#include "node/cluster_runtime.h"
#include "replication/anti_entropy.h"

namespace porcupine::node {

class RemotePeer : public manager::UserManager, public mail::FragmentStore {
 public:
  // runtime must outlive the peer.
  RemotePeer(ClusterRuntime& runtime, NodeId id, std::string address);

  NodeId id() const { return id_; }
  // The node moved (restarted on another port): later calls go there.
  void SetAddress(const std::string& address);

  // manager::UserManager
  asio::awaitable<Result<manager::UserInfo>> LookupUser(std::string user, uint64_t entry_epoch,
                                                        bool with_credentials) override;
  asio::awaitable<Status> UpdateMailMap(std::string user, NodeId node, bool add, uint64_t stamp,
                                        uint64_t entry_epoch) override;
  asio::awaitable<Status> ManageUser(manager::UserOpKind kind, std::string user,
                                     manager::PasswordSecrets secrets,
                                     uint64_t entry_epoch) override;
  asio::awaitable<Result<std::vector<std::string>>> ListUsers() override;
  asio::awaitable<Result<manager::FolderState>> Folders(std::string user, manager::FolderOp op,
                                                        uint64_t entry_epoch) override;

  // mail::FragmentStore
  asio::awaitable<Status> Store(std::vector<mail::NewMessage> messages,
                                std::shared_ptr<const std::string> body,
                                cluster::Epoch proxy_epoch) override;
  asio::awaitable<Result<mail::Listing>> List(std::string user, uint32_t folder,
                                              uint64_t if_changed) override;
  asio::awaitable<Result<std::string>> Fetch(std::string user, uint32_t folder,
                                             store::MessageId id) override;
  asio::awaitable<Status> Delete(std::string user, uint32_t folder,
                                 std::vector<store::MessageId> ids) override;
  asio::awaitable<Result<std::vector<mail::SlotVersion>>> WatchVersions(
      std::vector<mail::SlotVersion> slots, std::chrono::milliseconds wait) override;
  asio::awaitable<Result<std::vector<store::MessageId>>> SetFlags(
      std::string user, uint32_t folder, std::vector<mail::FlagChange> changes) override;

  // Replication: pushes an object's version; the version held there after.
  asio::awaitable<Result<uint64_t>> Replicate(rpc::ReplicaUpdate update);
  asio::awaitable<Status> Retire(rpc::RetireRequest request);
  // Anti-entropy: the slots whose digests differ there; the items of one
  // slot there wants from us (it pushes its newer ones itself).
  asio::awaitable<Result<std::vector<uint32_t>>> AntiEntropy(std::vector<uint64_t> digests);
  asio::awaitable<Result<std::vector<replication::Item>>> AntiEntropyCompare(
      uint32_t slot, std::vector<replication::Item> items);

 private:
  std::string address() const;
  // Calls the method and turns the outcome into a Status: transport errors
  // (reported to membership) or the callee's own status.
  template <typename Req, typename Rep>
  asio::awaitable<Result<Rep>> Call(Req req, rpc::AsyncMethod<Req, Rep> method,
                                    uint64_t entry_epoch = 0);

  ClusterRuntime& runtime_;
  const NodeId id_;
  mutable std::mutex mu_;
  std::string address_;  // guarded by mu_
};

}  // namespace porcupine::node
