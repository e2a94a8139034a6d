// Runs one protocol session engine on one TCP connection: moves bytes between
// the socket and the engine, performs the engine's backend requests, applies
// idle/write timeouts and tarpit delays, and reacts to node shutdown. The
// engine stays pure (protocol/common/session.h); this is the only place
// where a session meets a socket.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "admin/metrics.h"
#include "net/listener.h"

namespace porcupine::node {

struct DriverOptions {
  std::chrono::seconds idle_timeout{300};
  std::chrono::seconds write_timeout{60};
  // Output held back while requests run (pipelining) before it is flushed anyway.
  size_t max_buffered_output = 64 * 1024;
  // Sent, then the connection is closed, when the connection limit is reached.
  std::string busy_reply;
  // Session counters of the protocol (sessions, active, refused); may be null.
  admin::Metrics::Protocol* metrics = nullptr;
};

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
inline asio::awaitable<bool> WriteAll(DriverState& st, net::tcp::socket& socket,
                                      const std::string& data, std::chrono::seconds timeout) {
  size_t done = 0;
  while (done < data.size()) {
    st.write_timer.expires_after(timeout);
    auto r = co_await (socket.async_write_some(asio::buffer(data.data() + done, data.size() - done),
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

inline asio::awaitable<ReadOutcome> ReadSome(DriverState& st, net::tcp::socket& socket, char* buf,
                                             size_t cap, size_t* got,
                                             std::chrono::milliseconds timeout) {
  st.read_timer.expires_after(timeout);
  auto r =
      co_await (socket.async_read_some(asio::buffer(buf, cap), as_tuple(asio::use_awaitable)) ||
                st.read_timer.async_wait(as_tuple(asio::use_awaitable)));
  if (r.index() == 1) {
    co_return std::get<0>(std::get<1>(r)) ? ReadOutcome::kInterrupted : ReadOutcome::kTimeout;
  }
  auto [ec, n] = std::get<0>(r);
  *got = n;
  if (ec == asio::error::eof) co_return ReadOutcome::kEof;
  if (ec) co_return ReadOutcome::kError;
  co_return ReadOutcome::kData;
}

}  // namespace detail

namespace detail {

template <typename Session, typename Backend>
asio::awaitable<void> RunLoop(net::tcp::socket socket, Session& session, Backend& backend,
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
      if (!co_await detail::WriteAll(*state, socket, pending, opt.write_timeout)) break;
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
    auto outcome = co_await detail::ReadSome(*state, socket, buf.data(), buf.size(), &got, wait);
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
  asio::error_code ignored;
  socket.shutdown(net::tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

}  // namespace detail

// Drives `session` until it closes; returns false when the connection was
// refused at the connection limit (the session never started). Backend must provide
//   asio::awaitable<typename Session::Response> Handle(Request)
// where Request is the engine's request variant.
template <typename Session, typename Backend>
asio::awaitable<bool> DriveSession(net::tcp::socket socket, Session& session, Backend& backend,
                                   const DriverOptions& opt, net::ConnectionRegistry& registry) {
  auto state = std::make_shared<DriverState>(socket.get_executor());
  auto ex = socket.get_executor();
  auto ticket =
      registry.Enter([state, ex] { asio::post(ex, [state] { state->read_timer.cancel(); }); });
  if (!ticket) {
    if (opt.metrics) opt.metrics->refused->Increment();
    co_await detail::WriteAll(*state, socket, opt.busy_reply, opt.write_timeout);
    co_return false;
  }
  if (opt.metrics) {
    opt.metrics->sessions->Increment();
    opt.metrics->active->Increment();
  }
  co_await detail::RunLoop(std::move(socket), session, backend, opt, registry, state);
  if (opt.metrics) opt.metrics->active->Decrement();
  co_return true;
}

}  // namespace porcupine::node
