// AUTHORIZATION state: USER/PASS (RFC 1939 §7), AUTH PLAIN (RFC 5034,
// RFC 4616) and the answer to the Login request.
#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <string_view>
#include <utility>
#include <vector>

#include "core/invariant.h"
#include "protocol/pop3/command.h"
#include "protocol/pop3/reply.h"
#include "protocol/pop3/session_impl.h"

namespace porcupine::pop3 {
namespace {

// For a debug-build check of the backend's contract.
[[maybe_unused]] bool UniqueIds(const std::vector<MessageEntry>& list) {
  std::vector<std::string_view> ids;
  for (const MessageEntry& e : list) ids.push_back(e.uid);
  std::sort(ids.begin(), ids.end());
  return std::adjacent_find(ids.begin(), ids.end()) == ids.end();
}

}  // namespace

// Where cleartext logins are refused (no TLS, a peer that is not loopback),
// USER and AUTH PLAIN get this before any password is sent; counted.
bool Session::Impl::RefuseCleartext() {
  if (transport.CleartextAuthAllowed()) return false;
  Error("[AUTH] Plaintext authentication disallowed without TLS, use STLS");
  return true;
}

// A second USER replaces the first: clients retry a mistyped name.
void Session::Impl::CmdUser(const Args& args) {
  if (RefuseCleartext()) return;
  if (!IsValidUserName(args.words[0])) return Error("syntax: USER name");
  user_given = std::string(args.words[0]);
  Ok("send PASS");
}

// RFC 1939 §7: the password is the rest of the line, spaces included.
void Session::Impl::CmdPass(const Args& args) {
  if (!user_given) return Error("send USER first");
  if (args.rest.empty()) return Error("syntax: PASS password");
  login_user = std::exchange(user_given, std::nullopt).value();
  Request(Awaiting::kLogin, Login{login_user, std::string(args.rest)});
}

void Session::Impl::CmdAuth(const Args& args) {
  user_given.reset();
  if (args.words.empty()) {
    // Not in RFC 5034, but long-standing practice (RFC 1734 clients probe it).
    Ok("supported mechanisms follow");
    if (transport.CleartextAuthAllowed()) {
      AppendListLine(&out, "SCRAM-SHA-256");
      AppendListLine(&out, "PLAIN");
    }
    return AppendTerminator(&out);
  }
  const bool scram = EqualsIgnoreCase(args.words[0], "SCRAM-SHA-256");
  if (!scram && !EqualsIgnoreCase(args.words[0], "PLAIN")) return Error("unsupported mechanism");
  // SCRAM sends no password, but the session after it would be cleartext:
  // every mechanism follows the one rule (docs/security.md).
  if (RefuseCleartext()) return;
  if (scram) {
    if (args.words.size() == 2) return StartScram(args.words[1] == "=" ? "" : args.words[1], true);
    out.append("+ \r\n");
    sasl = Sasl::kScram;
    scram_first = true;
    phase = Phase::kSaslResponse;
    return;
  }
  if (args.words.size() == 2) {
    // RFC 5034 §4: "=" is an initial response of zero length.
    std::string_view initial = args.words[1] == "=" ? std::string_view() : args.words[1];
    return FinishPlain(initial);
  }
  out.append("+ \r\n");  // PLAIN's server challenge is empty
  sasl = Sasl::kPlain;
  phase = Phase::kSaslResponse;
}

void Session::Impl::SaslResponse(std::string_view line) {
  phase = Phase::kCommand;
  if (line == "*") {
    scram_user.clear();
    return Err("authentication cancelled");
  }
  if (sasl == Sasl::kScram) return StartScram(line, std::exchange(scram_first, false));
  if (sasl == Sasl::kScramFinal) {
    // The client's answer to the server's final message: empty (RFC 5802).
    std::string who = std::exchange(scram_user, std::string());
    if (!line.empty()) return Error("expected an empty response");
    login_user = who;
    return Request(Awaiting::kLogin, OpenMaildrop{std::move(who)});
  }
  FinishPlain(line);
}

// SCRAM-SHA-256: the exchange's state is the backend's; each response goes
// there and its challenges come back as continuations.
void Session::Impl::StartScram(std::string_view base64, bool first) {
  Request(Awaiting::kSasl, protocol::SaslStep{std::string(base64), first});
}

void Session::Impl::CompleteSasl(protocol::SaslReply* r) {
  using Kind = protocol::SaslReply::Kind;
  if (r == nullptr) return CloseErr("[SYS/TEMP] internal server error");
  if (r->kind != Kind::kFailure) {
    // A challenge, or the server's final message (RFC 5034 §4: a last
    // continuation; the empty response completes the login).
    out.append("+ " + r->data + "\r\n");
    sasl = r->kind == Kind::kChallenge ? Sasl::kScram : Sasl::kScramFinal;
    if (r->kind == Kind::kSuccess) scram_user = std::move(r->user);
    phase = Phase::kSaslResponse;
    return;
  }
  switch (r->status.code()) {
    case Code::kPermissionDenied:
    case Code::kNotFound:
      return Error("[AUTH] invalid credentials");
    case Code::kInvalidArgument:
      return Error("malformed SCRAM message");
    case Code::kResourceExhausted:
      return Error("[SYS/TEMP] too many failed logins, try again later");
    default:
      return Err("[SYS/TEMP] authentication temporarily unavailable");
  }
}

void Session::Impl::FinishPlain(std::string_view base64) {
  SaslPlainParse parsed = ParseSaslPlain(base64);
  if (auto* err = std::get_if<SaslError>(&parsed)) {
    switch (*err) {
      case SaslError::kBadBase64:
        return Error("invalid base64 in SASL response");
      case SaslError::kMalformed:
        return Error("[AUTH] malformed SASL PLAIN response");
      case SaslError::kAuthzid:
        return Error("[AUTH] authorization identity not permitted");
    }
  }
  PlainCredentials& creds = std::get<PlainCredentials>(parsed);
  login_user = creds.authcid;
  // Copied, not moved, so that our decoded copy can be wiped in full (a
  // moved-from short string keeps its bytes).
  Request(Awaiting::kLogin, Login{creds.authcid, creds.password});
  sodium_memzero(creds.password.data(), creds.password.size());
}

void Session::Impl::CompleteLogin(LoginResult* result) {
  if (result == nullptr) return CloseErr("[SYS/TEMP] internal server error");
  std::string who = std::exchange(login_user, std::string());
  if (!result->ok()) {
    Code code = result->status().code();
    if (code == Code::kPermissionDenied || code == Code::kNotFound) {
      return Error("[AUTH] invalid credentials");
    }
    if (code == Code::kResourceExhausted) {
      // The login throttle refused it unchecked (RFC 3206: not [AUTH], which
      // tells the client its credentials are wrong; the refusal is
      // temporary and says nothing about them). Counted: a client that
      // keeps trying meets the session's error limits too.
      return Error("[SYS/TEMP] too many failed logins, try again later");
    }
    return Err("[SYS/TEMP] maildrop unavailable, try again later");
  }
  PORCUPINE_INVARIANT(UniqueIds(result->value()), "backend listed a unique-id twice");
  for (MessageEntry& e : result->value()) {
    PORCUPINE_INVARIANT(IsValidUniqueId(e.uid), "backend listed an invalid unique-id");
    maildrop.messages.push_back(Message{std::move(e.uid), e.size, false});
  }
  maildrop.UnmarkAll();  // computes the totals
  user = std::move(who);
  state = State::kTransaction;
  Ok(MaildropSummary());
}

}  // namespace porcupine::pop3
