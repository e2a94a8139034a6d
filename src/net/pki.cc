#include "net/pki.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <ctime>
#include <fstream>
#include <sstream>

#include "net/openssl.h"

namespace porcupine::net {
namespace {

template <typename T>
using Ptr = OpenSslPtr<T>;

Status SslFailure(const std::string& what) {
  return Status::Internal(what + ": " + OpenSslError());
}

bool IsIp(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string Unbracket(const std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

// Names go into an OpenSSL config string ("DNS:a,IP:b"): no separators.
bool SafeName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
        c != '*' && c != ':') {
      return false;
    }
  }
  return true;
}

Result<std::string> ToPem(X509* cert) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return SslFailure("writing certificate");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> ToPem(EVP_PKEY* key) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return SslFailure("writing private key");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// Every certificate in a PEM text, in order.
std::vector<Ptr<X509>> ParseCerts(const std::string& pem) {
  std::vector<Ptr<X509>> out;
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return out;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the read past the last certificate
  return out;
}

Result<Ptr<X509>> ParseCert(const std::string& pem) {
  std::vector<Ptr<X509>> all = ParseCerts(pem);
  if (all.empty()) return Status::InvalidArgument("no PEM certificate found");
  return std::move(all.front());
}

Result<Ptr<EVP_PKEY>> ParseKey(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!key) {
    ERR_clear_error();
    return Status::InvalidArgument("no PEM private key found (or it is encrypted)");
  }
  return Ptr<EVP_PKEY>(key);
}

Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return SslFailure(fmt::format("certificate extension {}={}", OBJ_nid2sn(nid), value));
  }
  return Status::Ok();
}

// A certificate with a fresh random serial, subject CN, validity and key;
// issuer and extensions are the caller's.
Result<Ptr<X509>> NewCert(const std::string& cn, int days, EVP_PKEY* key) {
  Ptr<X509> cert(X509_new());
  Ptr<BIGNUM> serial(BN_new());
  if (!cert || !serial || X509_set_version(cert.get(), 2) != 1 ||
      BN_rand(serial.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) {
    return SslFailure("new certificate");
  }
  // Valid from a few minutes ago: peers whose clocks lag a little accept it.
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400) ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return SslFailure("certificate validity and key");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("porcupine"), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1) {
    return SslFailure("certificate subject");
  }
  return cert;
}

Result<Ptr<EVP_PKEY>> NewKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) return SslFailure("generating an ECDSA P-256 key");
  return Ptr<EVP_PKEY>(key);
}

Result<KeyPair> Finish(X509* cert, EVP_PKEY* key) {
  Result<std::string> cert_pem = ToPem(cert);
  if (!cert_pem.ok()) return cert_pem.status();
  Result<std::string> key_pem = ToPem(key);
  if (!key_pem.ok()) return key_pem.status();
  return KeyPair{std::move(*cert_pem), std::move(*key_pem)};
}

std::string TimeText(const ASN1_TIME* t, int64_t* unix_out) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return "?";
  if (unix_out) *unix_out = static_cast<int64_t>(timegm(&tm));
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

Status CheckDates(X509* cert) {
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    return Status::InvalidArgument("certificate not valid before " +
                                   TimeText(X509_get0_notBefore(cert), nullptr));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    return Status::InvalidArgument("certificate expired at " +
                                   TimeText(X509_get0_notAfter(cert), nullptr));
  }
  return Status::Ok();
}

// Verifies cert (with the intermediates that follow it) against the CA
// certificates for one purpose (X509_PURPOSE_SSL_SERVER / _CLIENT).
Status VerifyChain(const std::vector<Ptr<X509>>& cas, const std::vector<Ptr<X509>>& chain,
                   int purpose) {
  Ptr<X509_STORE> store(X509_STORE_new());
  Ptr<STACK_OF(X509)> untrusted(sk_X509_new_null());
  Ptr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) return SslFailure("certificate store");
  for (const Ptr<X509>& ca : cas) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) return SslFailure("adding a CA");
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (!sk_X509_push(untrusted.get(), X509_dup(chain[i].get()))) return SslFailure("chain");
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain.front().get(), untrusted.get()) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), purpose) != 1) {
    return SslFailure("verification context");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Status::InvalidArgument(std::string("does not verify against the CA: ") +
                                   X509_verify_cert_error_string(err));
  }
  return Status::Ok();
}

}  // namespace

Result<KeyPair> MakeCa(const std::string& common_name, int days) {
  if (days < 1) return Status::InvalidArgument("days must be at least 1");
  if (common_name.empty()) return Status::InvalidArgument("the CA needs a name");
  Result<Ptr<EVP_PKEY>> key = NewKey();
  if (!key.ok()) return key.status();
  Result<Ptr<X509>> cert = NewCert(common_name, days, key->get());
  if (!cert.ok()) return cert.status();
  X509* x = cert->get();
  if (X509_set_issuer_name(x, X509_get_subject_name(x)) != 1) return SslFailure("CA issuer");
  PORCUPINE_RETURN_IF_ERROR(AddExt(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  PORCUPINE_RETURN_IF_ERROR(AddExt(x, x, NID_key_usage, "critical,keyCertSign,cRLSign"));
  PORCUPINE_RETURN_IF_ERROR(AddExt(x, x, NID_subject_key_identifier, "hash"));
  PORCUPINE_RETURN_IF_ERROR(AddExt(x, x, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(x, key->get(), EVP_sha256()) <= 0) return SslFailure("signing the CA");
  return Finish(x, key->get());
}

Result<KeyPair> IssueCert(const KeyPair& ca, const CertSpec& spec) {
  if (spec.days < 1) return Status::InvalidArgument("days must be at least 1");
  if (!SafeName(spec.common_name)) {
    return Status::InvalidArgument("bad certificate name \"" + spec.common_name + "\"");
  }
  Result<Ptr<X509>> ca_cert = ParseCert(ca.cert_pem);
  if (!ca_cert.ok())
    return Status::InvalidArgument("CA certificate: " + ca_cert.status().message());
  Result<Ptr<EVP_PKEY>> ca_key = ParseKey(ca.key_pem);
  if (!ca_key.ok()) return Status::InvalidArgument("CA key: " + ca_key.status().message());
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the CA key does not match the CA certificate");
  }
  std::string san;
  for (const std::string& raw : spec.hosts) {
    std::string h = Unbracket(raw);
    if (!SafeName(h)) return Status::InvalidArgument("bad host name or address \"" + raw + "\"");
    san += fmt::format("{}{}:{}", san.empty() ? "" : ",", IsIp(h) ? "IP" : "DNS", h);
  }
  Result<Ptr<EVP_PKEY>> key = NewKey();
  if (!key.ok()) return key.status();
  Result<Ptr<X509>> cert = NewCert(spec.common_name, spec.days, key->get());
  if (!cert.ok()) return cert.status();
  X509* x = cert->get();
  X509* issuer = ca_cert->get();
  if (X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1) return SslFailure("issuer");
  // Never valid past the CA: a chain is only as good as its shortest link.
  if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0 &&
      X509_set1_notAfter(x, X509_get0_notAfter(issuer)) != 1) {
    return SslFailure("validity");
  }
  PORCUPINE_RETURN_IF_ERROR(AddExt(x, issuer, NID_basic_constraints, "critical,CA:FALSE"));
  PORCUPINE_RETURN_IF_ERROR(AddExt(x, issuer, NID_key_usage, "critical,digitalSignature"));
  PORCUPINE_RETURN_IF_ERROR(AddExt(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth"));
  PORCUPINE_RETURN_IF_ERROR(AddExt(x, issuer, NID_subject_key_identifier, "hash"));
  PORCUPINE_RETURN_IF_ERROR(AddExt(x, issuer, NID_authority_key_identifier, "keyid:always"));
  if (!san.empty()) PORCUPINE_RETURN_IF_ERROR(AddExt(x, issuer, NID_subject_alt_name, san));
  if (X509_sign(x, ca_key->get(), EVP_sha256()) <= 0) return SslFailure("signing");
  return Finish(x, key->get());
}

Status CheckKeyPair(const KeyPair& pair) {
  std::vector<Ptr<X509>> chain = ParseCerts(pair.cert_pem);
  if (chain.empty()) return Status::InvalidArgument("certificate: no PEM certificate found");
  Result<Ptr<EVP_PKEY>> key = ParseKey(pair.key_pem);
  if (!key.ok()) return Status::InvalidArgument("key: " + key.status().message());
  if (X509_check_private_key(chain.front().get(), key->get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the private key does not match the certificate");
  }
  return CheckDates(chain.front().get());
}

Status VerifyKeyPair(const std::string& ca_pem, const KeyPair& pair) {
  PORCUPINE_RETURN_IF_ERROR(CheckKeyPair(pair));
  std::vector<Ptr<X509>> cas = ParseCerts(ca_pem);
  if (cas.empty()) return Status::InvalidArgument("CA file: no PEM certificate found");
  for (const Ptr<X509>& ca : cas) {
    Status st = CheckDates(ca.get());
    if (!st.ok()) return Status::InvalidArgument("CA " + st.message());
  }
  std::vector<Ptr<X509>> chain = ParseCerts(pair.cert_pem);
  // A node is both: it serves calls and makes them.
  PORCUPINE_RETURN_IF_ERROR(VerifyChain(cas, chain, X509_PURPOSE_SSL_SERVER));
  Status st = VerifyChain(cas, chain, X509_PURPOSE_SSL_CLIENT);
  if (!st.ok()) return Status::InvalidArgument("as a TLS client: " + st.message());
  return Status::Ok();
}

bool CertNamesHost(const std::string& cert_pem, const std::string& host) {
  Result<Ptr<X509>> cert = ParseCert(cert_pem);
  if (!cert.ok()) return false;
  std::string h = Unbracket(host);
  int r = IsIp(h) ? X509_check_ip_asc(cert->get(), h.c_str(), 0)
                  : X509_check_host(cert->get(), h.data(), h.size(), 0, nullptr);
  ERR_clear_error();
  return r == 1;
}

Result<CertInfo> DescribeCert(const std::string& cert_pem) {
  Result<Ptr<X509>> cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.status();
  CertInfo info;
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert->get()), NID_commonName, cn, sizeof cn) >
      0) {
    info.subject_cn = cn;
  }
  Ptr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names.get(), i);
    if (g->type == GEN_DNS) {
      const ASN1_STRING* s = g->d.dNSName;
      info.sans.push_back("DNS:" +
                          std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<size_t>(ASN1_STRING_length(s))));
    } else if (g->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = g->d.iPAddress;
      char buf[INET6_ADDRSTRLEN] = {};
      int family = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
      if (inet_ntop(family, ASN1_STRING_get0_data(s), buf, sizeof buf)) {
        info.sans.push_back(std::string("IP:") + buf);
      }
    }
  }
  info.not_after = TimeText(X509_get0_notAfter(cert->get()), &info.not_after_unix);
  return info;
}

Result<std::string> ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read " + path);
  return ss.str();
}

// ---- ReloadingServerCert ------------------------------------------------------

struct ReloadingServerCert::Loaded {
  Ptr<X509> cert;
  Ptr<EVP_PKEY> key;
  Ptr<STACK_OF(X509)> chain;  // the intermediates after the certificate, if any
  std::string cert_pem;
  std::string stamp;  // modification times and sizes of both files
};

namespace {

std::string FileStamp(const std::string& path) {
  struct stat st = {};
  if (stat(path.c_str(), &st) != 0) return "missing";
  return fmt::format("{}.{}:{}", st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_size);
}

}  // namespace

ReloadingServerCert::ReloadingServerCert(std::string cert_file, std::string key_file,
                                         std::chrono::seconds recheck)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)), recheck_(recheck) {}

ReloadingServerCert::~ReloadingServerCert() = default;

Result<std::shared_ptr<ReloadingServerCert>> ReloadingServerCert::Load(
    std::string cert_file, std::string key_file, std::chrono::seconds recheck) {
  std::shared_ptr<ReloadingServerCert> r(
      new ReloadingServerCert(std::move(cert_file), std::move(key_file), recheck));
  std::shared_ptr<const Loaded> first;
  PORCUPINE_RETURN_IF_ERROR(r->ReadFiles(&first));
  r->current_ = std::move(first);
  r->last_check_ = std::chrono::steady_clock::now();
  return r;
}

Status ReloadingServerCert::ReadFiles(std::shared_ptr<const Loaded>* out) {
  auto loaded = std::make_shared<Loaded>();
  // The stamp is taken before the reads: a file replaced meanwhile is read
  // again at the next check.
  loaded->stamp = FileStamp(cert_file_) + "/" + FileStamp(key_file_);
  Result<std::string> cert_pem = ReadFileText(cert_file_);
  if (!cert_pem.ok()) return cert_pem.status();
  Result<std::string> key_pem = ReadFileText(key_file_);
  if (!key_pem.ok()) return key_pem.status();
  Status st = CheckKeyPair({*cert_pem, *key_pem});
  if (!st.ok()) return Status::InvalidArgument(cert_file_ + ", " + key_file_ + ": " + st.message());
  std::vector<Ptr<X509>> chain = ParseCerts(*cert_pem);
  loaded->cert = std::move(chain.front());
  loaded->chain.reset(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(loaded->chain.get(), chain[i].release());
  Result<Ptr<EVP_PKEY>> key = ParseKey(*key_pem);
  if (!key.ok()) return key.status();
  loaded->key = std::move(*key);
  loaded->cert_pem = std::move(*cert_pem);
  *out = std::move(loaded);
  return Status::Ok();
}

std::shared_ptr<const ReloadingServerCert::Loaded> ReloadingServerCert::Current() {
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - last_check_ < recheck_) return current_;
  last_check_ = now;
  std::string stamp = FileStamp(cert_file_) + "/" + FileStamp(key_file_);
  if (stamp == current_->stamp) return current_;
  std::shared_ptr<const Loaded> next;
  Status st = ReadFiles(&next);
  if (!st.ok()) {
    spdlog::warn("TLS certificate not reloaded, the previous one stays in use: {}", st.message());
    return current_;
  }
  current_ = std::move(next);
  ++reloads_;
  Result<CertInfo> info = DescribeCert(current_->cert_pem);
  spdlog::info("TLS certificate reloaded from {} (valid until {})", cert_file_,
               info.ok() ? info->not_after : "?");
  return current_;
}

int ReloadingServerCert::OnHandshake(SSL* ssl, void* self) {
  std::shared_ptr<const Loaded> pair = static_cast<ReloadingServerCert*>(self)->Current();
  // SSL_use_cert_and_key takes its own references.
  return SSL_use_cert_and_key(ssl, pair->cert.get(), pair->key.get(), pair->chain.get(), 1) == 1
             ? 1
             : 0;
}

void ReloadingServerCert::Attach(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_cert_cb(ctx, &ReloadingServerCert::OnHandshake, this);
}

std::string ReloadingServerCert::current_cert_pem() { return Current()->cert_pem; }

uint64_t ReloadingServerCert::reloads() {
  std::lock_guard lock(mu_);
  return reloads_;
}

}  // namespace porcupine::net
