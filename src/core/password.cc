#include "core/password.h"

#include <sodium.h>

namespace porcupine {
namespace {

bool InitSodium() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, const PasswordCost& cost) {
  if (!InitSodium()) return Status::Internal("libsodium failed to initialise");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), cost.opslimit,
                            static_cast<size_t>(cost.memlimit_kib) * 1024,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::ResourceExhausted("argon2id: out of memory");
  }
  return std::string(out);
}

bool VerifyPassword(const std::string& encoded, std::string_view password) {
  if (!InitSodium()) return false;
  return crypto_pwhash_str_verify(encoded.c_str(), password.data(), password.size()) == 0;
}

Result<std::string> DummyPasswordHash(const PasswordCost& cost) {
  if (!InitSodium()) return Status::Internal("libsodium failed to initialise");
  unsigned char secret[32];
  randombytes_buf(secret, sizeof secret);
  char hex[2 * sizeof secret + 1];
  sodium_bin2hex(hex, sizeof hex, secret, sizeof secret);
  Result<std::string> hash = HashPassword(hex, cost);
  sodium_memzero(hex, sizeof hex);
  sodium_memzero(secret, sizeof secret);
  return hash;
}

}  // namespace porcupine
