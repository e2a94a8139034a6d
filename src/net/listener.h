// TCP listeners and the connection registry: accept loops, a per-node
// connection limit, and shutdown that reaches every live connection. Knows
// nothing of protocols: a handler coroutine gets each accepted socket.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/change_signal.h"
#include "core/status.h"

namespace porcupine::net {

using asio::ip::tcp;

// Splits "host:port" ("[::1]:25" too) and resolves it numerically.
Result<tcp::endpoint> ParseEndpoint(const std::string& host_port);

// Tracks live connections so shutdown can interrupt them; enforces the
// node's connection limit and the limit per client address. Thread-safe.
class ConnectionRegistry {
 public:
  // max_per_client: connections one client key may hold at once; 0 = no limit.
  explicit ConnectionRegistry(size_t max_connections, size_t max_per_client = 0)
      : max_(max_connections), max_per_client_(max_per_client) {}

  // A live connection's handle; unregisters on destruction.
  class Ticket {
   public:
    Ticket(ConnectionRegistry* r, uint64_t id, std::string client)
        : registry_(r), id_(id), client_(std::move(client)) {}
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    ConnectionRegistry* registry_;
    uint64_t id_;
    std::string client_;  // "" = not counted per client
  };

  // Why Enter refused a connection.
  enum class Refusal { kNone, kNodeFull, kClientFull };

  // Registers a connection; `interrupt` is called (from any thread) once at
  // shutdown and must be safe to call then (post to the connection's strand).
  // `client` is the connection's client key (net::ClientKey); "" exempts it
  // from the per-client limit (it still counts against the node's). nullptr
  // when a limit is reached, with the reason in *why (if given).
  std::unique_ptr<Ticket> Enter(std::function<void()> interrupt, const std::string& client = "",
                                Refusal* why = nullptr);
  // Marks shutdown and interrupts every live connection.
  void Shutdown();
  bool shutting_down() const { return shutting_down_.load(); }
  size_t live() const;
  // Waits until no connection is live, at most `timeout`; returns live().
  asio::awaitable<size_t> WaitDrained(std::chrono::milliseconds timeout);
  // Connections of `client` now (0 for ""). For tests and metrics.
  size_t live_of(const std::string& client) const;

 private:
  const size_t max_;
  const size_t max_per_client_;
  std::atomic<bool> shutting_down_{false};
  mutable std::mutex mu_;
  uint64_t next_id_ = 0;                                      // guarded by mu_
  std::unordered_map<uint64_t, std::function<void()>> live_;  // guarded by mu_
  std::unordered_map<std::string, size_t> per_client_;        // guarded by mu_; no zeros
  ChangeSignal left_;                                         // after a connection ended
};

// Accepts connections on one address; each runs `handler` on its own strand.
class Listener {
 public:
  using Handler = std::function<asio::awaitable<void>(tcp::socket)>;

  // Binds and listens (SO_REUSEADDR). IoError naming the address on failure.
  static Result<std::unique_ptr<Listener>> Bind(asio::io_context& io, const std::string& address);

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  // Starts the accept loop.
  void Start(Handler handler);
  // Stops accepting (safe from any thread).
  void Stop();

 private:
  explicit Listener(asio::io_context& io) : io_(io), acceptor_(asio::make_strand(io)) {}
  asio::awaitable<void> AcceptLoop(Handler handler);

  asio::io_context& io_;
  tcp::acceptor acceptor_;
};

}  // namespace porcupine::net
