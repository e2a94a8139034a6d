// The server side of inter-node RPC (rpc/cluster.proto, docs/wire.md). gRPC
// runs its own threads. With mutual TLS only callers holding a certificate of
// the cluster CA get a connection at all; every call is then checked (cluster
// secret, wire version) and handed to the Handler as a coroutine on the
// node's io_context.
// The reply is sent when the coroutine finishes.
#pragma once

#include <grpcpp/grpcpp.h>

#include <asio.hpp>
#include <memory>
#include <string>

#include "core/status.h"
#include "rpc/cluster.grpc.pb.h"
#include "rpc/tls.h"

namespace porcupine::rpc {

// What the node does with each call. `req` and `rep` stay valid until the
// returned coroutine finishes; the handler fills rep (its header included).
class Handler {
 public:
  virtual ~Handler() = default;
  virtual asio::awaitable<void> Membership(const MembershipMessage& req, Ack* rep) = 0;
  virtual asio::awaitable<void> Gossip(const GossipRequest& req, Ack* rep) = 0;
  virtual asio::awaitable<void> LookupUser(const LookupRequest& req, LookupReply* rep) = 0;
  virtual asio::awaitable<void> UpdateMailMap(const MailMapUpdate& req, Ack* rep) = 0;
  virtual asio::awaitable<void> ManageUser(const UserOp& req, Ack* rep) = 0;
  virtual asio::awaitable<void> SetFlags(const FlagsRequest& req, FlagsReply* rep) = 0;
  virtual asio::awaitable<void> WatchVersions(const WatchRequest& req, WatchReply* rep) = 0;
  virtual asio::awaitable<void> Folders(const FolderRequest& req, FolderReply* rep) = 0;
  virtual asio::awaitable<void> ListUsers(const ListUsersRequest& req, ListUsersReply* rep) = 0;
  virtual asio::awaitable<void> Rebuild(const RebuildChunkP& req, Ack* rep) = 0;
  virtual asio::awaitable<void> StoreMessages(const StoreRequest& req, Ack* rep) = 0;
  virtual asio::awaitable<void> ListFragment(const ListRequest& req, ListReply* rep) = 0;
  virtual asio::awaitable<void> FetchMessage(const FetchRequest& req, FetchReply* rep) = 0;
  virtual asio::awaitable<void> DeleteMessages(const DeleteRequest& req, Ack* rep) = 0;
  virtual asio::awaitable<void> Replicate(const ReplicaUpdate& req, ReplicaAck* rep) = 0;
  virtual asio::awaitable<void> Retire(const RetireRequest& req, Ack* rep) = 0;
  virtual asio::awaitable<void> AntiEntropy(const AntiEntropyRequest& req,
                                            AntiEntropyReply* rep) = 0;
  virtual asio::awaitable<void> AntiEntropyCompare(const AntiEntropyCompareRequest& req,
                                                   AntiEntropyCompareReply* rep) = 0;
};

struct ServerOptions {
  std::string address;  // host:port; port 0 = any free port
  std::string secret;   // required in every call's metadata; "" = none
  TlsFiles tls;         // when enabled, only callers with a certificate of the cluster CA connect
  size_t max_message_bytes = 64u << 20;  // largest request or reply
};

class Server {
 public:
  // handler and io must outlive the server.
  Server(const ServerOptions& options, Handler& handler, asio::io_context& io);
  ~Server();  // Shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving; returns the bound port, or IoError.
  Result<int> Start();
  // Stops accepting calls and waits (at most deadline_ms) for running ones;
  // later ones are cancelled. REQUIRES: the io_context still runs (the
  // handlers finish on it). Idempotent.
  void Shutdown(int64_t deadline_ms = 2000);

  // Calls refused for a wrong secret or an unknown wire version.
  uint64_t refused() const;

 private:
  class Service;
  ServerOptions options_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace porcupine::rpc
