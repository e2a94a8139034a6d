#include "acme/jws.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>

#include "net/openssl.h"

namespace porcupine::acme {
namespace {

template <typename T>
using Ptr = net::OpenSslPtr<T>;

Status SslFailure(const std::string& what) {
  return Status::Internal(what + ": " + net::OpenSslError());
}

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* key) { return {key, EVP_PKEY_free}; }

bool IsP256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) !=
      1) {
    return false;
  }
  return std::string_view(group, len) == "prime256v1" || std::string_view(group, len) == "P-256";
}

std::string Coordinate(EVP_PKEY* key, const char* param) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &raw) != 1) return "";
  Ptr<BIGNUM> bn(raw);
  unsigned char buf[32];
  if (BN_bn2binpad(bn.get(), buf, sizeof buf) != 32) return "";
  return Base64Url(std::string_view(reinterpret_cast<char*>(buf), sizeof buf));
}

// A DNS name as RFC 1035 allows it (letters, digits, hyphens, dots).
bool DnsName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace

std::string Base64Url(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

Result<std::string> FromBase64Url(std::string_view text) {
  std::string b64(text);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  for (char& c : b64) {
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    } else if (!std::isalnum(static_cast<unsigned char>(c))) {
      return Status::InvalidArgument("not base64url");
    }
  }
  if (b64.size() % 4 == 1) return Status::InvalidArgument("not base64url");
  const size_t pad = (4 - b64.size() % 4) % 4;
  b64.append(pad, '=');
  std::string out(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return Status::InvalidArgument("not base64url");
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

Result<EcKey> EcKey::Generate() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) return SslFailure("generating a P-256 key");
  return EcKey(Own(key));
}

Result<EcKey> EcKey::FromPem(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  ERR_clear_error();
  if (key == nullptr) return Status::InvalidArgument("no PEM private key found");
  std::shared_ptr<EVP_PKEY> owned = Own(key);
  if (!IsP256(key)) return Status::InvalidArgument("not an ECDSA P-256 key");
  return EcKey(std::move(owned));
}

Result<std::string> EcKey::ToPem() const {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return SslFailure("writing the private key");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

nlohmann::json EcKey::Jwk() const {
  return {{"crv", "P-256"},
          {"kty", "EC"},
          {"x", Coordinate(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X)},
          {"y", Coordinate(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y)}};
}

Result<std::string> EcKey::SignEs256(std::string_view data) const {
  Ptr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    return SslFailure("ES256 signature");
  }
  std::string der(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return SslFailure("ES256 signature");
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  Ptr<ECDSA_SIG> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  if (!sig) return SslFailure("ES256 signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  unsigned char raw[64];
  if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32) {
    return SslFailure("ES256 signature");
  }
  return std::string(reinterpret_cast<char*>(raw), sizeof raw);
}

Result<std::string> JwkThumbprint(const nlohmann::json& jwk) {
  if (!jwk.is_object() || !jwk.contains("kty") || !jwk["kty"].is_string()) {
    return Status::InvalidArgument("JWK without kty");
  }
  const std::string kty = jwk["kty"];
  std::vector<const char*> members;
  if (kty == "EC") {
    members = {"crv", "kty", "x", "y"};
  } else if (kty == "RSA") {
    members = {"e", "kty", "n"};
  } else {
    return Status::InvalidArgument("JWK kty " + kty + " not supported");
  }
  // nlohmann's object is ordered by key and dump() adds no whitespace: the
  // canonical form of RFC 7638 §3.
  nlohmann::json canonical = nlohmann::json::object();
  for (const char* m : members) {
    if (!jwk.contains(m) || !jwk[m].is_string()) {
      return Status::InvalidArgument(std::string("JWK without ") + m);
    }
    canonical[m] = jwk[m];
  }
  const std::string text = canonical.dump();
  unsigned char digest[32];
  unsigned int n = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &n, EVP_sha256(), nullptr) != 1) {
    return SslFailure("SHA-256");
  }
  return Base64Url(std::string_view(reinterpret_cast<char*>(digest), n));
}

Result<nlohmann::json> SignJws(const EcKey& key, const JwsHeader& header,
                               const std::optional<nlohmann::json>& payload) {
  nlohmann::json prot = {{"alg", "ES256"}, {"nonce", header.nonce}, {"url", header.url}};
  if (header.kid.empty()) {
    prot["jwk"] = key.Jwk();
  } else {
    prot["kid"] = header.kid;
  }
  const std::string p64 = Base64Url(prot.dump());
  const std::string body64 = payload ? Base64Url(payload->dump()) : "";
  Result<std::string> sig = key.SignEs256(p64 + "." + body64);
  if (!sig.ok()) return sig.status();
  return nlohmann::json{{"protected", p64}, {"payload", body64}, {"signature", Base64Url(*sig)}};
}

Result<std::string> MakeCsrDer(const EcKey& key, const std::vector<std::string>& domains) {
  if (domains.empty()) return Status::InvalidArgument("no domain to certify");
  std::string sans;
  for (const std::string& d : domains) {
    if (!DnsName(d)) return Status::InvalidArgument("not a DNS name: \"" + d + "\"");
    sans += (sans.empty() ? "DNS:" : ",DNS:") + d;
  }
  Ptr<X509_REQ> req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return SslFailure("building the CSR");
  }
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(domains[0].c_str()), -1, -1,
                                 0) != 1) {
    return SslFailure("CSR subject");
  }
  Ptr<STACK_OF(X509_EXTENSION)> exts(sk_X509_EXTENSION_new_null());
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, sans.c_str());
  if (!exts || san == nullptr || sk_X509_EXTENSION_push(exts.get(), san) == 0 ||
      X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
    if (san != nullptr && !exts) X509_EXTENSION_free(san);
    return SslFailure("CSR subjectAltName");
  }
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) return SslFailure("signing the CSR");
  int len = i2d_X509_REQ(req.get(), nullptr);
  if (len <= 0) return SslFailure("encoding the CSR");
  std::string der(static_cast<size_t>(len), '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509_REQ(req.get(), &p);
  return der;
}

}  // namespace porcupine::acme
