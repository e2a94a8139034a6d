// The cryptography of ACME (RFC 8555 §6.2, RFC 7515, RFC 7638): ECDSA P-256
// keys, their JWK form and thumbprint, ES256 flattened-JSON JWS, and the
// certificate signing request a finalize call carries. OpenSSL 3 (EVP),
// JSON with nlohmann.
//
// Everything here is pure (no I/O) and thread-safe: an EcKey is immutable.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace porcupine::acme {

// base64url without padding (RFC 7515 §2).
std::string Base64Url(std::string_view bytes);
// The bytes of a base64url text (padding optional). InvalidArgument when it
// is not base64url.
Result<std::string> FromBase64Url(std::string_view text);

// An ECDSA P-256 key pair. Copies share the (immutable) OpenSSL key.
class EcKey {
 public:
  // A fresh key. Internal when OpenSSL fails.
  static Result<EcKey> Generate();
  // A PEM private key (PKCS#8 or SEC1). InvalidArgument when it is not a
  // P-256 key.
  static Result<EcKey> FromPem(const std::string& pem);
  // The private key as PKCS#8 PEM.
  Result<std::string> ToPem() const;
  // The public key as a JWK: {"crv":"P-256","kty":"EC","x":...,"y":...}.
  nlohmann::json Jwk() const;
  // ES256 signature of `data`: r || s, 32 bytes each (RFC 7518 §3.4), not
  // DER. Internal when OpenSSL fails.
  Result<std::string> SignEs256(std::string_view data) const;
  EVP_PKEY* get() const { return key_.get(); }

 private:
  explicit EcKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

// RFC 7638 thumbprint of a public JWK: base64url(SHA-256) of its required
// members ("crv","kty","x","y" for EC; "e","kty","n" for RSA) in
// lexicographic order without whitespace. InvalidArgument for another kty or
// a missing member.
Result<std::string> JwkThumbprint(const nlohmann::json& jwk);

// The protected header of one request: the account URL (`kid`) once the
// account exists, else the public key itself (`jwk`; newAccount only).
struct JwsHeader {
  std::string nonce;
  std::string url;
  std::string kid;  // "" = send the JWK
};

// A flattened JWS (RFC 7515 §7.2.2) of `payload` signed with ES256:
// {"protected","payload","signature"}. No payload = POST-as-GET (RFC 8555
// §6.3): the payload is the empty string.
Result<nlohmann::json> SignJws(const EcKey& key, const JwsHeader& header,
                               const std::optional<nlohmann::json>& payload);

// A DER certificate signing request for `domains` (subjectAltName DNS
// entries, the first also as CN) with `key`, SHA-256. InvalidArgument for no
// domains or a name that is not a DNS name.
Result<std::string> MakeCsrDer(const EcKey& key, const std::vector<std::string>& domains);

}  // namespace porcupine::acme
