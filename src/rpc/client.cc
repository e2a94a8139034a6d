#include "rpc/client.h"

namespace porcupine::rpc {

AsyncStub* Client::StubFor(const std::string& address) {
  std::lock_guard lock(mu_);
  if (shut_down_) return nullptr;
  auto it = stubs_.find(address);
  if (it == stubs_.end()) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
    args.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, options_.min_reconnect_backoff_ms);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, options_.min_reconnect_backoff_ms);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, options_.max_reconnect_backoff_ms);
    // One connection per peer, never shared with another Client's channels.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // One set of credentials (and one watcher of the TLS files) for every channel.
    if (!credentials_) credentials_ = ChannelCredentials(options_.tls);
    auto channel = grpc::CreateCustomChannel(address, credentials_, args);
    it = stubs_.emplace(address, Node::NewStub(channel)).first;
  }
  return it->second->async();
}

void Client::Track(grpc::ClientContext* ctx) {
  std::lock_guard lock(mu_);
  inflight_.insert(ctx);
  if (shut_down_) ctx->TryCancel();
}

void Client::Untrack(grpc::ClientContext* ctx) {
  std::lock_guard lock(mu_);
  inflight_.erase(ctx);
  if (inflight_.empty()) drained_.notify_all();
}

void Client::Shutdown(int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  shut_down_ = true;
  for (grpc::ClientContext* ctx : inflight_) ctx->TryCancel();
  drained_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                    [this] { return inflight_.empty(); });
}

Status Client::FromGrpc(const grpc::Status& s, const std::string& address) {
  std::string what = "rpc to " + address + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return Status::PermissionDenied(what);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Status::ResourceExhausted(what);
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return Status::InvalidArgument(what);
    case grpc::StatusCode::UNAVAILABLE:
      // No connection could be made: the request never left this node.
      // (gRPC says so only in the message.)
      if (s.error_message().find("failed to connect") != std::string::npos ||
          s.error_message().find("Failed to connect") != std::string::npos) {
        return Status::Unavailable(what);
      }
      return Status::UnknownOutcome(what);
    default:
      // A deadline, a cancellation, a connection lost mid-call: the peer may
      // or may not have acted.
      return Status::UnknownOutcome(what);
  }
}

}  // namespace porcupine::rpc
