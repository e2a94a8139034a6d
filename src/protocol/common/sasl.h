// SASL pieces shared by the session engines (RFC 4422): strict base64 and
// the PLAIN message (RFC 4616). Pure functions; no state, no I/O.
#pragma once

#include <string>
#include <string_view>

namespace porcupine::protocol {

// Decodes strict, padded RFC 4648 base64 (no whitespace, no missing
// padding) into *out. False, with *out wiped and emptied, on any error.
// "" decodes to "".
bool DecodeBase64(std::string_view base64, std::string* out);

// RFC 4648 base64 with padding.
std::string EncodeBase64(std::string_view bytes);

// Decoded SASL PLAIN credentials.
struct SaslPlain {
  std::string user;      // the authentication identity; never empty
  std::string password;  // never empty
};

enum class SaslPlainError {
  kNone,
  kBase64,     // not strict base64
  kMalformed,  // not "[authzid] NUL authcid NUL passwd" with authcid and passwd non-empty
  kAuthzid,    // an authzid that differs from the authcid (no proxy logins)
};

// Decodes one base64 PLAIN response (a protocol's "=" for an empty initial
// response must be mapped to "" by the caller) into *creds. The decoded
// buffer is wiped before returning; on an error *creds holds nothing.
SaslPlainError DecodeSaslPlain(std::string_view base64, SaslPlain* creds);

// Overwrites the bytes of `s` (it held a password) and empties it.
void Wipe(std::string* s);

}  // namespace porcupine::protocol
