// SCRAM-SHA-256 (RFC 5802, RFC 7677) through GNU SASL (libgsasl): the secrets
// a password leaves in the user's profile, and the server side of the
// exchanges of one connection. No hand-written crypto: gsasl derives the keys
// and checks the client's proof; this file only moves strings.
//
// Secrets are kept in RFC 5803's form, "SCRAM-SHA-256$<iterations>:<salt,
// base64>$<StoredKey, base64>:<ServerKey, base64>" (store Profile.scram_sha256):
// enough to verify a client and to prove the server to it, not enough to log
// in as the user (nor to find the password other than by PBKDF2 guessing).
#pragma once

#include <asio.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "mail/mail_service.h"
#include "protocol/common/sasl.h"

namespace porcupine::node {

// The secrets of `password` with a fresh random 16-byte salt and
// `iterations` rounds of PBKDF2-HMAC-SHA-256. CPU-bound (about 4096 HMACs):
// run it off the event loop. Internal when gsasl fails.
Result<std::string> ScramSecretsFromPassword(std::string_view password, unsigned iterations);

// The user name of a SCRAM client-first message (RFC 5802 §7: after the GS2
// header, "n=" with "=2C" and "=3D" unescaped); nullopt when the message is
// not of that shape or names an authorization identity other than the user.
std::optional<std::string> ScramClientUser(std::string_view client_first);

// The SCRAM-SHA-256 exchanges of one connection (one at a time): turns the
// engines' SaslStep requests into SaslReply answers. Each exchange goes
// through MailService::BeginScram / FinishScram (the login throttle), like
// a password check. An unknown user gets made-up secrets, stable per name,
// so that it fails at the proof like a wrong password; so does a user whose
// password predates SCRAM (and the node logs that it must be set again).
// Not thread-safe: one
// connection's backend.
class ScramServer {
 public:
  // `dummy_iterations`: the iteration count of the made-up secrets (the
  // configured count, so that they look like everyone's).
  ScramServer(mail::MailService& mail, std::string client, unsigned dummy_iterations = 4096);
  ~ScramServer();
  ScramServer(const ScramServer&) = delete;
  ScramServer& operator=(const ScramServer&) = delete;

  asio::awaitable<protocol::SaslReply> Step(protocol::SaslStep step);
  void set_dummy_iterations(unsigned n) { dummy_iterations_ = n; }

 private:
  struct Exchange;
  asio::awaitable<protocol::SaslReply> First(std::string response);
  asio::awaitable<protocol::SaslReply> Final(std::string response);

  mail::MailService& mail_;
  const std::string client_;
  unsigned dummy_iterations_;
  std::unique_ptr<Exchange> exchange_;  // the one in progress
};

}  // namespace porcupine::node
