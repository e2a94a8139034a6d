// The client side of inter-node RPC (rpc/cluster.proto, docs/wire.md): one
// gRPC channel per peer address, kept for the process's life, and a unary
// call that suspends an asio coroutine until the reply or the deadline.
//
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <asio.hpp>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "core/async.h"
#include "core/status.h"
#include "rpc/cluster.grpc.pb.h"
#include "rpc/tls.h"

namespace porcupine::rpc {

inline constexpr uint32_t kWireVersion = 1;
inline constexpr const char* kSecretMetadata = "x-porcupine-secret";

struct ClientOptions {
  // Sent with every call; "" = none. With `tls` it travels only inside a TLS
  // session whose peer showed a certificate of the cluster CA.
  std::string secret;
  TlsFiles tls;                          // mutual TLS when tls.enabled(), plaintext otherwise
  size_t max_message_bytes = 64u << 20;  // largest request or reply (bodies travel whole)
  // Reconnect backoff after a peer went away: short, so a restarted node is
  // reachable again at once (gRPC's default grows to two minutes).
  int min_reconnect_backoff_ms = 100;
  int max_reconnect_backoff_ms = 1000;
};

// A method of the generated callback stub, e.g. &AsyncStub::LookupUser.
using AsyncStub = porcupine::rpc::Node::Stub::async_interface;
template <typename Req, typename Rep>
using AsyncMethod = void (AsyncStub::*)(grpc::ClientContext*, const Req*, Rep*,
                                        std::function<void(grpc::Status)>);

class Client {
 public:
  explicit Client(const ClientOptions& options) : options_(options) {}
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `req` to `address` and waits at most `deadline_ms`. The reply on
  // any gRPC OK (its header carries the callee's own status); Unavailable
  // when no connection could be made (the request was not sent);
  // UnknownOutcome when the call timed out or broke after it was sent (the
  // peer may have acted); PermissionDenied when it refuses our cluster
  // secret; ResourceExhausted when a message is over the size limit.
  template <typename Req, typename Rep>
  asio::awaitable<Result<Rep>> Call(std::string address, int64_t deadline_ms, Req req,
                                    AsyncMethod<Req, Rep> method);

  // Calls started and failed (transport errors), for metrics.
  uint64_t calls() const { return calls_.load(); }
  uint64_t failures() const { return failures_.load(); }

  // Cancels every call in flight and waits (at most timeout_ms) until their
  // completions have run. Later calls fail at once. Call before the
  // executors the callers run on go away.
  void Shutdown(int64_t timeout_ms = 2000);

 private:
  void Track(grpc::ClientContext* ctx);
  void Untrack(grpc::ClientContext* ctx);

  AsyncStub* StubFor(const std::string& address);
  static Status FromGrpc(const grpc::Status& s, const std::string& address);

  const ClientOptions options_;
  std::mutex mu_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;     // guarded by mu_; made once
  std::map<std::string, std::unique_ptr<Node::Stub>> stubs_;  // guarded by mu_
  std::set<grpc::ClientContext*> inflight_;                   // guarded by mu_
  bool shut_down_ = false;                                    // guarded by mu_
  std::condition_variable drained_;
  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> failures_{0};
};

template <typename Req, typename Rep>
asio::awaitable<Result<Rep>> Client::Call(std::string address, int64_t deadline_ms, Req req,
                                          AsyncMethod<Req, Rep> method) {
  struct CallState {
    grpc::ClientContext context;
    Req request;
    Rep reply;
  };
  auto call = std::make_shared<CallState>();
  call->request = std::move(req);
  call->context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::milliseconds(deadline_ms));
  if (!options_.secret.empty()) call->context.AddMetadata(kSecretMetadata, options_.secret);
  AsyncStub* stub = StubFor(address);
  if (!stub) co_return Status::Unavailable("rpc client shut down");
  calls_.fetch_add(1, std::memory_order_relaxed);
  auto start = [this, stub, call, method](auto done) mutable {
    Track(&call->context);
    auto on_reply = [this, call, done = std::move(done)](grpc::Status s) mutable {
      done(std::move(s));
      Untrack(&call->context);
    };
    (stub->*method)(&call->context, &call->request, &call->reply, std::move(on_reply));
  };
  grpc::Status s = co_await AwaitCallback<grpc::Status>(std::move(start));
  if (!s.ok()) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    co_return FromGrpc(s, address);
  }
  co_return std::move(call->reply);
}

}  // namespace porcupine::rpc
