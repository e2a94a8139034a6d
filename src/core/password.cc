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

}  // namespace porcupine
