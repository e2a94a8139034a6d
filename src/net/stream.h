// A client connection's byte stream: plain TCP, or TLS over the same socket
// once StartTls() has completed a server handshake (implicit TLS at once,
// STARTTLS later). Knows nothing of protocols; the session driver is its
// only user.
//
// Thread-safety: none; one stream per connection, used on its strand.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

#include "net/listener.h"
#include "net/tls.h"

namespace porcupine::net {

class Stream {
 public:
  using TlsStream = asio::ssl::stream<tcp::socket>;
  using executor_type = tcp::socket::executor_type;

  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  executor_type get_executor() { return socket().get_executor(); }
  // The TCP socket (inside the TLS stream once TLS started).
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : socket_; }
  // The TLS stream once a handshake completed; nullptr while plain.
  TlsStream* tls() { return secure_ ? &*tls_ : nullptr; }
  bool secure() const { return secure_; }
  // "TLSv1.2" / "TLSv1.3" once secure; "" before.
  std::string_view tls_version() const;

  // Reads/writes some bytes through TLS when secure, else on the socket.
  // Both paths complete with (error_code, size_t) on the socket's executor.
  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    if (secure_) return tls_->async_read_some(b, std::forward<Token>(token));
    return socket_.async_read_some(b, std::forward<Token>(token));
  }
  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    if (secure_) return tls_->async_write_some(b, std::forward<Token>(token));
    return socket_.async_write_some(b, std::forward<Token>(token));
  }

  struct Handshake {
    bool ok = false;
    TlsFailure failure = TlsFailure::kOther;  // when !ok
    const char* version = "";                 // when ok: SSL_get_version()
  };
  // Performs a server handshake with `contexts` (its initial certificate;
  // SNI may pick another) within `deadline`, armed on `timer`: a timer
  // cancelled from outside (node shutdown) gives kShutdown. The stream keeps
  // `contexts` alive. After a failure only Close() is meaningful.
  // REQUIRES: !secure(); no StartTls before.
  asio::awaitable<Handshake> StartTls(std::shared_ptr<TlsContexts> contexts,
                                      asio::steady_timer& timer,
                                      std::chrono::milliseconds deadline);

  // Ends the connection: a TLS close_notify first (not waiting for the
  // client's; at most `deadline` on `timer`), then shutdown and close.
  asio::awaitable<void> Close(asio::steady_timer& timer, std::chrono::milliseconds deadline);

 private:
  tcp::socket socket_;                     // moved into tls_ by StartTls
  std::optional<TlsStream> tls_;           // set by StartTls
  std::shared_ptr<TlsContexts> contexts_;  // the SNI callback's argument
  bool secure_ = false;
};

}  // namespace porcupine::net
