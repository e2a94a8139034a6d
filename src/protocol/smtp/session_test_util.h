// Test-only driver for smtp::Session: plays the network driver's part against
// a scripted fake backend and records everything observable as a transcript
// of lines:
//   S: <reply line>                     bytes the session wrote, one per CRLF line
//   D: from=<..> to=<..>,<..> ...       a Deliver request
//   M: <message line>                   the delivered message, one per CRLF line
//   A: user=<..> password=<..>          a Login request (AUTH)
//   -- delay <n>ms / -- close           tarpit and close steps
// Header-only so the library never links it.
#pragma once

#include <algorithm>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "protocol/common/sasl_test_util.h"
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
  static const char kHex[] = "0123456789ABCDEF";
  bool utf8 = IsValidUtf8(s);
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

class Driver {
 public:
  explicit Driver(const Limits& limits, SessionInfo info = TestInfo())
      : session_(limits, std::move(info)) {}

  void Start() {
    session_.Start();
    Pump();
  }
  // One client write.
  void Feed(std::string_view bytes) { FeedInPieces(bytes, std::max<size_t>(bytes.size(), 1)); }
  // One client write that arrives in pieces of `fragment` bytes, pumping
  // after each. A STARTTLS handshake cuts the write: its later pieces would
  // reach the TLS layer (and fail the handshake), never the session.
  void FeedInPieces(std::string_view bytes, size_t fragment) {
    write_cut_ = false;
    for (size_t i = 0; i < bytes.size() && !closed_ && !write_cut_; i += fragment) {
      FeedPiece(bytes.substr(i, fragment));
    }
  }
  // The next TLS handshake fails.
  void FailNextTls() { fail_tls_ = true; }
  void Eof() { Event(&Session::OnEof); }
  void Timeout() { Event(&Session::OnIdleTimeout); }
  void Shutdown() { Event(&Session::OnShutdown); }

  const std::string& transcript() const { return transcript_; }
  bool closed() const { return closed_; }
  // Some output chunk did not end in CRLF (a framing bug).
  bool unterminated() const { return unterminated_; }
  Session& session() { return session_; }
  FakeBackend& backend() { return backend_; }
  const std::vector<Deliver>& deliveries() const { return deliveries_; }
  const std::vector<std::string>& checked() const { return checked_; }

 private:
  void FeedPiece(std::string_view bytes) {
    if (closed_ || write_cut_) return;
    session_.Feed(bytes);
    Pump();
  }

  void Event(void (Session::*event)()) {
    if (closed_) return;
    (session_.*event)();
    Pump();
  }

  void Pump() {
    for (;;) {
      Step step = session_.Next();
      Flush();
      switch (step.kind) {
        case Step::Kind::kNeedInput:
          return;
        case Step::Kind::kClose:
          closed_ = true;
          transcript_ += "-- close\n";
          return;
        case Step::Kind::kDelay:
          transcript_ += "-- delay " + std::to_string(step.delay.count()) + "ms\n";
          break;
        case Step::Kind::kStartTls:
          write_cut_ = true;
          if (std::exchange(fail_tls_, false)) {
            transcript_ += "-- starttls failed\n";
            session_.OnTlsFailed();
          } else {
            transcript_ += "-- starttls\n";
            session_.OnTlsStarted();
          }
          break;
        case Step::Kind::kRequest:
          Answer(std::move(*step.request));
          break;
      }
    }
  }

  void Answer(Request request) {
    if (auto* check = std::get_if<CheckRecipient>(&request)) {
      checked_.push_back(check->address);
      session_.Complete(backend_.Check(check->address));
      return;
    }
    if (auto* step = std::get_if<protocol::SaslStep>(&request)) {
      transcript_ += "X: first=" + std::string(step->first ? "1" : "0") + " <" +
                     Escape(step->response) + ">\n";
      session_.Complete(protocol::testing::FakeScram(*step));
      return;
    }
    if (auto* login = std::get_if<Login>(&request)) {
      transcript_ +=
          "A: user=<" + Escape(login->user) + "> password=<" + Escape(login->password) + ">\n";
      session_.Complete(backend_.Login(login->user, login->password));
      return;
    }
    Deliver& d = std::get<Deliver>(request);
    std::string to;
    for (const std::string& r : d.recipients) to += (to.empty() ? "<" : ",<") + r + ">";
    transcript_ += "D: from=<" + d.reverse_path + "> to=" + to +
                   " smtputf8=" + (d.smtputf8 ? "1" : "0") +
                   " 8bitmime=" + (d.eight_bit_mime ? "1" : "0") + "\n";
    AppendLines("M: ", d.message);
    deliveries_.push_back(d);
    session_.Complete(backend_.NextDeliverStatus());
  }

  void Flush() {
    if (session_.HasOutput()) AppendLines("S: ", session_.TakeOutput());
  }

  // Splits CRLF-terminated text into transcript lines; an unterminated tail
  // is marked so a missing CRLF shows up in a diff.
  void AppendLines(std::string_view prefix, std::string_view text) {
    while (!text.empty()) {
      size_t end = text.find("\r\n");
      std::string_view line = text.substr(0, end);
      transcript_ += std::string(prefix) + Escape(line);
      if (end == std::string_view::npos) {
        transcript_ += " [no CRLF]\n";
        unterminated_ = true;
        return;
      }
      transcript_ += "\n";
      text.remove_prefix(end + 2);
    }
  }

  Session session_;
  FakeBackend backend_;
  std::string transcript_;
  bool closed_ = false;
  bool unterminated_ = false;
  bool write_cut_ = false;  // a handshake ended the current client write
  bool fail_tls_ = false;
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
