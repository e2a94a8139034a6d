// AUTH (RFC 4954) with SASL PLAIN (RFC 4616) and LOGIN
// (draft-murchison-sasl-login): the exchange, then a Login request.
#include <algorithm>
#include <cassert>
#include <utility>

#include "protocol/common/sasl.h"
#include "protocol/smtp/command.h"
#include "protocol/smtp/session_impl.h"

namespace porcupine::smtp {
namespace {

// LOGIN's challenges, base64 of "Username:" and "Password:".
constexpr std::string_view kUserChallenge = "VXNlcm5hbWU6";
constexpr std::string_view kPasswordChallenge = "UGFzc3dvcmQ6";

// A user name from LOGIN: what the other mechanisms accept (printable, no
// controls); the backend decides whether it names anyone.
bool IsValidLoginName(std::string_view name) {
  return !name.empty() && name.size() <= 255 && std::none_of(name.begin(), name.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

}  // namespace

void Session::Impl::CmdAuth(std::string_view args) {
  if (!info.submission) return CmdNotImplemented(args);
  if (greeting != Greeting::kEhlo) return Error(503, "5.5.1", "Error: send EHLO first");
  if (!auth.user.empty()) return Error(503, "5.5.1", "Error: already authenticated");
  if (txn.active) return Error(503, "5.5.1", "Error: MAIL transaction in progress");
  const size_t space = args.find(' ');
  std::string_view name = args.substr(0, space);
  std::string_view initial = space == args.npos ? std::string_view() : args.substr(space + 1);
  if (name.empty() || initial.find(' ') != initial.npos ||
      (space != args.npos && initial.empty())) {
    return Error(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
  }
  SaslMechanism mechanism = SaslMechanism::kNone;
  if (EqualsIgnoreCase(name, "PLAIN")) mechanism = SaslMechanism::kPlain;
  if (EqualsIgnoreCase(name, "LOGIN")) mechanism = SaslMechanism::kLogin;
  if (EqualsIgnoreCase(name, "SCRAM-SHA-256")) mechanism = SaslMechanism::kScram;
  if (mechanism == SaslMechanism::kNone) {
    return Error(504, "5.5.4", "Unrecognized authentication type");
  }
  // SCRAM sends no password, but the session after it would be cleartext:
  // every mechanism follows the one rule (docs/security.md).
  if (!transport.CleartextAuthAllowed()) {
    // RFC 4954 §6: the mechanism needs an encrypted connection (STARTTLS).
    return Error(538, "5.7.11", "Encryption required for requested authentication mechanism");
  }
  if (mechanism == SaslMechanism::kScram) {
    if (space == args.npos) {
      auth.scram_first = true;
      return ExpectResponse(SaslMechanism::kScram, "");
    }
    return ScramResponse(initial == "=" ? std::string_view() : initial, true);
  }
  if (space == args.npos) {
    // PLAIN's first challenge is empty; LOGIN asks for the user name.
    return ExpectResponse(mechanism, mechanism == SaslMechanism::kPlain ? "" : kUserChallenge);
  }
  // RFC 4954 §4: "=" is an initial response of zero length.
  SaslStep(mechanism, initial == "=" ? std::string_view() : initial);
}

void Session::Impl::ExpectResponse(SaslMechanism mechanism, std::string_view challenge) {
  std::string text = "334 ";
  text += challenge;
  text += "\r\n";
  out += text;
  ++counters.replies[3];
  auth.exchange = mechanism;
}

// A line read while an exchange waits for the client (RFC 4954 §4).
void Session::Impl::SaslResponse(const PendingLine& line) {
  const SaslMechanism mechanism = std::exchange(auth.exchange, SaslMechanism::kNone);
  if (line.too_long || WireLength(line) > limits.max_auth_line) {
    protocol::Wipe(&auth.login_user);
    return Error(500, "5.5.6", "Authentication Exchange line is too long");
  }
  if (line.text == "*") {
    // The client gave up: not its fault, not a counted error.
    protocol::Wipe(&auth.login_user);
    auth.scram_user.clear();
    return Reply(501, "5.0.0", "Authentication cancelled");
  }
  if (mechanism == SaslMechanism::kScram) {
    return ScramResponse(line.text, std::exchange(auth.scram_first, false));
  }
  if (mechanism == SaslMechanism::kScramFinal) {
    std::string user = std::exchange(auth.scram_user, std::string());
    if (!line.text.empty()) return Error(501, "5.5.2", "Error: expected an empty response");
    auth.user = std::move(user);
    return Reply(235, "2.7.0", "Authentication successful");
  }
  SaslStep(mechanism, line.text);
}

void Session::Impl::ScramResponse(std::string_view line, bool first) {
  Request(Awaiting::kSasl, protocol::SaslStep{std::string(line), first});
}

void Session::Impl::CompleteSasl(protocol::SaslReply* reply) {
  using Kind = protocol::SaslReply::Kind;
  if (reply == nullptr) return Reply(454, "4.7.0", "Temporary authentication failure");
  if (reply->kind == Kind::kChallenge) return ExpectResponse(SaslMechanism::kScram, reply->data);
  if (reply->kind == Kind::kSuccess) {
    // RFC 4954 §4: the server's final data goes out as a last challenge.
    auth.scram_user = std::move(reply->user);
    return ExpectResponse(SaslMechanism::kScramFinal, reply->data);
  }
  switch (reply->status.code()) {
    case Code::kPermissionDenied:
    case Code::kNotFound:
      return Error(535, "5.7.8", "Error: authentication failed");
    case Code::kInvalidArgument:
      return Error(501, "5.5.2", "Error: malformed SCRAM message");
    case Code::kResourceExhausted:
      return Error(454, "4.7.0", "Too many failed logins, try again later");
    default:
      return Reply(454, "4.7.0", "Temporary authentication failure");
  }
}

// One client response of `mechanism` (decoded here): either the exchange
// goes on (LOGIN's password) or the credentials go to the backend.
void Session::Impl::SaslStep(SaslMechanism mechanism, std::string_view base64) {
  if (mechanism == SaslMechanism::kPlain) {
    protocol::SaslPlain creds;
    switch (protocol::DecodeSaslPlain(base64, &creds)) {
      case protocol::SaslPlainError::kBase64:
        return Error(501, "5.5.2", "Error: invalid base64 in SASL response");
      case protocol::SaslPlainError::kMalformed:
        return Error(501, "5.5.2", "Error: malformed SASL PLAIN response");
      case protocol::SaslPlainError::kAuthzid:
        return Error(535, "5.7.8", "Error: authorization identity not permitted");
      case protocol::SaslPlainError::kNone:
        break;
    }
    StartLogin(std::move(creds.user), creds.password);
    return protocol::Wipe(&creds.password);
  }
  std::string decoded;
  if (!protocol::DecodeBase64(base64, &decoded)) {
    protocol::Wipe(&auth.login_user);
    return Error(501, "5.5.2", "Error: invalid base64 in SASL response");
  }
  if (auth.login_user.empty()) {  // LOGIN: the user name
    if (!IsValidLoginName(decoded)) return Error(501, "5.5.2", "Error: invalid user name");
    auth.login_user = std::move(decoded);
    return ExpectResponse(SaslMechanism::kLogin, kPasswordChallenge);
  }
  std::string user = std::exchange(auth.login_user, std::string());
  if (decoded.empty()) return Error(501, "5.5.2", "Error: empty password");
  StartLogin(std::move(user), decoded);
  protocol::Wipe(&decoded);
}

void Session::Impl::StartLogin(std::string user, std::string password) {
  Request(Awaiting::kLogin, Login{std::move(user), std::move(password)});
}

void Session::Impl::CompleteLogin(LoginResult* result) {
  if (result == nullptr) return Reply(454, "4.7.0", "Temporary authentication failure");
  if (result->ok()) {
    auth.user = std::move(result->value());
    return Reply(235, "2.7.0", "Authentication successful");
  }
  const Code code = result->status().code();
  if (code == Code::kPermissionDenied || code == Code::kNotFound) {
    return Error(535, "5.7.8", "Error: authentication failed");
  }
  if (code == Code::kResourceExhausted) {
    // The login throttle refused it unchecked: temporary, says nothing of
    // the credentials; counted like a failure, as in POP3 and IMAP.
    return Error(454, "4.7.0", "Too many failed logins, try again later");
  }
  Reply(454, "4.7.0", "Temporary authentication failure");
}

}  // namespace porcupine::smtp
