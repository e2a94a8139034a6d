// TLS for every client listener: the server certificates (one default, more
// chosen by SNI), the protocol versions and ciphers, reloading on SIGHUP,
// and what a failed handshake says about its cause. OpenSSL through asio's
// ssl::context; the per-connection stream is in net/stream.h.
//
// Reload: a TlsServer holds an immutable TlsContexts (one SSL_CTX per
// certificate) and swaps in a new one when Reload() has loaded every file.
// New handshakes take the current set; an open TLS connection keeps the
// SSL_CTX (and so the certificate) it was made with — OpenSSL reference-counts
// it — and a stream keeps its set alive for its lifetime.
//
// SNI: the default context's servername callback looks the name up in its
// set (exact names, then "*.domain" for one leftmost label) and switches the
// connection to that certificate's context; an unknown name or none gets the
// default certificate.
#pragma once

#include <asio/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace porcupine::net {

// Mozilla's "intermediate" TLS 1.2 list without the DHE suites (no DH
// parameters to manage): ECDHE key exchange only, AEAD ciphers only.
inline constexpr char kDefaultTlsCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// The TLS 1.3 suites (OpenSSL's default set).
inline constexpr char kDefaultTlsCipherSuites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// One certificate chain and its key.
struct TlsCertificateFiles {
  // SNI names it serves: "mail.example.com" or "*.example.com" (one label).
  // Empty for the default certificate.
  std::vector<std::string> domains;
  std::string cert_file;  // PEM: the leaf certificate first, then the intermediates
  std::string key_file;   // PEM private key
};

struct TlsOptions {
  // Served when SNI names no other certificate. REQUIRES: files set.
  TlsCertificateFiles default_certificate;
  std::vector<TlsCertificateFiles> certificates;       // chosen by SNI
  int min_version = 0x0303;                            // TLS1_2_VERSION; or 0x0304 (TLS 1.3)
  std::string ciphers = kDefaultTlsCiphers;            // TLS 1.2 (OpenSSL cipher-list syntax)
  std::string ciphersuites = kDefaultTlsCipherSuites;  // TLS 1.3
};

// One loaded set of server contexts. Immutable once loaded; thread-safe.
class TlsContexts {
 public:
  // Reads every certificate and key. InvalidArgument naming the file (or
  // the cipher option) when one cannot be loaded, a key does not match its
  // certificate, or a cipher list selects nothing.
  static Result<std::shared_ptr<TlsContexts>> Load(const TlsOptions& options);
  ~TlsContexts();
  TlsContexts(const TlsContexts&) = delete;
  TlsContexts& operator=(const TlsContexts&) = delete;

  // The context a handshake starts with (the default certificate).
  asio::ssl::context& initial() { return *contexts_.front().ctx; }
  // The context serving `server_name` (case-insensitive, a trailing dot
  // ignored); the default one when no certificate names it.
  SSL_CTX* ForServerName(std::string_view server_name) const;
  // The earliest notAfter of the certificates, seconds since the epoch.
  int64_t earliest_expiry() const { return earliest_expiry_; }
  size_t size() const { return contexts_.size(); }

 private:
  struct Entry {
    std::vector<std::string> domains;  // lower case
    std::unique_ptr<asio::ssl::context> ctx;
  };
  TlsContexts() = default;
  static int OnServerName(SSL* ssl, int* alert, void* arg);

  std::vector<Entry> contexts_;  // [0] is the default
  int64_t earliest_expiry_ = 0;
};

// The node's current contexts, replaced by Reload(). Thread-safe.
class TlsServer {
 public:
  static Result<std::unique_ptr<TlsServer>> Create(TlsOptions options);

  // Loads every file again; on success new handshakes use the new set, on
  // failure the old one stays (the error says what failed).
  Status Reload();
  std::shared_ptr<TlsContexts> Current() const;

 private:
  explicit TlsServer(TlsOptions options) : options_(std::move(options)) {}
  const TlsOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<TlsContexts> current_;  // guarded by mu_
};

// Why a handshake failed, for metrics and logs.
enum class TlsFailure {
  kTimeout,    // not done within the handshake deadline
  kClosed,     // the client closed or reset the connection mid-handshake
  kVersion,    // no protocol version in common (e.g. a TLS 1.0/1.1-only client)
  kCipher,     // no cipher suite or group in common
  kNotTls,     // the bytes were not TLS (plaintext, HTTP, garbage)
  kPeerAlert,  // the client sent an alert (it refused our certificate, mostly)
  kShutdown,   // the node is shutting down
  kOther,
};
inline constexpr TlsFailure kAllTlsFailures[] = {
    TlsFailure::kTimeout, TlsFailure::kClosed,    TlsFailure::kVersion,  TlsFailure::kCipher,
    TlsFailure::kNotTls,  TlsFailure::kPeerAlert, TlsFailure::kShutdown, TlsFailure::kOther};
// "timeout", "closed", "version", "cipher", "not_tls", "peer_alert", "shutdown", "other".
const char* TlsFailureName(TlsFailure f);
// The failure an error of a server handshake stands for (never kTimeout or
// kShutdown: the caller knows those).
TlsFailure ClassifyHandshakeError(const asio::error_code& ec);

// "TLSv1.2", "TLSv1.3" as in the metrics; the versions a handshake can end in.
inline constexpr const char* kTlsVersionNames[] = {"TLSv1.2", "TLSv1.3"};

}  // namespace porcupine::net
