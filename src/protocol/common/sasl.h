// SASL pieces shared by the session engines (RFC 4422): strict base64 and
// the PLAIN message (RFC 4616). Pure functions; no state, no I/O.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

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

// A challenge-response mechanism whose state lives in the backend (SCRAM-
// SHA-256: GNU SASL's server session is stateful, the engines stay pure).
// Request: one client response of the exchange, base64 as the client sent
// it ("" for an empty one); `first` starts a new exchange (any earlier one
// of the connection is dropped).
struct SaslStep {
  std::string response;
  bool first = false;
};

// The backend's answer to a SaslStep.
struct SaslReply {
  enum class Kind {
    kChallenge,  // send `data` (base64) and read the next response
    kSuccess,    // authenticated as `user`; `data` (base64) is the server's
                 // final message, sent as a last challenge whose (empty)
                 // response completes the exchange
    kFailure,    // `status`: PermissionDenied (wrong password, unknown user,
                 // an account without SCRAM secrets: all alike, so the answer
                 // tells nothing of the account), InvalidArgument (a
                 // malformed message), ResourceExhausted (the login
                 // throttle), other (temporary)
  };
  Kind kind = Kind::kFailure;
  std::string data;
  std::string user;
  Status status;
};

}  // namespace porcupine::protocol
