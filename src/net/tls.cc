#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <ctime>
#include <fstream>

#include "net/openssl.h"

namespace porcupine::net {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status CheckReadable(const std::string& path, const char* what) {
  if (path.empty()) return Status::InvalidArgument(std::string(what) + ": not set");
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument(std::string(what) + ": cannot read " + path);
  return Status::Ok();
}

int64_t NotAfter(SSL_CTX* ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  const ASN1_TIME* t = cert ? X509_get0_notAfter(cert) : nullptr;
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

// One context with the node's rules: protocol floor, ciphers, no
// compression, no renegotiation, the server's cipher order (TLS 1.2).
Result<std::unique_ptr<asio::ssl::context>> MakeContext(const TlsOptions& o,
                                                        const TlsCertificateFiles& files) {
  PORCUPINE_RETURN_IF_ERROR(CheckReadable(files.cert_file, "cert_file"));
  PORCUPINE_RETURN_IF_ERROR(CheckReadable(files.key_file, "key_file"));
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* h = ctx->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(h, o.min_version);
  SSL_CTX_set_options(
      h, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  // Idle connections give their record buffers back (asio sets it per
  // connection too): most of a connection's life is idle (IMAP IDLE).
  SSL_CTX_set_mode(h, SSL_MODE_RELEASE_BUFFERS);
  static constexpr unsigned char kSessionContext[] = "porcupine";
  SSL_CTX_set_session_id_context(h, kSessionContext, sizeof kSessionContext - 1);
  if (SSL_CTX_set_cipher_list(h, o.ciphers.c_str()) != 1) {
    return Status::InvalidArgument("ciphers: no usable cipher in \"" + o.ciphers + "\"");
  }
  if (SSL_CTX_set_ciphersuites(h, o.ciphersuites.c_str()) != 1) {
    return Status::InvalidArgument("ciphersuites: no usable suite in \"" + o.ciphersuites + "\"");
  }
  if (SSL_CTX_use_certificate_chain_file(h, files.cert_file.c_str()) != 1) {
    return Status::InvalidArgument("cert_file: " + files.cert_file + ": " + OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(h, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status::InvalidArgument("key_file: " + files.key_file + ": " + OpenSslError());
  }
  if (SSL_CTX_check_private_key(h) != 1) {
    return Status::InvalidArgument("key_file: " + files.key_file + " does not match " +
                                   files.cert_file);
  }
  return ctx;
}

bool NameMatches(const std::string& pattern, const std::string& name) {
  if (pattern == name) return true;
  // "*.example.com" covers exactly one more label: "a.example.com".
  if (pattern.size() < 3 || pattern.compare(0, 2, "*.") != 0) return false;
  size_t dot = name.find('.');
  return dot != std::string::npos && dot > 0 &&
         name.compare(dot, std::string::npos, pattern, 1) == 0;
}

}  // namespace

Result<std::shared_ptr<TlsContexts>> TlsContexts::Load(const TlsOptions& options) {
  std::shared_ptr<TlsContexts> set(new TlsContexts());
  std::vector<const TlsCertificateFiles*> all = {&options.default_certificate};
  for (const TlsCertificateFiles& c : options.certificates) all.push_back(&c);
  for (size_t i = 0; i < all.size(); ++i) {
    auto ctx = MakeContext(options, *all[i]);
    if (!ctx.ok()) {
      std::string where = i == 0 ? "" : "certificates[" + std::to_string(i - 1) + "].";
      return Status::InvalidArgument(where + ctx.status().message());
    }
    Entry e;
    for (const std::string& d : all[i]->domains) e.domains.push_back(Lower(d));
    e.ctx = std::move(*ctx);
    int64_t expiry = NotAfter(e.ctx->native_handle());
    if (set->earliest_expiry_ == 0 || (expiry != 0 && expiry < set->earliest_expiry_)) {
      set->earliest_expiry_ = expiry;
    }
    set->contexts_.push_back(std::move(e));
  }
  SSL_CTX* initial = set->contexts_.front().ctx->native_handle();
  SSL_CTX_set_tlsext_servername_callback(initial, &TlsContexts::OnServerName);
  SSL_CTX_set_tlsext_servername_arg(initial, set.get());
  return set;
}

TlsContexts::~TlsContexts() = default;

SSL_CTX* TlsContexts::ForServerName(std::string_view server_name) const {
  std::string name = Lower(server_name);
  if (!name.empty() && name.back() == '.') name.pop_back();
  for (size_t i = 1; i < contexts_.size(); ++i) {
    for (const std::string& d : contexts_[i].domains) {
      if (d == name) return contexts_[i].ctx->native_handle();
    }
  }
  for (size_t i = 1; i < contexts_.size(); ++i) {
    for (const std::string& d : contexts_[i].domains) {
      if (NameMatches(d, name)) return contexts_[i].ctx->native_handle();
    }
  }
  return contexts_.front().ctx->native_handle();
}

// Runs inside the handshake (ClientHello). `arg` is the set whose initial
// context started it; the stream holds that set alive until it is closed.
int TlsContexts::OnServerName(SSL* ssl, int*, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  SSL_CTX* ctx = static_cast<const TlsContexts*>(arg)->ForServerName(name);
  if (ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;
}

Result<std::unique_ptr<TlsServer>> TlsServer::Create(TlsOptions options) {
  std::unique_ptr<TlsServer> server(new TlsServer(std::move(options)));
  PORCUPINE_RETURN_IF_ERROR(server->Reload());
  return server;
}

Status TlsServer::Reload() {
  auto set = TlsContexts::Load(options_);
  if (!set.ok()) return set.status();
  std::lock_guard lock(mu_);
  current_ = std::move(*set);
  return Status::Ok();
}

std::shared_ptr<TlsContexts> TlsServer::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

const char* TlsFailureName(TlsFailure f) {
  switch (f) {
    case TlsFailure::kTimeout:
      return "timeout";
    case TlsFailure::kClosed:
      return "closed";
    case TlsFailure::kVersion:
      return "version";
    case TlsFailure::kCipher:
      return "cipher";
    case TlsFailure::kNotTls:
      return "not_tls";
    case TlsFailure::kPeerAlert:
      return "peer_alert";
    case TlsFailure::kShutdown:
      return "shutdown";
    case TlsFailure::kOther:
      break;
  }
  return "other";
}

TlsFailure ClassifyHandshakeError(const asio::error_code& ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
      ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
    return TlsFailure::kClosed;
  }
  if (ec.category() != asio::error::get_ssl_category()) return TlsFailure::kOther;
  const auto code = static_cast<unsigned long>(ec.value());
  if (ERR_GET_LIB(code) != ERR_LIB_SSL) return TlsFailure::kOther;
  switch (ERR_GET_REASON(code)) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      return TlsFailure::kVersion;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
      return TlsFailure::kCipher;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
      return TlsFailure::kNotTls;
    default:
      break;
  }
  // SSL_R_SSLV3_ALERT_* and SSL_R_TLSV1_ALERT_*: an alert the client sent.
  if (ERR_GET_REASON(code) >= SSL_AD_REASON_OFFSET) return TlsFailure::kPeerAlert;
  return TlsFailure::kOther;
}

}  // namespace porcupine::net
