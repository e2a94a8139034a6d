#include "net/tls.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <filesystem>
#include <optional>
#include <string>

#include "net/stream.h"
#include "net/tls_test_util.h"

namespace porcupine::net {
namespace {

using asio::experimental::as_tuple;
using testing::Pem;
using testing::TestPki;

TlsOptions Options(const Pem& def, std::vector<TlsCertificateFiles> more = {}) {
  TlsOptions o;
  o.default_certificate = {{}, def.cert_file, def.key_file};
  o.certificates = std::move(more);
  return o;
}

// The subject CN of the certificate a context serves.
std::string CommonName(SSL_CTX* ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

TEST(TlsContexts, LoadErrorsNameTheFile) {
  TestPki pki;
  Pem a = pki.Leaf("a", {"a.test"});
  Pem b = pki.Leaf("b", {"b.test"});
  TlsOptions missing = Options({pki.dir() + "/nope.crt", a.key_file});
  auto r = TlsContexts::Load(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cert_file: cannot read"), std::string::npos);
  r = TlsContexts::Load(Options({a.cert_file, b.key_file}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("mismatch"), std::string::npos) << r.status().message();
  r = TlsContexts::Load(Options(a, {{{"b.test"}, b.cert_file, a.key_file}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("certificates[0].key_file", 0), 0u) << r.status().message();
  TlsOptions bad_ciphers = Options(a);
  bad_ciphers.ciphers = "NO-SUCH-CIPHER";
  r = TlsContexts::Load(bad_ciphers);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("ciphers:"), std::string::npos);
}

TEST(TlsContexts, ServerNamePicksTheCertificate) {
  TestPki pki;
  Pem def = pki.Leaf("default", {"mx.test"});
  Pem b = pki.Leaf("b", {"b.test"});
  Pem wild = pki.Leaf("wild", {"*.c.test"});
  auto set = TlsContexts::Load(Options(
      def, {{{"B.test"}, b.cert_file, b.key_file}, {{"*.c.test"}, wild.cert_file, wild.key_file}}));
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ((*set)->size(), 3u);
  EXPECT_EQ(CommonName((*set)->ForServerName("b.test")), "b.test");
  EXPECT_EQ(CommonName((*set)->ForServerName("B.TEST.")), "b.test");
  EXPECT_EQ(CommonName((*set)->ForServerName("x.c.test")), "*.c.test");
  EXPECT_EQ(CommonName((*set)->ForServerName("y.x.c.test")), "mx.test");  // one label only
  EXPECT_EQ(CommonName((*set)->ForServerName("c.test")), "mx.test");
  EXPECT_EQ(CommonName((*set)->ForServerName("other.test")), "mx.test");
  EXPECT_GT((*set)->earliest_expiry(), 0);
}

TEST(TlsServer, ReloadSwapsOnlyWhenEverythingLoads) {
  TestPki pki;
  Pem one = pki.Leaf("one", {"one.test"});
  Pem two = pki.Leaf("two", {"two.test"});
  std::string cert = pki.dir() + "/live.crt";
  std::string key = pki.dir() + "/live.key";
  std::filesystem::copy_file(one.cert_file, cert);
  std::filesystem::copy_file(one.key_file, key);
  auto server = TlsServer::Create(Options({cert, key}));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::shared_ptr<TlsContexts> before = (*server)->Current();
  EXPECT_EQ(CommonName(before->initial().native_handle()), "one.test");
  // A half-written update (new certificate, old key) is refused.
  std::filesystem::copy_file(two.cert_file, cert,
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE((*server)->Reload().ok());
  EXPECT_EQ((*server)->Current(), before);
  std::filesystem::copy_file(two.key_file, key, std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE((*server)->Reload().ok());
  EXPECT_EQ(CommonName((*server)->Current()->initial().native_handle()), "two.test");
  // The old set stays usable by whoever holds it (open connections).
  EXPECT_EQ(CommonName(before->initial().native_handle()), "one.test");
}

TEST(TlsFailure, ClassifiesOpenSslReasons) {
  auto ssl_error = [](int reason) {
    return asio::error_code(static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)),
                            asio::error::get_ssl_category());
  };
  EXPECT_EQ(ClassifyHandshakeError(ssl_error(SSL_R_UNSUPPORTED_PROTOCOL)), TlsFailure::kVersion);
  EXPECT_EQ(ClassifyHandshakeError(ssl_error(SSL_R_NO_SHARED_CIPHER)), TlsFailure::kCipher);
  EXPECT_EQ(ClassifyHandshakeError(ssl_error(SSL_R_WRONG_VERSION_NUMBER)), TlsFailure::kNotTls);
  EXPECT_EQ(ClassifyHandshakeError(ssl_error(SSL_R_HTTP_REQUEST)), TlsFailure::kNotTls);
  EXPECT_EQ(ClassifyHandshakeError(ssl_error(SSL_R_TLSV1_ALERT_UNKNOWN_CA)),
            TlsFailure::kPeerAlert);
  EXPECT_EQ(ClassifyHandshakeError(asio::ssl::error::stream_truncated), TlsFailure::kClosed);
  EXPECT_EQ(ClassifyHandshakeError(asio::error::eof), TlsFailure::kClosed);
  EXPECT_EQ(ClassifyHandshakeError(asio::error::timed_out), TlsFailure::kOther);
  for (TlsFailure f : kAllTlsFailures) EXPECT_STRNE(TlsFailureName(f), "");
}

// One server handshake on loopback against `client`, which gets the
// connected socket; returns the server's result.
template <typename Client>
Stream::Handshake ServeOne(std::shared_ptr<TlsContexts> set, Client client,
                           std::chrono::milliseconds deadline = std::chrono::seconds(5)) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  Stream::Handshake result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, socket] = co_await acceptor.async_accept(as_tuple(asio::use_awaitable));
        if (ec) co_return;
        Stream stream(std::move(socket));
        asio::steady_timer timer(io);
        result = co_await stream.StartTls(set, timer, deadline);
        if (result.ok) {
          EXPECT_TRUE(stream.secure());
          EXPECT_EQ(stream.tls_version(), result.version);
          char buf[16];
          auto [rec, n] =
              co_await stream.async_read_some(asio::buffer(buf), as_tuple(asio::use_awaitable));
          if (!rec)
            co_await asio::async_write(stream, asio::buffer(buf, n), as_tuple(asio::use_awaitable));
        }
        co_await stream.Close(timer, std::chrono::seconds(1));
      },
      asio::detached);
  std::thread t([&] { client(acceptor.local_endpoint().port()); });
  io.run();
  t.join();
  return result;
}

struct ClientResult {
  bool ok = false;
  std::string peer_cn;
  std::string echoed;
};

ClientResult Connect(uint16_t port, const std::string& ca, const std::string& sni,
                     int max_version = 0) {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(ca);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  if (max_version) SSL_CTX_set_max_proto_version(ctx.native_handle(), max_version);
  if (max_version && max_version < TLS1_2_VERSION) {
    SSL_CTX_set_min_proto_version(ctx.native_handle(), max_version);
    SSL_CTX_set_security_level(ctx.native_handle(), 0);
  }
  asio::ssl::stream<tcp::socket> s(io, ctx);
  ClientResult out;
  asio::error_code ec;
  s.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return out;
  SSL_set_tlsext_host_name(s.native_handle(), sni.c_str());
  s.set_verify_callback(asio::ssl::host_name_verification(sni));
  s.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return out;
  out.ok = true;
  X509* peer = SSL_get1_peer_certificate(s.native_handle());
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, sizeof buf);
  X509_free(peer);
  out.peer_cn = buf;
  asio::write(s, asio::buffer("ping", 4), ec);
  char reply[4];
  size_t n = asio::read(s, asio::buffer(reply), ec);
  out.echoed.assign(reply, n);
  return out;
}

TEST(Stream, HandshakeVerifiesAndSniSelects) {
  TestPki pki;
  Pem def = pki.Leaf("default", {"mx.test"});
  Pem b = pki.Leaf("b", {"b.test"});
  auto set = TlsContexts::Load(Options(def, {{{"b.test"}, b.cert_file, b.key_file}}));
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  for (const char* name : {"mx.test", "b.test"}) {
    ClientResult client;
    auto server =
        ServeOne(*set, [&](uint16_t port) { client = Connect(port, pki.ca_file(), name); });
    ASSERT_TRUE(server.ok) << TlsFailureName(server.failure);
    EXPECT_STREQ(server.version, "TLSv1.3");
    ASSERT_TRUE(client.ok) << name;
    EXPECT_EQ(client.peer_cn, name);
    EXPECT_EQ(client.echoed, "ping");
  }
}

TEST(Stream, OldProtocolVersionsAreRefused) {
  TestPki pki;
  Pem def = pki.Leaf("default", {"mx.test"});
  auto set = TlsContexts::Load(Options(def));
  ASSERT_TRUE(set.ok());
  ClientResult client;
  auto server = ServeOne(*set, [&](uint16_t port) {
    client = Connect(port, pki.ca_file(), "mx.test", TLS1_1_VERSION);
  });
  EXPECT_FALSE(client.ok);
  EXPECT_FALSE(server.ok);
  EXPECT_EQ(server.failure, TlsFailure::kVersion);
  // TLS 1.2 still works.
  server = ServeOne(*set, [&](uint16_t port) {
    client = Connect(port, pki.ca_file(), "mx.test", TLS1_2_VERSION);
  });
  EXPECT_TRUE(client.ok);
  EXPECT_STREQ(server.version, "TLSv1.2");
}

TEST(Stream, SilentClientIsCutAtTheDeadline) {
  TestPki pki;
  auto set = TlsContexts::Load(Options(pki.Leaf("default", {"mx.test"})));
  ASSERT_TRUE(set.ok());
  auto start = std::chrono::steady_clock::now();
  auto server = ServeOne(
      *set,
      [](uint16_t port) {
        asio::io_context io;
        tcp::socket s(io);
        s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        char c;
        asio::error_code ec;
        s.read_some(asio::buffer(&c, 1), ec);  // until the server closes
      },
      std::chrono::milliseconds(200));
  EXPECT_FALSE(server.ok);
  EXPECT_EQ(server.failure, TlsFailure::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(Stream, PlaintextIsNotTls) {
  TestPki pki;
  auto set = TlsContexts::Load(Options(pki.Leaf("default", {"mx.test"})));
  ASSERT_TRUE(set.ok());
  auto server = ServeOne(*set, [](uint16_t port) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    asio::write(s, asio::buffer(std::string("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n")));
    char c;
    asio::error_code ec;
    s.read_some(asio::buffer(&c, 1), ec);
  });
  EXPECT_FALSE(server.ok);
  EXPECT_EQ(server.failure, TlsFailure::kNotTls);
}

// A client's bytes cross to the server one at a time, a millisecond apart;
// the server's go back at once. Serves one connection.
class DripProxy {
 public:
  explicit DripProxy(uint16_t server_port)
      : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        server_port_(server_port) {
    thread_ = std::thread([this] { Run(); });
  }
  ~DripProxy() { thread_.join(); }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void Run() {
    tcp::socket client(io_), server(io_);
    acceptor_.accept(client);
    server.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_port_));
    std::thread back([&] { Copy(server, client, false); });
    Copy(client, server, true);
    back.join();
  }
  static void Copy(tcp::socket& from, tcp::socket& to, bool drip) {
    char buf[4096];
    asio::error_code ec;
    for (;;) {
      size_t n = from.read_some(asio::buffer(buf), ec);
      if (ec) break;
      for (size_t i = 0; i < n && !ec; i += drip ? 1 : n) {
        asio::write(to, asio::buffer(buf + i, drip ? 1 : n), ec);
        if (drip) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (ec) break;
    }
    to.shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t server_port_;
  std::thread thread_;
};

// The session driver races every read against a timer (idle polls of IMAP
// IDLE cancel reads all the time): a read cancelled while a TLS record is
// half received must lose none of it.
TEST(Stream, CancelledReadsKeepAPartialRecord) {
  namespace ex = asio::experimental;
  TestPki pki;
  auto set = TlsContexts::Load(Options(pki.Leaf("default", {"mx.test"})));
  ASSERT_TRUE(set.ok());
  const std::string message(200, 'x');
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::string received;
  int cancelled = 0;
  Stream::Handshake hs;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, socket] = co_await acceptor.async_accept(as_tuple(asio::use_awaitable));
        if (ec) co_return;
        Stream stream(std::move(socket));
        asio::steady_timer timer(io);
        hs = co_await stream.StartTls(*set, timer, std::chrono::seconds(20));
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (hs.ok && received.size() < message.size() &&
               std::chrono::steady_clock::now() < give_up) {
          char buf[512];
          timer.expires_after(std::chrono::milliseconds(5));
          auto [order, rec, n, tec] = co_await ex::make_parallel_group(
                                          stream.async_read_some(asio::buffer(buf), ex::deferred),
                                          timer.async_wait(ex::deferred))
                                          .async_wait(ex::wait_for_one(), asio::use_awaitable);
          received.append(buf, n);
          if (order[0] == 1 && n == 0) ++cancelled;
          if (rec && rec != asio::error::operation_aborted) break;
        }
        co_await stream.Close(timer, std::chrono::seconds(1));
      },
      asio::detached);
  DripProxy proxy(acceptor.local_endpoint().port());
  std::thread client([&] {
    asio::io_context cio;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.load_verify_file(pki.ca_file());
    asio::ssl::stream<tcp::socket> s(cio, ctx);
    asio::error_code ec;
    s.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), proxy.port()), ec);
    SSL_set_tlsext_host_name(s.native_handle(), "mx.test");
    if (!ec) s.handshake(asio::ssl::stream_base::client, ec);
    if (!ec) asio::write(s, asio::buffer(message), ec);
    char c;
    s.read_some(asio::buffer(&c, 1), ec);  // until the server closes
  });
  io.run();
  client.join();
  ASSERT_TRUE(hs.ok) << TlsFailureName(hs.failure);
  EXPECT_EQ(received, message);
  EXPECT_GT(cancelled, 5);  // reads were cancelled while the record trickled in
}

// Megabytes each way: writes that fill the socket wait for it to drain and
// resume where they stopped; reads see every byte in order.
TEST(Stream, LargeTransfersBothWays) {
  TestPki pki;
  auto set = TlsContexts::Load(Options(pki.Leaf("default", {"mx.test"})));
  ASSERT_TRUE(set.ok());
  std::string data(4 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 % 251);
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::string got_by_server(data.size(), '\0');
  asio::error_code server_ec;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, socket] = co_await acceptor.async_accept(as_tuple(asio::use_awaitable));
        if (ec) co_return;
        Stream stream(std::move(socket));
        asio::steady_timer timer(io);
        auto hs = co_await stream.StartTls(*set, timer, std::chrono::seconds(5));
        if (!hs.ok) co_return;
        auto [rec, rn] = co_await asio::async_read(stream, asio::buffer(got_by_server),
                                                   as_tuple(asio::use_awaitable));
        server_ec = rec;
        if (!rec) {
          auto [wec, wn] =
              co_await asio::async_write(stream, asio::buffer(data), as_tuple(asio::use_awaitable));
          server_ec = wec;
        }
        co_await stream.Close(timer, std::chrono::seconds(1));
      },
      asio::detached);
  std::string got_by_client(data.size(), '\0');
  asio::error_code client_ec;
  std::thread client([&] {
    asio::io_context cio;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.load_verify_file(pki.ca_file());
    asio::ssl::stream<tcp::socket> s(cio, ctx);
    s.next_layer().connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), acceptor.local_endpoint().port()),
        client_ec);
    if (!client_ec) s.handshake(asio::ssl::stream_base::client, client_ec);
    if (!client_ec) asio::write(s, asio::buffer(data), client_ec);
    if (!client_ec) asio::read(s, asio::buffer(got_by_client), client_ec);
  });
  io.run();
  client.join();
  EXPECT_FALSE(server_ec) << server_ec.message();
  EXPECT_FALSE(client_ec) << client_ec.message();
  EXPECT_TRUE(got_by_server == data);
  EXPECT_TRUE(got_by_client == data);
}

}  // namespace
}  // namespace porcupine::net
