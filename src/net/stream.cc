#include "net/stream.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ssl/error.hpp>
#include <cerrno>

namespace porcupine::net {

using asio::experimental::as_tuple;
using namespace asio::experimental::awaitable_operators;

namespace {

// The BIO under every server TLS connection: recv/send on the socket's
// descriptor (non-blocking; EAGAIN becomes a retry), with MSG_NOSIGNAL so
// that a client gone away gives EPIPE rather than SIGPIPE. Its data is the
// descriptor and the errno of the last failed call.
struct BioState {
  int fd;
  int error;  // errno of the last failed recv/send, 0 after success or EOF
};

BioState* StateOf(BIO* b) { return static_cast<BioState*>(BIO_get_data(b)); }

bool Retriable(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

int BioRead(BIO* b, char* out, size_t len, size_t* got) {
  BIO_clear_retry_flags(b);
  BioState* st = StateOf(b);
  const ssize_t r = ::recv(st->fd, out, len, 0);
  if (r > 0) {
    *got = static_cast<size_t>(r);
    st->error = 0;
    return 1;
  }
  if (r == 0) {
    BIO_set_flags(b, BIO_FLAGS_IN_EOF);  // lets OpenSSL tell a truncation
    st->error = 0;
    return 0;
  }
  st->error = errno;
  if (Retriable(st->error)) BIO_set_retry_read(b);
  return 0;
}

int BioWrite(BIO* b, const char* in, size_t len, size_t* put) {
  BIO_clear_retry_flags(b);
  BioState* st = StateOf(b);
  const ssize_t r = ::send(st->fd, in, len, MSG_NOSIGNAL);
  if (r >= 0) {
    *put = static_cast<size_t>(r);
    st->error = 0;
    return 1;
  }
  st->error = errno;
  if (Retriable(st->error)) BIO_set_retry_write(b);
  return 0;
}

long BioCtrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:
      return 0;
  }
}

int BioDestroy(BIO* b) {
  delete StateOf(b);
  BIO_set_data(b, nullptr);
  return 1;
}

BIO_METHOD* SocketBioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "porcupine socket");
    BIO_meth_set_read_ex(m, BioRead);
    BIO_meth_set_write_ex(m, BioWrite);
    BIO_meth_set_ctrl(m, BioCtrl);
    BIO_meth_set_destroy(m, BioDestroy);
    return m;
  }();
  return method;
}

// The errno of the last failed socket call under `ssl`.
int SocketError(SSL* ssl) {
  BIO* b = SSL_get_rbio(ssl);
  return b != nullptr && StateOf(b) != nullptr ? StateOf(b)->error : 0;
}

}  // namespace

std::string_view Stream::tls_version() const {
  if (!secure_) return "";
  return SSL_get_version(ssl_.get());
}

Stream::Want Stream::Classify(int r, asio::error_code* ec) {
  const int err = SSL_get_error(ssl_.get(), r);
  switch (err) {
    case SSL_ERROR_NONE:
      return Want::kDone;
    case SSL_ERROR_WANT_READ:
      return Want::kRead;
    case SSL_ERROR_WANT_WRITE:
      return Want::kWrite;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      *ec = asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL: {
      const int e = SocketError(ssl_.get());
      *ec = e != 0 ? asio::error_code(e, asio::error::get_system_category())
                   : asio::error_code(asio::ssl::error::stream_truncated);
      break;
    }
    default: {
      const unsigned long code = ERR_get_error();
      if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
          ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        *ec = asio::ssl::error::stream_truncated;  // TCP closed without close_notify
      } else if (code != 0) {
        *ec = asio::error_code(static_cast<int>(code), asio::error::get_ssl_category());
      } else {
        *ec = asio::error::fault;
      }
      break;
    }
  }
  ERR_clear_error();
  return Want::kDone;
}

Stream::Want Stream::TlsRead(void* data, std::size_t size, asio::error_code* ec, std::size_t* n) {
  *n = 0;
  if (size == 0) return Want::kDone;
  ERR_clear_error();
  const int r = SSL_read_ex(ssl_.get(), data, size, n);
  return r == 1 ? Want::kDone : Classify(r, ec);
}

Stream::Want Stream::TlsWrite(const void* data, std::size_t size, asio::error_code* ec,
                              std::size_t* n) {
  *n = 0;
  if (size == 0) return Want::kDone;
  ERR_clear_error();
  const int r = SSL_write_ex(ssl_.get(), data, size, n);
  return r == 1 ? Want::kDone : Classify(r, ec);
}

asio::awaitable<Stream::Handshake> Stream::StartTls(std::shared_ptr<TlsContexts> contexts,
                                                    asio::steady_timer& timer,
                                                    std::chrono::milliseconds deadline) {
  Handshake out;
  contexts_ = std::move(contexts);
  ssl_.reset(SSL_new(contexts_->initial().native_handle()));
  BIO* bio = ssl_ ? BIO_new(SocketBioMethod()) : nullptr;
  asio::error_code nb_ec;
  socket_.non_blocking(true, nb_ec);  // recv/send in the BIO must not block
  if (bio == nullptr || nb_ec) {
    ERR_clear_error();
    co_return out;  // kOther
  }
  BIO_set_data(bio, new BioState{socket_.native_handle(), 0});
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_.get(), bio, bio);  // the SSL owns the BIO
  // Partial writes and a buffer that moves between retries, as the driver
  // writes; record buffers released while empty (an idle session keeps none).
  SSL_set_mode(ssl_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                               SSL_MODE_RELEASE_BUFFERS);
  // Reads take what the socket has, not one record header at a time.
  SSL_set_read_ahead(ssl_.get(), 1);
  SSL_set_accept_state(ssl_.get());

  timer.expires_after(deadline);
  for (;;) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) break;
    asio::error_code ec;
    const Want want = Classify(r, &ec);
    if (want == Want::kDone) {
      out.failure = ClassifyHandshakeError(ec);
      co_return out;
    }
    auto w = co_await (
        socket_.async_wait(want == Want::kRead ? tcp::socket::wait_read : tcp::socket::wait_write,
                           as_tuple(asio::use_awaitable)) ||
        timer.async_wait(as_tuple(asio::use_awaitable)));
    if (w.index() == 1) {
      auto [timer_ec] = std::get<1>(w);
      out.failure = timer_ec ? TlsFailure::kShutdown : TlsFailure::kTimeout;
      co_return out;
    }
    if (auto [wait_ec] = std::get<0>(w); wait_ec) {
      out.failure = ClassifyHandshakeError(wait_ec);
      co_return out;
    }
  }
  secure_ = true;
  out.ok = true;
  out.version = SSL_get_version(ssl_.get());
  co_return out;
}

asio::awaitable<void> Stream::Close(asio::steady_timer& timer, std::chrono::milliseconds deadline) {
  if (secure_) {
    // Send our close_notify and stop: marking the client's as received makes
    // SSL_shutdown complete once ours is written (RFC 8446 §6.1 lets a side
    // close without waiting for the other's).
    SSL_set_shutdown(ssl_.get(), SSL_RECEIVED_SHUTDOWN);
    timer.expires_after(deadline);
    for (;;) {
      ERR_clear_error();
      const int r = SSL_shutdown(ssl_.get());
      if (r == 1) break;
      asio::error_code ec;
      const Want want = Classify(r, &ec);
      if (want == Want::kDone) break;
      auto w = co_await (
          socket_.async_wait(want == Want::kRead ? tcp::socket::wait_read : tcp::socket::wait_write,
                             as_tuple(asio::use_awaitable)) ||
          timer.async_wait(as_tuple(asio::use_awaitable)));
      if (w.index() == 1 || std::get<0>(std::get<0>(w))) break;
    }
  }
  asio::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace porcupine::net
