// The cluster's small public-key infrastructure (docs/security.md "Cluster and
// admin"): a private CA, node certificates it signs, the checks a node makes
// on its own files before it serves, and a server certificate that follows
// its files when they are replaced. OpenSSL 3 (EVP, X509); ECDSA P-256 keys,
// SHA-256 signatures.
//
// Everything here is thread-safe unless said otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace porcupine::net {

// A certificate and its private key, both PEM.
struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
};

struct CertSpec {
  std::string common_name;         // subject CN: the node name
  std::vector<std::string> hosts;  // subjectAltName: IP addresses become IP entries, the rest DNS
  int days = 825;                  // validity from now, cut at the CA's own expiry
};

// A new self-signed CA certificate (CA:TRUE, pathlen 0, keyCertSign) with a
// fresh key, valid `days` from now. InvalidArgument for days < 1, Internal
// when OpenSSL fails.
Result<KeyPair> MakeCa(const std::string& common_name, int days);

// A certificate for one node, signed by `ca`: usable as TLS server and client
// (extendedKeyUsage serverAuth, clientAuth), CA:FALSE, with spec.hosts as
// subjectAltNames. InvalidArgument for a bad spec or a CA pair whose key does
// not match its certificate.
Result<KeyPair> IssueCert(const KeyPair& ca, const CertSpec& spec);

// OK when `pair.key_pem` is the key of `pair.cert_pem`, the certificate is
// valid now and chains to the CA certificate(s) in ca_pem. Otherwise
// InvalidArgument saying which of these failed (OpenSSL's reason included).
Status VerifyKeyPair(const std::string& ca_pem, const KeyPair& pair);

// OK when the key matches the certificate and the certificate is valid now
// (no chain check: for a server certificate from any CA).
Status CheckKeyPair(const KeyPair& pair);

// True when the certificate names `host` (an IP address or a DNS name) in its
// subjectAltName, as a TLS client checking the server it dialled would.
bool CertNamesHost(const std::string& cert_pem, const std::string& host);

// What a certificate says, for messages and the `cluster certs` output.
struct CertInfo {
  std::string subject_cn;
  std::vector<std::string> sans;  // "DNS:n1", "IP:127.0.0.1"
  std::string not_after;          // "2027-03-01 12:00:00 UTC"
  int64_t not_after_unix = 0;
};
Result<CertInfo> DescribeCert(const std::string& cert_pem);

// Reads a whole (small) file. IoError naming the path.
Result<std::string> ReadFileText(const std::string& path);

// A TLS server's certificate and key, read from two files and read again when
// either file changes (modification time or size), at most once per
// `recheck`, on the next handshake. A changed pair that cannot be used (a
// half-written file, a key that does not match) is logged and the previous
// pair stays in use until the files are fixed.
class ReloadingServerCert {
 public:
  // Reads the files; InvalidArgument naming the file when they are unusable.
  static Result<std::shared_ptr<ReloadingServerCert>> Load(std::string cert_file,
                                                           std::string key_file,
                                                           std::chrono::seconds recheck);
  ~ReloadingServerCert();
  ReloadingServerCert(const ReloadingServerCert&) = delete;
  ReloadingServerCert& operator=(const ReloadingServerCert&) = delete;

  // Makes every handshake on ctx present the current pair. The object must
  // outlive ctx's connections. Also sets TLS 1.2 as the minimum version.
  void Attach(SSL_CTX* ctx);

  // The PEM certificate now in use (tests).
  std::string current_cert_pem();
  // Pairs loaded after the first (tests, logs).
  uint64_t reloads();

 private:
  struct Loaded;
  ReloadingServerCert(std::string cert_file, std::string key_file, std::chrono::seconds recheck);
  static int OnHandshake(SSL* ssl, void* self);
  std::shared_ptr<const Loaded> Current();
  Status ReadFiles(std::shared_ptr<const Loaded>* out);

  const std::string cert_file_;
  const std::string key_file_;
  const std::chrono::seconds recheck_;
  std::mutex mu_;
  std::shared_ptr<const Loaded> current_;             // guarded by mu_
  std::chrono::steady_clock::time_point last_check_;  // guarded by mu_
  uint64_t reloads_ = 0;                              // guarded by mu_
};

}  // namespace porcupine::net
