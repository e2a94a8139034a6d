#include "net/stream.h"

#include <openssl/ssl.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

namespace porcupine::net {

using asio::experimental::as_tuple;
using namespace asio::experimental::awaitable_operators;

std::string_view Stream::tls_version() const {
  if (!secure_) return "";
  return SSL_get_version(const_cast<TlsStream&>(*tls_).native_handle());
}

asio::awaitable<Stream::Handshake> Stream::StartTls(std::shared_ptr<TlsContexts> contexts,
                                                    asio::steady_timer& timer,
                                                    std::chrono::milliseconds deadline) {
  contexts_ = std::move(contexts);
  tls_.emplace(std::move(socket_), contexts_->initial());
  timer.expires_after(deadline);
  auto r = co_await (
      tls_->async_handshake(asio::ssl::stream_base::server, as_tuple(asio::use_awaitable)) ||
      timer.async_wait(as_tuple(asio::use_awaitable)));
  Handshake out;
  if (r.index() == 1) {
    auto [timer_ec] = std::get<1>(r);
    out.failure = timer_ec ? TlsFailure::kShutdown : TlsFailure::kTimeout;
    co_return out;
  }
  auto [ec] = std::get<0>(r);
  if (ec) {
    out.failure = ClassifyHandshakeError(ec);
    co_return out;
  }
  secure_ = true;
  out.ok = true;
  out.version = SSL_get_version(tls_->native_handle());
  co_return out;
}

asio::awaitable<void> Stream::Close(asio::steady_timer& timer, std::chrono::milliseconds deadline) {
  if (secure_) {
    // Send our close_notify and stop: marking the client's as received makes
    // SSL_shutdown complete once ours is written (RFC 8446 §6.1 lets a side
    // close without waiting for the other's).
    SSL_set_shutdown(tls_->native_handle(), SSL_RECEIVED_SHUTDOWN);
    timer.expires_after(deadline);
    co_await (tls_->async_shutdown(as_tuple(asio::use_awaitable)) ||
              timer.async_wait(as_tuple(asio::use_awaitable)));
  }
  asio::error_code ignored;
  socket().shutdown(tcp::socket::shutdown_both, ignored);
  socket().close(ignored);
}

}  // namespace porcupine::net
