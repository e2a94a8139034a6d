// A client connection's byte stream: plain TCP, or TLS over the same socket
// once StartTls() has completed a server handshake (implicit TLS at once,
// STARTTLS later). Knows nothing of protocols; the session driver is its
// only user.
//
// TLS is OpenSSL on the socket itself (a BIO that calls recv/send on the
// non-blocking descriptor), driven by readiness waits on the socket. asio's
// ssl::stream is not used on the server side: it keeps two 17 KiB record
// buffers and a 2 x 17 KiB BIO pair per connection for its whole life, which
// made an idle IMAPS session cost 92.6 KiB. Here an idle connection keeps
// only OpenSSL's connection state; its record buffers are released while
// empty (SSL_MODE_RELEASE_BUFFERS).
//
// Thread-safety: none; one stream per connection, used on its strand.
#pragma once

#include <openssl/ssl.h>

#include <asio.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>

#include "net/listener.h"
#include "net/tls.h"

namespace porcupine::net {

class Stream {
 public:
  using executor_type = tcp::socket::executor_type;

  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  tcp::socket& socket() { return socket_; }
  // The TLS connection once a handshake completed; nullptr while plain.
  SSL* ssl() { return secure_ ? ssl_.get() : nullptr; }
  bool secure() const { return secure_; }
  // "TLSv1.2" / "TLSv1.3" once secure; "" before.
  std::string_view tls_version() const;

  // Reads/writes some bytes, through TLS when secure. Any asio completion
  // token; completes with (error_code, size_t) on the socket's executor,
  // never inside the call. Reads report a TLS close_notify as
  // asio::error::eof and a TCP close without one as
  // asio::ssl::error::stream_truncated. Cancelling a TLS read loses nothing:
  // a partial record stays inside OpenSSL for the next read. At most one
  // read and one write at a time.
  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& b, Token&& token) {
    return asio::async_compose<Token, void(asio::error_code, std::size_t)>(
        IoOp{this, asio::buffer_sequence_begin(b)->data(), FirstSize(b), false}, token, socket_);
  }
  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& b, Token&& token) {
    return asio::async_compose<Token, void(asio::error_code, std::size_t)>(
        IoOp{this, const_cast<void*>(asio::buffer_sequence_begin(b)->data()), FirstSize(b), true},
        token, socket_);
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
  struct SslFree {
    void operator()(SSL* p) const { SSL_free(p); }
  };

  // What one attempt of an OpenSSL call asks for next.
  enum class Want { kDone, kRead, kWrite };
  // Maps the result `r` of an SSL_* call on ssl_ to what it waits for, or to
  // kDone with `*ec` set (success leaves it clear).
  Want Classify(int r, asio::error_code* ec);
  // One attempt to move bytes through TLS.
  Want TlsRead(void* data, std::size_t size, asio::error_code* ec, std::size_t* n);
  Want TlsWrite(const void* data, std::size_t size, asio::error_code* ec, std::size_t* n);

  template <typename Buffers>
  static std::size_t FirstSize(const Buffers& b) {
    auto it = asio::buffer_sequence_begin(b);
    return it == asio::buffer_sequence_end(b) ? 0 : it->size();
  }

  // One read or write of the first buffer: plain, it is the socket's own
  // operation; secure, OpenSSL is tried and the socket waited on until it
  // succeeds or fails.
  struct IoOp {
    Stream* s;
    void* data;
    std::size_t size;
    bool write;
    enum { kStart, kWaited, kPlain, kPosted } state = kStart;
    asio::error_code result_ec{};
    std::size_t result_n = 0;

    template <typename Self>
    void operator()(Self& self, asio::error_code ec = {}, std::size_t n = 0) {
      switch (state) {
        case kStart:
          if (!s->secure_) {
            state = kPlain;
            if (write) {
              s->socket_.async_write_some(asio::const_buffer(data, size), std::move(self));
            } else {
              s->socket_.async_read_some(asio::mutable_buffer(data, size), std::move(self));
            }
            return;
          }
          break;
        case kPlain:
          self.complete(ec, n);
          return;
        case kPosted:
          self.complete(result_ec, result_n);
          return;
        case kWaited:
          if (ec) {
            self.complete(ec, 0);
            return;
          }
          break;
      }
      const Want want = write ? s->TlsWrite(data, size, &result_ec, &result_n)
                              : s->TlsRead(data, size, &result_ec, &result_n);
      if (want == Want::kDone) {
        if (state == kWaited) {
          self.complete(result_ec, result_n);
        } else {  // finished without waiting: complete outside the call
          state = kPosted;
          asio::post(s->socket_.get_executor(), std::move(self));
        }
        return;
      }
      state = kWaited;
      s->socket_.async_wait(want == Want::kRead ? tcp::socket::wait_read : tcp::socket::wait_write,
                            std::move(self));
    }
  };

  tcp::socket socket_;
  std::unique_ptr<SSL, SslFree> ssl_;      // set by StartTls
  std::shared_ptr<TlsContexts> contexts_;  // the SNI callback's argument
  bool secure_ = false;
};

}  // namespace porcupine::net
