// Test-only certificates: a throwaway CA and leaf certificates it signs
// (P-256 keys), written as PEM files into a temporary directory.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace porcupine::net::testing {

struct Pem {
  std::string cert_file;
  std::string key_file;
};

class TestPki {
 public:
  TestPki() {
    dir_ = std::filesystem::temp_directory_path() /
           ("porcupine-tls-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    ca_key_ = EVP_EC_gen("P-256");
    ca_ = Make("Porcupine Test CA", {}, ca_key_, nullptr, nullptr, true, 3650);
    ca_file_ = Write("ca.pem", ca_, nullptr).cert_file;
  }
  ~TestPki() {
    X509_free(ca_);
    EVP_PKEY_free(ca_key_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& ca_file() const { return ca_file_; }
  std::string dir() const { return dir_.string(); }

  // A leaf for `names` (the first is the CN), valid `days` (negative:
  // expired), in files named after `tag`.
  Pem Leaf(const std::string& tag, const std::vector<std::string>& names, int days = 30) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = Make(names.front(), names, key, ca_, ca_key_, false, days);
    Pem p = Write(tag, cert, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    return p;
  }

 private:
  static X509* Make(const std::string& cn, const std::vector<std::string>& names, EVP_PKEY* key,
                    X509* issuer, EVP_PKEY* issuer_key, bool ca, int days) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), days < 0 ? 2L * days * 86400 : -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), static_cast<long>(days) * 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, nullptr, nullptr, 0);
    auto add = [&](int nid, const std::string& value) {
      X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
      X509_add_ext(x, e, -1);
      X509_EXTENSION_free(e);
    };
    add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (ca) add(NID_key_usage, "critical,keyCertSign,cRLSign");
    if (!names.empty()) {
      std::string san;
      for (const std::string& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
      add(NID_subject_alt_name, san);
    }
    X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
    return x;
  }

  Pem Write(const std::string& tag, X509* cert, EVP_PKEY* key) {
    Pem p{(dir_ / (tag + ".crt")).string(), (dir_ / (tag + ".key")).string()};
    FILE* f = std::fopen(p.cert_file.c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
    if (key != nullptr) {
      f = std::fopen(p.key_file.c_str(), "w");
      PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
      std::fclose(f);
    }
    return p;
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  EVP_PKEY* ca_key_ = nullptr;
  X509* ca_ = nullptr;
  std::string ca_file_;
};

}  // namespace porcupine::net::testing
