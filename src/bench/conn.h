// A client TCP connection for coroutine sessions, with a deadline on every
// operation and a registry so a worker can cut every connection at once.
//
// Timeouts use one watchdog coroutine per connection rather than a timer per
// operation: an operation only stores its deadline; the watchdog wakes at the
// old deadline (or one timeout after it went idle), which is never later than
// any new deadline, and closes the socket if the pending operation is overdue.
// That keeps the per-operation cost to two stores and the timer wakeups to
// about one per timeout period, which matters at tens of thousands of
// operations per second on one thread.
//
// Thread-safety: none. A Connection, its registry and its executor belong to
// one worker thread (one io_context run by one thread).
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "bench/endpoints.h"
#include "bench/run_clock.h"
#include "bench/stats.h"

namespace porcupine::bench {

class ConnRegistry;

class Connection {
 public:
  // Every operation gets `timeout` from its start. REQUIRES: registry
  // outlives the connection.
  Connection(asio::any_io_executor ex, ConnRegistry* registry, Duration timeout);
  ~Connection();  // closes the socket
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects to the first endpoint that accepts. Fault kinds: kConnect (or
  // kTimeout). REQUIRES: not yet connected.
  asio::awaitable<MaybeFault> Connect(const std::vector<asio::ip::tcp::endpoint>& endpoints);
  // Writes a then b (b may be empty) entirely. Fault kinds: kDisconnect, kTimeout.
  asio::awaitable<MaybeFault> Write(std::string_view a, std::string_view b = {});
  // Reads what is available (at least one byte); *got views an internal
  // buffer valid until the next ReadSome. Fault kinds: kDisconnect, kTimeout.
  asio::awaitable<MaybeFault> ReadSome(std::string_view* got);

  // A client TLS handshake on the connected socket (SNI and, with a
  // verifying context, the host check use `name` unless empty); afterwards
  // Write and ReadSome go through TLS. Fault kinds: kProtocol (handshake
  // refused or failed), kTimeout, kDisconnect. REQUIRES: connected, no TLS yet.
  asio::awaitable<MaybeFault> StartTls(asio::ssl::context& ctx, const std::string& name);

  // Closes the socket; pending operations fail. Idempotent.
  void Close();
  bool is_open() const;

 private:
  struct State;
  static asio::awaitable<void> Watchdog(std::shared_ptr<State> s);
  MaybeFault IoFault(const asio::error_code& ec, std::string_view what) const;

  void Begin();  // an operation starts: arm its deadline
  void End();    // it finished

  std::shared_ptr<State> state_;  // shared with the watchdog coroutine
  ConnRegistry* registry_;
};

// The open connections of one worker.
class ConnRegistry {
 public:
  // Closes every open connection and refuses new ones (Connect fails with
  // kConnect, and callers check closing() before counting that).
  void CloseAll();
  bool closing() const { return closing_; }

 private:
  friend class Connection;
  std::unordered_set<Connection*> open_;
  bool closing_ = false;
};

// Resolves host:port (blocking; for setup). Unavailable when it cannot.
Result<std::vector<asio::ip::tcp::endpoint>> Resolve(const HostPort& hp);

}  // namespace porcupine::bench
