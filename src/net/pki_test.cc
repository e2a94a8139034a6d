#include "net/pki.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace porcupine::net {
namespace {

KeyPair Ca(const std::string& name = "test CA", int days = 3650) {
  Result<KeyPair> ca = MakeCa(name, days);
  EXPECT_TRUE(ca.ok()) << ca.status().ToString();
  return *ca;
}

KeyPair Node(const KeyPair& ca, const std::string& name,
             std::vector<std::string> hosts = {"n1", "127.0.0.1", "::1"}, int days = 825) {
  Result<KeyPair> pair = IssueCert(ca, {name, std::move(hosts), days});
  EXPECT_TRUE(pair.ok()) << pair.status().ToString();
  return *pair;
}

TEST(Pki, IssuedCertificateVerifiesAgainstItsCa) {
  KeyPair ca = Ca();
  KeyPair n1 = Node(ca, "n1");
  Status st = VerifyKeyPair(ca.cert_pem, n1);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(n1.key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  Result<CertInfo> info = DescribeCert(n1.cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->subject_cn, "n1");
  EXPECT_EQ(info->sans, (std::vector<std::string>{"DNS:n1", "IP:127.0.0.1", "IP:::1"}));
  EXPECT_GT(info->not_after_unix, time(nullptr) + 800 * 86400);
}

TEST(Pki, CertificateOfAnotherCaDoesNotVerify) {
  KeyPair ca = Ca();
  KeyPair rogue_ca = Ca("rogue CA");
  KeyPair rogue = Node(rogue_ca, "n1");
  Status st = VerifyKeyPair(ca.cert_pem, rogue);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("does not verify against the CA"), std::string::npos) << st.message();
  // A node certificate is no CA: what it signs does not chain.
  KeyPair n1 = Node(ca, "n1");
  Result<KeyPair> child = IssueCert(n1, {"n2", {"n2"}, 30});
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  EXPECT_FALSE(VerifyKeyPair(ca.cert_pem, *child).ok());
}

TEST(Pki, KeyOfAnotherCertificateIsRefused) {
  KeyPair ca = Ca();
  KeyPair n1 = Node(ca, "n1");
  KeyPair n2 = Node(ca, "n2");
  Status st = VerifyKeyPair(ca.cert_pem, {n1.cert_pem, n2.key_pem});
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("does not match"), std::string::npos) << st.message();
  EXPECT_FALSE(CheckKeyPair({n1.cert_pem, "not a key"}).ok());
  EXPECT_FALSE(VerifyKeyPair("no CA here", n1).ok());
}

TEST(Pki, SubjectAltNamesDecideWhichHostsACertificateNames) {
  KeyPair ca = Ca();
  KeyPair n1 = Node(ca, "n1", {"n1", "mx1.example.net", "127.0.0.1", "10.77.3.1", "[::1]"});
  for (const char* host : {"n1", "mx1.example.net", "127.0.0.1", "10.77.3.1", "::1", "[::1]"}) {
    EXPECT_TRUE(CertNamesHost(n1.cert_pem, host)) << host;
  }
  for (const char* host : {"n2", "10.77.3.2", "127.0.0.2", "example.net", "localhost"}) {
    EXPECT_FALSE(CertNamesHost(n1.cert_pem, host)) << host;
  }
}

TEST(Pki, BadSpecsAreRefused) {
  KeyPair ca = Ca();
  EXPECT_EQ(IssueCert(ca, {"n1", {"a,IP:1.2.3.4"}, 30}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(IssueCert(ca, {"n 1", {}, 30}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(IssueCert(ca, {"n1", {}, 0}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MakeCa("ca", 0).status().code(), Code::kInvalidArgument);
  KeyPair other = Ca("other");
  EXPECT_EQ(IssueCert({ca.cert_pem, other.key_pem}, {"n1", {}, 30}).status().code(),
            Code::kInvalidArgument);
}

TEST(Pki, NodeCertificateNeverOutlivesItsCa) {
  KeyPair ca = Ca("short CA", 2);
  KeyPair n1 = Node(ca, "n1", {"n1"}, 825);
  Result<CertInfo> ca_info = DescribeCert(ca.cert_pem);
  Result<CertInfo> n1_info = DescribeCert(n1.cert_pem);
  ASSERT_TRUE(ca_info.ok() && n1_info.ok());
  EXPECT_EQ(n1_info->not_after_unix, ca_info->not_after_unix);
  EXPECT_TRUE(VerifyKeyPair(ca.cert_pem, n1).ok());
}

// ---- a TLS server certificate that follows its files ---------------------------

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/porcupine-pki-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void Write(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  std::ofstream(tmp, std::ios::trunc) << text;
  std::filesystem::rename(tmp, path);
}

// Runs one TLS handshake in memory; returns the server certificate the client
// verified (PEM), or "" when the handshake failed.
std::string Handshake(SSL_CTX* server_ctx, const std::string& ca_pem, const std::string& host) {
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  BIO* ca_bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509* ca = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx), ca);
  SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, nullptr);
  SSL* client = SSL_new(client_ctx);
  SSL_set1_host(client, host.c_str());
  SSL* server = SSL_new(server_ctx);
  BIO *client_io = nullptr, *server_io = nullptr;
  BIO_new_bio_pair(&client_io, 0, &server_io, 0);
  SSL_set_bio(client, client_io, client_io);
  SSL_set_bio(server, server_io, server_io);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  bool client_done = false, server_done = false, failed = false;
  for (int i = 0; i < 100 && !(client_done && server_done) && !failed; ++i) {
    if (!client_done) {
      int r = SSL_do_handshake(client);
      client_done = r == 1;
      failed = r <= 0 && SSL_get_error(client, r) != SSL_ERROR_WANT_READ;
    }
    if (!server_done && !failed) {
      int r = SSL_do_handshake(server);
      server_done = r == 1;
      failed = r <= 0 && SSL_get_error(server, r) != SSL_ERROR_WANT_READ;
    }
  }
  std::string pem;
  if (client_done && server_done && SSL_get_verify_result(client) == X509_V_OK) {
    X509* peer = SSL_get1_peer_certificate(client);
    BIO* out = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(out, peer);
    char* data = nullptr;
    long n = BIO_get_mem_data(out, &data);
    pem.assign(data, static_cast<size_t>(n));
    BIO_free(out);
    X509_free(peer);
  }
  ERR_clear_error();
  SSL_free(client);
  SSL_free(server);
  SSL_CTX_free(client_ctx);
  X509_free(ca);
  BIO_free(ca_bio);
  return pem;
}

TEST(ReloadingServerCert, ServesItsFilesAndFollowsThemWhenReplaced) {
  TempDir dir;
  KeyPair ca = Ca();
  KeyPair first = Node(ca, "admin1", {"127.0.0.1"});
  Write(dir.File("a.crt"), first.cert_pem);
  Write(dir.File("a.key"), first.key_pem);
  auto r = ReloadingServerCert::Load(dir.File("a.crt"), dir.File("a.key"), std::chrono::seconds(0));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  (*r)->Attach(ctx);
  EXPECT_EQ(Handshake(ctx, ca.cert_pem, "127.0.0.1"), first.cert_pem);
  EXPECT_EQ(Handshake(ctx, ca.cert_pem, "10.0.0.1"), "");  // not a name of the certificate

  // A key that does not match the new certificate (half-way through a
  // replacement): the previous pair stays.
  KeyPair second = Node(ca, "admin2", {"127.0.0.1"});
  Write(dir.File("a.crt"), second.cert_pem);
  EXPECT_EQ(Handshake(ctx, ca.cert_pem, "127.0.0.1"), first.cert_pem);
  EXPECT_EQ((*r)->reloads(), 0u);
  Write(dir.File("a.key"), second.key_pem);
  EXPECT_EQ(Handshake(ctx, ca.cert_pem, "127.0.0.1"), second.cert_pem);
  EXPECT_EQ((*r)->reloads(), 1u);
  SSL_CTX_free(ctx);
}

TEST(ReloadingServerCert, ChecksTheFilesAtMostOncePerInterval) {
  TempDir dir;
  KeyPair ca = Ca();
  KeyPair first = Node(ca, "a", {"127.0.0.1"});
  Write(dir.File("a.crt"), first.cert_pem);
  Write(dir.File("a.key"), first.key_pem);
  auto r = ReloadingServerCert::Load(dir.File("a.crt"), dir.File("a.key"), std::chrono::hours(1));
  ASSERT_TRUE(r.ok());
  KeyPair second = Node(ca, "b", {"127.0.0.1"});
  Write(dir.File("a.crt"), second.cert_pem);
  Write(dir.File("a.key"), second.key_pem);
  EXPECT_EQ((*r)->current_cert_pem(), first.cert_pem);
}

TEST(ReloadingServerCert, UnusableFilesAreRefusedAtLoad) {
  TempDir dir;
  KeyPair ca = Ca();
  KeyPair a = Node(ca, "a");
  KeyPair b = Node(ca, "b");
  Write(dir.File("a.crt"), a.cert_pem);
  Write(dir.File("b.key"), b.key_pem);
  auto r = ReloadingServerCert::Load(dir.File("a.crt"), dir.File("b.key"), std::chrono::seconds(1));
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  auto missing =
      ReloadingServerCert::Load(dir.File("none.crt"), dir.File("b.key"), std::chrono::seconds(1));
  EXPECT_EQ(missing.status().code(), Code::kIoError);
}

}  // namespace
}  // namespace porcupine::net
