// Test-only driver for smtp::Session: plays the network driver's part against
// a scripted fake backend and records everything observable as a transcript
// of lines:
//   S: <reply line>                     bytes the session wrote, one per CRLF line
//   D: from=<..> to=<..>,<..> ...       a Deliver request
//   M: <message line>                   the delivered message, one per CRLF line
//   A: user=<..> password=<..>          a Login request (AUTH)
//   X: first=0|1 <base64>               a SaslStep request (protocol::testing::FakeScram)
//   -- delay <n>ms / -- close           tarpit and close steps
//   -- starttls [failed]                a TLS handshake
// The driving is protocol::testing::SessionDriver's. Header-only so the library never links it.
#pragma once

#include <algorithm>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "protocol/common/session_test_util.h"
#include "protocol/smtp/path.h"
#include "protocol/smtp/session.h"

namespace porcupine::smtp::testing {

// Users alice, bob and postmaster exist at example.test; a bare "postmaster"
// is local too. down.test has no reachable manager; every other domain is
// someone else's (relay).
class FakeBackend {
 public:
  RecipientVerdict Check(std::string_view address) const {
    std::string a = Lower(address);
    if (a == "postmaster") return RecipientVerdict::kAccept;
    size_t at = a.rfind('@');
    std::string domain = at == std::string::npos ? "" : a.substr(at + 1);
    if (domain == "down.test") return RecipientVerdict::kTempFail;
    if (domain != "example.test") return RecipientVerdict::kRelayDenied;
    std::string local = a.substr(0, at);
    bool known = local == "alice" || local == "bob" || local == "postmaster";
    return known ? RecipientVerdict::kAccept : RecipientVerdict::kUnknownUser;
  }

  // alice and bob (bare or @example.test, any case) with password "secret"
  // are canonical "<name>@example.test"; password "throttled" is refused by
  // the login throttle, "down" finds no manager; anything else is wrong.
  LoginResult Login(std::string_view user, std::string_view password) const {
    if (password == "throttled") return Status::ResourceExhausted("locked");
    if (password == "down") return Status::Unavailable("no manager");
    std::string u = Lower(user);
    if (u.find('@') == std::string::npos) u += "@example.test";
    if ((u == "alice@example.test" || u == "bob@example.test") && password == "secret") return u;
    return Status::PermissionDenied("invalid credentials");
  }

  // Answers the next Deliver: scripted statuses first, then OK.
  Status NextDeliverStatus() {
    if (deliver_results.empty()) return Status::Ok();
    Status s = deliver_results.front();
    deliver_results.pop_front();
    return s;
  }

  std::deque<Status> deliver_results;

 private:
  static std::string Lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    return out;
  }
};

inline std::string FixedDate() { return "Mon, 2 Jun 2025 12:00:00 +0000"; }

inline SessionInfo TestInfo() {
  SessionInfo info;
  info.server_hostname = "mx.example.test";
  info.peer_ip = "192.0.2.7";
  info.session_id = "s1";
  info.now_rfc5322 = &FixedDate;
  info.transport.peer_loopback = true;  // cleartext logins allowed, as for local clients
  return info;
}

// Renders bytes for a transcript line: printable bytes and valid UTF-8 as
// is, tab as \t, other controls (and all 8-bit bytes of a line that is not
// UTF-8) as \xHH, backslash doubled.
inline std::string Escape(std::string_view s) {
  return protocol::testing::EscapeBytes(s,
                                        {.double_backslash = true, .escape_8bit = !IsValidUtf8(s)});
}

class Driver : public protocol::testing::SessionDriver<Driver, Session, Request> {
 public:
  explicit Driver(const Limits& limits, SessionInfo info = TestInfo())
      : SessionDriver(limits, std::move(info)) {}

  FakeBackend& backend() { return backend_; }
  const std::vector<Deliver>& deliveries() const { return deliveries_; }
  const std::vector<std::string>& checked() const { return checked_; }

 private:
  friend SessionDriver;

  static std::string Escape(std::string_view s) { return testing::Escape(s); }

  void Record(const Request& request) {
    if (auto* check = std::get_if<CheckRecipient>(&request)) {
      checked_.push_back(check->address);
    } else if (auto* step = std::get_if<protocol::SaslStep>(&request)) {
      transcript_ += "X: first=" + std::string(step->first ? "1" : "0") + " <" +
                     Escape(step->response) + ">\n";
    } else if (auto* login = std::get_if<Login>(&request)) {
      transcript_ +=
          "A: user=<" + Escape(login->user) + "> password=<" + Escape(login->password) + ">\n";
    } else {
      const Deliver& d = std::get<Deliver>(request);
      std::string to;
      for (const std::string& r : d.recipients) to += (to.empty() ? "<" : ",<") + r + ">";
      transcript_ += "D: from=<" + d.reverse_path + "> to=" + to +
                     " smtputf8=" + (d.smtputf8 ? "1" : "0") +
                     " 8bitmime=" + (d.eight_bit_mime ? "1" : "0") + "\n";
      AppendLines("M: ", d.message);
      deliveries_.push_back(d);
    }
  }

  void Answer(Request request) {
    if (auto* check = std::get_if<CheckRecipient>(&request)) {
      session_.Complete(backend_.Check(check->address));
    } else if (auto* step = std::get_if<protocol::SaslStep>(&request)) {
      session_.Complete(protocol::testing::FakeScram(*step));
    } else if (auto* login = std::get_if<Login>(&request)) {
      session_.Complete(backend_.Login(login->user, login->password));
    } else {
      session_.Complete(backend_.NextDeliverStatus());
    }
  }

  FakeBackend backend_;
  std::vector<Deliver> deliveries_;
  std::vector<std::string> checked_;
};

// Starts a session, feeds `input` in pieces of `fragment` bytes (0: one
// piece), then signals EOF when `eof`. Returns the transcript.
inline std::string RunScript(const Limits& limits, std::string_view input, size_t fragment,
                             bool eof = true) {
  Driver d(limits);
  d.Start();
  d.FeedInPieces(input, fragment == 0 ? std::max<size_t>(input.size(), 1) : fragment);
  if (eof) d.Eof();
  return d.transcript();
}

}  // namespace porcupine::smtp::testing
