// TCP listeners and the connection registry: accept loops, a per-node
// connection limit, and shutdown that reaches every live connection. Knows
// nothing of protocols: a handler coroutine gets each accepted socket.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/status.h"

namespace porcupine::net {

using asio::ip::tcp;

// Splits "host:port" ("[::1]:25" too) and resolves it numerically.
Result<tcp::endpoint> ParseEndpoint(const std::string& host_port);

// Tracks live connections so shutdown can interrupt them; enforces the limit.
// Thread-safe.
class ConnectionRegistry {
 public:
  explicit ConnectionRegistry(size_t max_connections) : max_(max_connections) {}

  // A live connection's handle; unregisters on destruction.
  class Ticket {
   public:
    Ticket(ConnectionRegistry* r, uint64_t id) : registry_(r), id_(id) {}
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    ConnectionRegistry* registry_;
    uint64_t id_;
  };

  // Registers a connection; `interrupt` is called (from any thread) once at
  // shutdown and must be safe to call then (post to the connection's strand).
  // nullptr when the limit is reached.
  std::unique_ptr<Ticket> Enter(std::function<void()> interrupt);
  // Marks shutdown and interrupts every live connection.
  void Shutdown();
  bool shutting_down() const { return shutting_down_.load(); }
  size_t live() const;

 private:
  const size_t max_;
  std::atomic<bool> shutting_down_{false};
  mutable std::mutex mu_;
  uint64_t next_id_ = 0;                                      // guarded by mu_
  std::unordered_map<uint64_t, std::function<void()>> live_;  // guarded by mu_
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
