// Runs one protocol session engine on one TCP connection: moves bytes between
// the connection and the engine, performs the engine's backend requests and
// TLS handshakes (implicit TLS before the greeting, STARTTLS when the engine
// asks), applies idle/write timeouts, handshake deadlines and tarpit delays,
// and reacts to node shutdown. The engine stays pure
// (protocol/common/session.h); this is the only place where a session meets
// a socket.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "admin/metrics.h"
#include "net/listener.h"
#include "net/stream.h"
#include "net/tls.h"

namespace porcupine::node {

struct DriverOptions {
  std::chrono::seconds idle_timeout{300};
  std::chrono::seconds write_timeout{60};
  // Output held back while requests run (pipelining) before it is flushed anyway.
  size_t max_buffered_output = 64 * 1024;
  // Sent, then the connection is closed, when the connection limit is reached.
  std::string busy_reply;
  // The same when the client's address holds limits.max_connections_per_address
  // connections already; "" = busy_reply.
  std::string client_busy_reply;
  // Session counters of the protocol (sessions, active, refused); may be null.
  admin::Metrics::Protocol* metrics = nullptr;
  // The node's certificates; nullptr: no TLS on this listener (the engine
  // is told it cannot offer STARTTLS). Must outlive every session.
  const net::TlsServer* tls = nullptr;
  // Implicit TLS (RFC 8314): the handshake comes before the greeting; a
  // connection over the limit is closed without a reply. REQUIRES: tls.
  bool implicit_tls = false;
  std::chrono::milliseconds handshake_timeout{10000};
  // This listener's handshake counters; may be null.
  admin::Metrics::TlsListener* tls_metrics = nullptr;
};

// Bounds the TLS close_notify at the end of a session.
inline constexpr std::chrono::milliseconds kCloseNotifyWait{1000};

// Per-connection state reachable from the shutdown interrupt, which may run
// after the session ended: hence shared ownership.
struct DriverState {
  explicit DriverState(asio::any_io_executor ex) : read_timer(ex), write_timer(ex) {}
  asio::steady_timer read_timer;   // idle timeout and tarpit; cancelled by shutdown
  asio::steady_timer write_timer;  // write timeout; never cancelled by shutdown
};

namespace detail {

using asio::experimental::as_tuple;
using namespace asio::experimental::awaitable_operators;

// Writes all of `data`; false on error or when the client accepts nothing
// for `timeout`. The timeout restarts whenever bytes go out, so a slow but
// steady reader of a large message is never cut off.
inline asio::awaitable<bool> WriteAll(DriverState& st, net::Stream& stream, const std::string& data,
                                      std::chrono::seconds timeout) {
  size_t done = 0;
  while (done < data.size()) {
    st.write_timer.expires_after(timeout);
    auto r = co_await (stream.async_write_some(asio::buffer(data.data() + done, data.size() - done),
                                               as_tuple(asio::use_awaitable)) ||
                       st.write_timer.async_wait(as_tuple(asio::use_awaitable)));
    if (r.index() != 0) co_return false;  // the client stopped reading
    auto [ec, n] = std::get<0>(r);
    if (ec) co_return false;
    done += n;
  }
  co_return true;
}

enum class ReadOutcome { kData, kEof, kTimeout, kInterrupted, kError };

// Races `read` (a deferred read of some bytes) against the read timer. Both
// results come back, so bytes that arrived as the timer fired are kept (a
// plain `||` would drop them); a TLS read cancelled mid-record keeps its
// partial record inside the TLS stream for the next read.
template <typename DeferredRead>
asio::awaitable<ReadOutcome> RaceRead(DriverState& st, DeferredRead read, size_t* got,
                                      std::chrono::milliseconds timeout) {
  namespace ex = asio::experimental;
  st.read_timer.expires_after(timeout);
  auto result =
      co_await ex::make_parallel_group(std::move(read), st.read_timer.async_wait(ex::deferred))
          .async_wait(ex::wait_for_one(), asio::use_awaitable);
  auto& [order, read_ec, n, timer_ec] = result;
  *got = n;
  if (n > 0) co_return ReadOutcome::kData;
  if (order[0] == 1) co_return timer_ec ? ReadOutcome::kInterrupted : ReadOutcome::kTimeout;
  if (read_ec == asio::error::eof || read_ec == asio::ssl::error::stream_truncated) {
    co_return ReadOutcome::kEof;
  }
  co_return read_ec ? ReadOutcome::kError : ReadOutcome::kData;
}

inline asio::awaitable<ReadOutcome> ReadSome(DriverState& st, net::Stream& stream, char* buf,
                                             size_t cap, size_t* got,
                                             std::chrono::milliseconds timeout) {
  co_return co_await RaceRead(
      st, stream.async_read_some(asio::buffer(buf, cap), asio::experimental::deferred), got,
      timeout);
}

// A server handshake on `stream` within the listener's deadline, counted in
// its metrics. False when there is no TLS or the handshake failed.
inline asio::awaitable<bool> Handshake(DriverState& st, net::Stream& stream,
                                       const DriverOptions& opt) {
  if (opt.tls == nullptr) co_return false;
  net::Stream::Handshake h =
      co_await stream.StartTls(opt.tls->Current(), st.read_timer, opt.handshake_timeout);
  if (admin::Metrics::TlsListener* m = opt.tls_metrics) {
    if (h.ok) {
      auto it = m->handshakes.find(h.version);
      (it != m->handshakes.end() ? it->second : m->handshakes["other"])->Increment();
    } else if (auto it = m->failures.find(net::TlsFailureName(h.failure));
               it != m->failures.end()) {
      it->second->Increment();
    }
  }
  co_return h.ok;
}

}  // namespace detail

namespace detail {

template <typename Session, typename Backend>
asio::awaitable<void> RunLoop(net::Stream& stream, Session& session, Backend& backend,
                              const DriverOptions& opt, net::ConnectionRegistry& registry,
                              std::shared_ptr<DriverState> state) {
  using Kind = typename decltype(session.Next())::Kind;
  std::array<char, 16384> buf;
  bool told_shutdown = false;
  std::string pending;  // reply bytes not yet written
  auto last_input = std::chrono::steady_clock::now();
  session.Start();
  for (;;) {
    if (registry.shutting_down() && !told_shutdown) {
      session.OnShutdown();
      told_shutdown = true;
    }
    auto step = session.Next();
    // Replies wait while requests run (so pipelined commands share one write)
    // unless they pile up; before reading, pausing or closing they all go out.
    pending += session.TakeOutput();
    const bool hold = step.kind == Kind::kRequest && pending.size() < opt.max_buffered_output;
    if (!pending.empty() && !hold) {
      if (!co_await detail::WriteAll(*state, stream, pending, opt.write_timeout)) break;
      pending.clear();
    }
    if (step.kind == Kind::kClose) break;
    if (step.kind == Kind::kDelay) {
      state->read_timer.expires_after(step.delay);
      co_await state->read_timer.async_wait(detail::as_tuple(asio::use_awaitable));
      continue;
    }
    if (step.kind == Kind::kRequest) {
      session.Complete(co_await backend.Handle(std::move(*step.request)));
      continue;
    }
    if (step.kind == Kind::kStartTls) {
      // The engine dropped what it had buffered; whatever the client sent
      // after the command and we have not read goes to the handshake.
      if (co_await detail::Handshake(*state, stream, opt)) {
        session.OnTlsStarted();
      } else {
        session.OnTlsFailed();
      }
      continue;
    }
    size_t got = 0;
    // A session that wants to be woken without input (IMAP IDLE) is polled
    // at its interval; the idle timeout still counts from the last input.
    std::chrono::milliseconds wait = opt.idle_timeout;
    bool polling = false;
    if constexpr (requires { session.PollInterval(); }) {
      if (auto poll = session.PollInterval()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            last_input + opt.idle_timeout - std::chrono::steady_clock::now());
        polling = *poll < left;
        wait = std::max(std::chrono::milliseconds(1), std::min(*poll, left));
      }
    }
    auto outcome = co_await detail::ReadSome(*state, stream, buf.data(), buf.size(), &got, wait);
    switch (outcome) {
      case detail::ReadOutcome::kData:
        last_input = std::chrono::steady_clock::now();
        session.Feed(std::string_view(buf.data(), got));
        break;
      case detail::ReadOutcome::kEof:
        session.OnEof();
        break;
      case detail::ReadOutcome::kTimeout:
        if constexpr (requires { session.OnPoll(); }) {
          if (polling) {
            session.OnPoll();
            break;
          }
        }
        session.OnIdleTimeout();
        break;
      case detail::ReadOutcome::kInterrupted:
        break;  // shutdown: handled at the top of the loop
      case detail::ReadOutcome::kError:
        co_return;
    }
  }
  co_await stream.Close(state->write_timer,
                        std::min<std::chrono::milliseconds>(opt.write_timeout, kCloseNotifyWait));
}

}  // namespace detail

// Drives `session` until it closes; returns false when the session never
// started: the connection was refused at the connection limit of the node or
// of its client (`client`: the key it counts under, "" = exempt from the
// per-client limit; ConnectionRegistry::Enter), or its implicit-TLS
// handshake failed. Backend must provide
//   asio::awaitable<typename Session::Response> Handle(Request)
// where Request is the engine's request variant.
template <typename Session, typename Backend>
asio::awaitable<bool> DriveSession(net::tcp::socket socket, Session& session, Backend& backend,
                                   const DriverOptions& opt, net::ConnectionRegistry& registry,
                                   std::string client = "") {
  auto state = std::make_shared<DriverState>(socket.get_executor());
  auto ex = socket.get_executor();
  net::Stream stream(std::move(socket));
  net::ConnectionRegistry::Refusal why = net::ConnectionRegistry::Refusal::kNone;
  auto ticket = registry.Enter(
      [state, ex] { asio::post(ex, [state] { state->read_timer.cancel(); }); }, client, &why);
  if (!ticket) {
    const bool by_client = why == net::ConnectionRegistry::Refusal::kClientFull;
    if (opt.metrics) (by_client ? opt.metrics->refused_client : opt.metrics->refused)->Increment();
    const std::string& reply =
        by_client && !opt.client_busy_reply.empty() ? opt.client_busy_reply : opt.busy_reply;
    // A plaintext reply means nothing to a client that starts with TLS.
    if (!opt.implicit_tls) {
      co_await detail::WriteAll(*state, stream, reply, opt.write_timeout);
    }
    co_return false;
  }
  if (opt.implicit_tls) {
    bool secure = co_await detail::Handshake(*state, stream, opt);
    if (!secure) {
      co_await stream.Close(state->write_timer, kCloseNotifyWait);
      co_return false;
    }
  }
  if (opt.metrics) {
    opt.metrics->sessions->Increment();
    opt.metrics->active->Increment();
  }
  co_await detail::RunLoop(stream, session, backend, opt, registry, state);
  if (opt.metrics) opt.metrics->active->Decrement();
  co_return true;
}

}  // namespace porcupine::node
