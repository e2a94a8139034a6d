#include "rpc/server.h"

#include <sodium.h>

#include <atomic>

#include "rpc/client.h"

namespace porcupine::rpc {

class Server::Service final : public Node::CallbackService {
 public:
  Service(const ServerOptions& options, Handler& handler, asio::io_context& io)
      : options_(options), handler_(handler), io_(io) {}

  std::atomic<uint64_t> refused{0};

#define PORCUPINE_RPC_METHOD(Name, Req, Rep)                                                    \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx, const Req* req, Rep* rep)    \
      override {                                                                                \
    return Dispatch(ctx, req->header(), [this, req, rep] { return handler_.Name(*req, rep); }); \
  }
  PORCUPINE_RPC_METHOD(Membership, MembershipMessage, Ack)
  PORCUPINE_RPC_METHOD(Gossip, GossipRequest, Ack)
  PORCUPINE_RPC_METHOD(LookupUser, LookupRequest, LookupReply)
  PORCUPINE_RPC_METHOD(UpdateMailMap, MailMapUpdate, Ack)
  PORCUPINE_RPC_METHOD(ManageUser, UserOp, Ack)
  PORCUPINE_RPC_METHOD(SetFlags, FlagsRequest, FlagsReply)
  PORCUPINE_RPC_METHOD(WatchVersions, WatchRequest, WatchReply)
  PORCUPINE_RPC_METHOD(Folders, FolderRequest, FolderReply)
  PORCUPINE_RPC_METHOD(ListUsers, ListUsersRequest, ListUsersReply)
  PORCUPINE_RPC_METHOD(Rebuild, RebuildChunkP, Ack)
  PORCUPINE_RPC_METHOD(StoreMessages, StoreRequest, Ack)
  PORCUPINE_RPC_METHOD(ListFragment, ListRequest, ListReply)
  PORCUPINE_RPC_METHOD(FetchMessage, FetchRequest, FetchReply)
  PORCUPINE_RPC_METHOD(DeleteMessages, DeleteRequest, Ack)
  PORCUPINE_RPC_METHOD(Replicate, ReplicaUpdate, ReplicaAck)
  PORCUPINE_RPC_METHOD(Retire, RetireRequest, Ack)
  PORCUPINE_RPC_METHOD(AntiEntropy, AntiEntropyRequest, AntiEntropyReply)
  PORCUPINE_RPC_METHOD(AntiEntropyCompare, AntiEntropyCompareRequest, AntiEntropyCompareReply)
#undef PORCUPINE_RPC_METHOD

 private:
  bool SecretOk(grpc::CallbackServerContext* ctx) const {
    if (options_.secret.empty()) return true;
    const auto& md = ctx->client_metadata();
    auto it = md.find(kSecretMetadata);
    if (it == md.end()) return false;
    const grpc::string_ref got = it->second;
    return got.size() == options_.secret.size() &&
           sodium_memcmp(got.data(), options_.secret.data(), got.size()) == 0;
  }

  template <typename Start>
  grpc::ServerUnaryReactor* Dispatch(grpc::CallbackServerContext* ctx, const RequestHeader& header,
                                     Start start) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (!SecretOk(ctx)) {
      refused.fetch_add(1);
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad cluster secret"));
      return reactor;
    }
    if (header.version() != kWireVersion) {
      refused.fetch_add(1);
      reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                   "unknown wire version " + std::to_string(header.version())));
      return reactor;
    }
    if (ctx->deadline() < std::chrono::system_clock::now()) {
      // Queued past its deadline (this process was stopped, say): the caller
      // has given up and may have moved on; acting now could apply stale
      // work after newer work.
      reactor->Finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed"));
      return reactor;
    }
    asio::co_spawn(io_, start(), [reactor](std::exception_ptr e) {
      reactor->Finish(e ? grpc::Status(grpc::StatusCode::INTERNAL, "handler failed")
                        : grpc::Status::OK);
    });
    return reactor;
  }

  const ServerOptions& options_;
  Handler& handler_;
  asio::io_context& io_;
};

Server::Server(const ServerOptions& options, Handler& handler, asio::io_context& io)
    : options_(options), service_(std::make_unique<Service>(options_, handler, io)) {}

Server::~Server() { Shutdown(0); }

Result<int> Server::Start() {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options_.address, ServerCredentials(options_.tls), &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    return Status::IoError("cannot listen on " + options_.address);
  }
  return port;
}

void Server::Shutdown(int64_t deadline_ms) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  server_->Wait();
  server_.reset();
}

uint64_t Server::refused() const { return service_->refused.load(); }

}  // namespace porcupine::rpc
