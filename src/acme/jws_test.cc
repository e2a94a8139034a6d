#include "acme/jws.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace porcupine::acme {
namespace {

// RFC 7638 §3.1: the example RSA key and its thumbprint.
TEST(JwkThumbprint, Rfc7638Example) {
  nlohmann::json jwk = {
      {"kty", "RSA"},
      {"n",
       "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
       "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"
       "65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
       "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
      {"e", "AQAB"},
      {"alg", "RS256"},
      {"kid", "2011-04-29"}};
  Result<std::string> t = JwkThumbprint(jwk);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST(JwkThumbprint, RefusesIncompleteKeys) {
  EXPECT_FALSE(JwkThumbprint({{"kty", "EC"}, {"crv", "P-256"}, {"x", "a"}}).ok());
  EXPECT_FALSE(JwkThumbprint({{"kty", "oct"}, {"k", "a"}}).ok());
  EXPECT_FALSE(JwkThumbprint(nlohmann::json::array()).ok());
}

TEST(Base64Url, RoundTripsWithoutPadding) {
  EXPECT_EQ(Base64Url(""), "");
  EXPECT_EQ(Base64Url("f"), "Zg");
  EXPECT_EQ(Base64Url("fo"), "Zm8");
  EXPECT_EQ(Base64Url("foo"), "Zm9v");
  EXPECT_EQ(Base64Url(std::string("\xfb\xff\xfe", 3)), "-__-");
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\xfe\xfd\xfc\xfb"}) {
    Result<std::string> back = FromBase64Url(Base64Url(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  EXPECT_FALSE(FromBase64Url("a+b").ok());
  EXPECT_FALSE(FromBase64Url("abcde").ok());
}

// The raw r||s signature, turned back into DER, verifies with the key.
bool VerifyEs256(const EcKey& key, const std::string& data, const std::string& raw) {
  if (raw.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
            EVP_DigestVerify(ctx, der, static_cast<size_t>(len),
                             reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return ok;
}

TEST(EcKey, SignsEs256AndRoundTripsPem) {
  Result<EcKey> key = EcKey::Generate();
  ASSERT_TRUE(key.ok());
  Result<std::string> sig = key->SignEs256("hello");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(VerifyEs256(*key, "hello", *sig));
  EXPECT_FALSE(VerifyEs256(*key, "hellO", *sig));

  Result<std::string> pem = key->ToPem();
  ASSERT_TRUE(pem.ok());
  Result<EcKey> again = EcKey::FromPem(*pem);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->Jwk(), key->Jwk());
  nlohmann::json jwk = key->Jwk();
  EXPECT_EQ(jwk["kty"], "EC");
  EXPECT_EQ(jwk["crv"], "P-256");
  EXPECT_EQ(jwk["x"].get<std::string>().size(), 43u);  // 32 bytes
  EXPECT_EQ(jwk["y"].get<std::string>().size(), 43u);
  EXPECT_TRUE(JwkThumbprint(jwk).ok());
}

TEST(EcKey, RefusesOtherKeys) {
  EVP_PKEY* rsa = EVP_RSA_gen(2048);
  ASSERT_NE(rsa, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, rsa, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(rsa);
  EXPECT_FALSE(EcKey::FromPem(pem).ok());
  EXPECT_FALSE(EcKey::FromPem("garbage").ok());
}

TEST(SignJws, FlattenedWithJwkOrKid) {
  Result<EcKey> key = EcKey::Generate();
  ASSERT_TRUE(key.ok());
  Result<nlohmann::json> jws =
      SignJws(*key, {"nonce1", "https://ca/new-acct", ""}, nlohmann::json{{"a", 1}});
  ASSERT_TRUE(jws.ok());
  nlohmann::json prot =
      nlohmann::json::parse(*FromBase64Url((*jws)["protected"].get<std::string>()));
  EXPECT_EQ(prot["alg"], "ES256");
  EXPECT_EQ(prot["nonce"], "nonce1");
  EXPECT_EQ(prot["url"], "https://ca/new-acct");
  EXPECT_EQ(prot["jwk"], key->Jwk());
  EXPECT_FALSE(prot.contains("kid"));
  EXPECT_EQ(*FromBase64Url((*jws)["payload"].get<std::string>()), R"({"a":1})");
  std::string signing_input =
      (*jws)["protected"].get<std::string>() + "." + (*jws)["payload"].get<std::string>();
  EXPECT_TRUE(
      VerifyEs256(*key, signing_input, *FromBase64Url((*jws)["signature"].get<std::string>())));

  // POST-as-GET: an empty payload, the account URL instead of the key.
  Result<nlohmann::json> get =
      SignJws(*key, {"n2", "https://ca/order/1", "https://ca/acct/7"}, std::nullopt);
  ASSERT_TRUE(get.ok());
  EXPECT_EQ((*get)["payload"], "");
  prot = nlohmann::json::parse(*FromBase64Url((*get)["protected"].get<std::string>()));
  EXPECT_EQ(prot["kid"], "https://ca/acct/7");
  EXPECT_FALSE(prot.contains("jwk"));
}

TEST(MakeCsrDer, NamesEveryDomain) {
  Result<EcKey> key = EcKey::Generate();
  ASSERT_TRUE(key.ok());
  Result<std::string> der = MakeCsrDer(*key, {"mail.example.com", "imap.example.com"});
  ASSERT_TRUE(der.ok()) << der.status().ToString();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
  X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size()));
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(X509_REQ_verify(req, key->get()), 1);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  ASSERT_NE(exts, nullptr);
  std::string sans;
  for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* e = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_subject_alt_name) continue;
    BIO* bio = BIO_new(BIO_s_mem());
    X509V3_EXT_print(bio, e, 0, 0);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    sans.assign(data, static_cast<size_t>(n));
    BIO_free(bio);
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_free(req);
  EXPECT_EQ(sans, "DNS:mail.example.com, DNS:imap.example.com");

  EXPECT_FALSE(MakeCsrDer(*key, {}).ok());
  EXPECT_FALSE(MakeCsrDer(*key, {"a,DNS:evil.com"}).ok());
}

}  // namespace
}  // namespace porcupine::acme
