#include "bench/conn.h"

#include <array>
#include <optional>
#include <tuple>

#include "bench/endpoints.h"

namespace porcupine::bench {

using asio::ip::tcp;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

struct Connection::State {
  State(asio::any_io_executor ex, Duration t) : socket(ex), timer(ex), timeout(t) {}
  tcp::socket socket;
  asio::steady_timer timer;
  const Duration timeout;
  bool pending = false;    // an operation is in progress
  TimePoint deadline;      // of the pending operation
  bool timed_out = false;  // the watchdog closed the socket
  bool closed = false;
  std::array<char, 16384> buf;
  // Over the socket above, so the watchdog's close reaches it too.
  std::optional<asio::ssl::stream<tcp::socket&>> tls;
};

// Sleeps until the current deadline; closes the socket when it passes with
// the operation still pending. Exits once the connection is closed.
asio::awaitable<void> Connection::Watchdog(std::shared_ptr<State> s) {
  while (!s->closed) {
    TimePoint now = SteadyClock::now();
    if (s->pending && s->deadline <= now) {
      s->timed_out = true;
      asio::error_code ignored;
      s->socket.close(ignored);
      co_return;
    }
    s->timer.expires_at(s->pending ? s->deadline : now + s->timeout);
    co_await s->timer.async_wait(kTuple);
  }
}

Connection::Connection(asio::any_io_executor ex, ConnRegistry* registry, Duration timeout)
    : state_(std::make_shared<State>(ex, timeout)), registry_(registry) {
  registry_->open_.insert(this);
  asio::co_spawn(ex, Watchdog(state_), asio::detached);
}

Connection::~Connection() {
  Close();
  registry_->open_.erase(this);
}

void Connection::Close() {
  if (state_->closed) return;
  state_->closed = true;
  asio::error_code ignored;
  state_->socket.close(ignored);
  state_->timer.cancel();
}

bool Connection::is_open() const { return !state_->closed && state_->socket.is_open(); }

void Connection::Begin() {
  state_->deadline = SteadyClock::now() + state_->timeout;
  state_->pending = true;
}

void Connection::End() { state_->pending = false; }

MaybeFault Connection::IoFault(const asio::error_code& ec, std::string_view what) const {
  if (!ec) return std::nullopt;
  if (state_->timed_out) return Fault{ErrorKind::kTimeout, std::string(what) + " timed out"};
  return Fault{ErrorKind::kDisconnect, std::string(what) + ": " + ec.message()};
}

asio::awaitable<MaybeFault> Connection::Connect(const std::vector<tcp::endpoint>& endpoints) {
  if (registry_->closing_ || state_->closed) co_return Fault{ErrorKind::kConnect, "stopping"};
  Begin();
  auto [ec, ep] = co_await asio::async_connect(state_->socket, endpoints, kTuple);
  End();
  if (!ec) {
    state_->socket.set_option(tcp::no_delay(true), ec);
    co_return std::nullopt;
  }
  if (state_->timed_out) co_return Fault{ErrorKind::kTimeout, "connect timed out"};
  co_return Fault{ErrorKind::kConnect, "connect: " + ec.message()};
}

asio::awaitable<MaybeFault> Connection::StartTls(asio::ssl::context& ctx, const std::string& name) {
  state_->tls.emplace(state_->socket, ctx);
  if (!name.empty()) {
    SSL_set_tlsext_host_name(state_->tls->native_handle(), name.c_str());
    state_->tls->set_verify_callback(asio::ssl::host_name_verification(name));
  }
  Begin();
  auto [ec] = co_await state_->tls->async_handshake(asio::ssl::stream_base::client, kTuple);
  End();
  if (ec && !state_->timed_out && ec.category() == asio::error::get_ssl_category()) {
    co_return Fault{ErrorKind::kProtocol, "TLS handshake: " + ec.message()};
  }
  co_return IoFault(ec, "TLS handshake");
}

asio::awaitable<MaybeFault> Connection::Write(std::string_view a, std::string_view b) {
  Begin();
  std::array<asio::const_buffer, 2> bufs = {asio::buffer(a), asio::buffer(b)};
  asio::error_code ec;
  if (state_->tls) {
    std::tie(ec, std::ignore) = co_await asio::async_write(*state_->tls, bufs, kTuple);
  } else {
    std::tie(ec, std::ignore) = co_await asio::async_write(state_->socket, bufs, kTuple);
  }
  End();
  co_return IoFault(ec, "write");
}

asio::awaitable<MaybeFault> Connection::ReadSome(std::string_view* got) {
  Begin();
  asio::error_code ec;
  size_t n = 0;
  if (state_->tls) {
    std::tie(ec, n) = co_await state_->tls->async_read_some(asio::buffer(state_->buf), kTuple);
  } else {
    std::tie(ec, n) = co_await state_->socket.async_read_some(asio::buffer(state_->buf), kTuple);
  }
  End();
  if (ec == asio::ssl::error::stream_truncated) ec = asio::error::eof;
  if (ec == asio::error::eof)
    co_return Fault{ErrorKind::kDisconnect, "server closed the connection"};
  if (MaybeFault f = IoFault(ec, "read")) co_return f;
  *got = std::string_view(state_->buf.data(), n);
  co_return std::nullopt;
}

void ConnRegistry::CloseAll() {
  closing_ = true;
  for (Connection* c : open_) c->Close();
}

Result<std::vector<tcp::endpoint>> Resolve(const HostPort& hp) {
  asio::io_context io;
  tcp::resolver resolver(io);
  asio::error_code ec;
  auto results = resolver.resolve(hp.host, std::to_string(hp.port), ec);
  if (ec) return Status::Unavailable("cannot resolve " + hp.ToString() + ": " + ec.message());
  std::vector<tcp::endpoint> out(results.begin(), results.end());
  if (out.empty()) return Status::Unavailable("no address for " + hp.ToString());
  return out;
}

}  // namespace porcupine::bench
