#include "net/tls.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <asio/experimental/as_tuple.hpp>
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

}  // namespace
}  // namespace porcupine::net
