// Not-authenticated state: LOGIN (RFC 3501 §6.2.3) and AUTHENTICATE PLAIN
// (RFC 3501 §6.2.2, RFC 4616) with an initial response (RFC 4959 SASL-IR)
// or a "+ " continuation answered by one raw line.
#include <sodium.h>

#include <string>
#include <utility>

#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {
namespace {

struct Credentials {
  std::string user;
  std::string password;
};

enum class PlainError { kNone, kBase64, kMalformed, kAuthzid };

// Decodes "authzid NUL authcid NUL passwd"; the authzid must be empty or
// the authcid (no proxy logins).
PlainError DecodePlain(std::string_view base64, Credentials* creds) {
  std::string decoded(base64.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  int rc = sodium_base642bin(reinterpret_cast<unsigned char*>(decoded.data()), decoded.size(),
                             base64.data(), base64.size(), /*ignore=*/nullptr, &len, &end,
                             sodium_base64_VARIANT_ORIGINAL);
  PlainError result = PlainError::kNone;
  std::string_view msg(decoded.data(), len);
  size_t first = msg.find('\0');
  size_t second = first == std::string_view::npos ? first : msg.find('\0', first + 1);
  if (rc != 0 || end != base64.data() + base64.size()) {
    result = PlainError::kBase64;
  } else if (second == std::string_view::npos || msg.find('\0', second + 1) != msg.npos) {
    result = PlainError::kMalformed;
  } else {
    std::string_view authzid = msg.substr(0, first);
    creds->user = std::string(msg.substr(first + 1, second - first - 1));
    creds->password = std::string(msg.substr(second + 1));
    if (creds->user.empty() || creds->password.empty()) {
      result = PlainError::kMalformed;
    } else if (!authzid.empty() && authzid != creds->user) {
      result = PlainError::kAuthzid;
    }
  }
  sodium_memzero(decoded.data(), decoded.size());  // it held the password
  return result;
}

}  // namespace

// RFC 5530 PRIVACYREQUIRED: the client ignored LOGINDISABLED (or the
// absence of AUTH=PLAIN). Counted: it sent a password in clear once already.
bool Session::Impl::RefuseCleartext() {
  if (transport.CleartextAuthAllowed()) return false;
  No("[PRIVACYREQUIRED] Cleartext login refused without TLS, use STARTTLS");
  CountError();
  return true;
}

void Session::Impl::CmdLogin(Command& c) {
  if (!Arity(c, 2, 2, "LOGIN user password")) return;
  if (RefuseCleartext()) return sodium_memzero(c.args[1].text.data(), c.args[1].text.size());
  if (!c.args[0].is_astring() || !c.args[1].is_astring()) return Bad("Syntax: LOGIN user password");
  StartLogin(c.args[0].text, c.args[1].text);
  sodium_memzero(c.args[1].text.data(), c.args[1].text.size());
}

void Session::Impl::CmdAuthenticate(Command& c) {
  if (!Arity(c, 1, 2, "AUTHENTICATE mechanism [initial-response]")) return;
  if (c.args[0].kind != Token::Kind::kAtom) return Bad("Syntax: AUTHENTICATE mechanism");
  const bool scram = EqualsIgnoreCase(c.args[0].text, "SCRAM-SHA-256");
  if (!scram && !EqualsIgnoreCase(c.args[0].text, "PLAIN")) {
    return No("[CANNOT] Unsupported authentication mechanism");
  }
  if (RefuseCleartext()) {
    if (c.args.size() == 2) sodium_memzero(c.args[1].text.data(), c.args[1].text.size());
    return;
  }
  if (c.args.size() == 2) {
    if (c.args[1].kind != Token::Kind::kAtom) return Bad("Syntax: initial response must be base64");
    // RFC 4959: "=" is an empty initial response.
    std::string_view initial = c.args[1].text == "=" ? std::string_view() : c.args[1].text;
    return scram ? SendScram(initial, true) : FinishPlain(initial);
  }
  out += "+ \r\n";  // the first challenge of PLAIN and SCRAM is empty
  mode = Mode::kSaslResponse;
  sasl = scram ? Sasl::kScram : Sasl::kPlain;
  scram_first = scram;
  reader.SetRawLineMode(true);
}

void Session::Impl::SaslLine(std::string_view line) {
  mode = Mode::kCommands;
  reader.SetRawLineMode(false);
  if (line == "*") {
    // RFC 3501 §6.2.2: a cancelled exchange is BAD, but the client did
    // nothing wrong: not a counted error.
    scram_user.clear();
    ++counters.bad;
    return Tagged("BAD", "Authentication cancelled");
  }
  if (sasl == Sasl::kScram) return SendScram(line, std::exchange(scram_first, false));
  if (sasl == Sasl::kScramFinal) {
    // The client's answer to the server's final message: empty (RFC 5802).
    std::string who = std::exchange(scram_user, std::string());
    if (!line.empty()) return Bad("Expected an empty response");
    user = std::move(who);
    state = State::kAuthenticated;
    return Ok("[CAPABILITY " + Capabilities() + "] Logged in");
  }
  FinishPlain(line);
}

// SCRAM-SHA-256: the exchange's state is the backend's; each response goes
// there and its challenges come back as continuations.
void Session::Impl::SendScram(std::string_view base64, bool first) {
  Send<protocol::SaslReply>(protocol::SaslStep{std::string(base64), first},
                            [this](protocol::SaslReply& r) { CompleteScram(r); });
}

void Session::Impl::CompleteScram(protocol::SaslReply& r) {
  using Kind = protocol::SaslReply::Kind;
  if (r.kind != Kind::kFailure) {
    // A challenge, or the server's final message (RFC 4959: sent as a last
    // continuation; the empty response gets the tagged OK).
    out += "+ " + r.data + "\r\n";
    sasl = r.kind == Kind::kChallenge ? Sasl::kScram : Sasl::kScramFinal;
    if (r.kind == Kind::kSuccess) scram_user = std::move(r.user);
    mode = Mode::kSaslResponse;
    reader.SetRawLineMode(true);
    return;
  }
  switch (r.status.code()) {
    case Code::kPermissionDenied:
    case Code::kNotFound:
      No("[AUTHENTICATIONFAILED] Authentication failed");
      return CountError();
    case Code::kInvalidArgument:
      return Bad("Malformed SCRAM message");
    case Code::kResourceExhausted:
      No("[UNAVAILABLE] Too many failed logins, try again later");
      return CountError();
    default:
      return No("[UNAVAILABLE] Authentication temporarily unavailable");
  }
}

void Session::Impl::FinishPlain(std::string_view base64) {
  Credentials creds;
  switch (DecodePlain(base64, &creds)) {
    case PlainError::kBase64:
      return Bad("Invalid base64 in SASL response");
    case PlainError::kMalformed:
      No("[AUTHENTICATIONFAILED] Malformed SASL PLAIN response");
      return CountError();
    case PlainError::kAuthzid:
      No("[AUTHORIZATIONFAILED] Authorization identity not permitted");
      return CountError();
    case PlainError::kNone:
      break;
  }
  StartLogin(creds.user, creds.password);
  sodium_memzero(creds.password.data(), creds.password.size());
}

void Session::Impl::StartLogin(std::string name, std::string password) {
  Send<Result<std::string>>(Login{std::move(name), std::move(password)},
                            [this](Result<std::string>& r) {
                              if (r.ok()) {
                                user = std::move(r.value());
                                state = State::kAuthenticated;
                                return Ok("[CAPABILITY " + Capabilities() + "] Logged in");
                              }
                              Code code = r.status().code();
                              if (code == Code::kPermissionDenied || code == Code::kNotFound) {
                                No("[AUTHENTICATIONFAILED] Authentication failed");
                                return CountError();
                              }
                              if (code == Code::kResourceExhausted) {
                                // The login throttle refused it unchecked
                                // (RFC 5530: temporary, says nothing of the
                                // credentials); counted like a failure.
                                No("[UNAVAILABLE] Too many failed logins, try again later");
                                return CountError();
                              }
                              No("[UNAVAILABLE] Authentication temporarily unavailable");
                            });
}

}  // namespace porcupine::imap
