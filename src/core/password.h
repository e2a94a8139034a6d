// Password hashing with argon2id (libsodium crypto_pwhash_str). CPU- and
// memory-heavy by design: call off the event loop.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace porcupine {

struct PasswordCost {
  uint64_t opslimit = 2;          // passes
  uint64_t memlimit_kib = 65536;  // memory
};

// An encoded "$argon2id$..." string. ResourceExhausted when memory is short.
Result<std::string> HashPassword(std::string_view password, const PasswordCost& cost);
// True when `password` matches `encoded`.
bool VerifyPassword(const std::string& encoded, std::string_view password);
// The hash of a random password nobody knows, with `cost`: what a login of an
// unknown user is checked against, so that it costs what a wrong password
// of an existing user costs (docs/security.md).
Result<std::string> DummyPasswordHash(const PasswordCost& cost);

}  // namespace porcupine
