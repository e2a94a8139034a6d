// Test-only driver for pop3::Session: plays the network driver's part against
// a scripted fake backend and records everything observable as a transcript
// of lines:
//   S: <line>                          bytes the session wrote, one per CRLF line
//   R: login user=.. password=..       a Login request
//   R: retrieve user=.. uid=..         a Retrieve request
//   R: commit user=.. uids=a,b         a Commit request
//   R: maildrop user=..                an OpenMaildrop request (after SCRAM)
//   R: sasl first=0|1 <base64>         a SaslStep request (protocol::testing::FakeScram)
//   -- delay <n>ms / -- close          tarpit and close steps
// Header-only so the library never links it.
#pragma once

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "protocol/common/sasl_test_util.h"
#include "protocol/pop3/session.h"

namespace porcupine::pop3::testing {

// Users: alice (password "secret") owns the scripted maildrop; bob
// (password "pass word") has an empty one; "down" always gets Unavailable;
// "locked" always gets ResourceExhausted (the login throttle); everybody else
// is unknown (NotFound). Unscripted Retrieve answers come from
// alice's maildrop; Commit removes the messages from it.
class FakeBackend {
 public:
  void AddMessage(std::string uid, std::string body) {
    maildrop_.push_back({std::move(uid), std::move(body)});
  }

  LoginResult Login(const pop3::Login& login) const {
    if (login.user == "down") return Status::Unavailable("manager unreachable");
    if (login.user == "locked") return Status::ResourceExhausted("too many failed logins");
    if (login.user == "bob") {
      if (login.password != "pass word") return Status::PermissionDenied("bad password");
      return std::vector<MessageEntry>{};
    }
    if (login.user != "alice") return Status::NotFound("no such user");
    if (login.password != "secret") return Status::PermissionDenied("bad password");
    std::vector<MessageEntry> list;
    for (const auto& [uid, body] : maildrop_) list.push_back({uid, body.size()});
    return list;
  }

  // After SCRAM: alice's maildrop (FakeScram authenticates alice@example.test).
  LoginResult Maildrop(const pop3::OpenMaildrop& m) const {
    if (m.user != "alice@example.test") return Status::PermissionDenied("not authenticated");
    std::vector<MessageEntry> list;
    for (const auto& [uid, body] : maildrop_) list.push_back({uid, body.size()});
    return list;
  }

  RetrieveResult Retrieve(const pop3::Retrieve& r) {
    if (!retrieve_results.empty()) {
      Status s = retrieve_results.front();
      retrieve_results.pop_front();
      if (!s.ok()) return s;
    }
    for (const auto& [uid, body] : maildrop_) {
      if (uid == r.uid) return body;
    }
    return Status::NotFound("gone");
  }

  Status Commit(const pop3::Commit& c) {
    if (!commit_results.empty()) {
      Status s = commit_results.front();
      commit_results.pop_front();
      if (!s.ok()) return s;
    }
    for (const std::string& uid : c.uids) {
      std::erase_if(maildrop_, [&](const auto& m) { return m.first == uid; });
    }
    return Status::Ok();
  }

  size_t size() const { return maildrop_.size(); }

  std::deque<Status> retrieve_results;  // scripted answers first, then the maildrop
  std::deque<Status> commit_results;    // scripted answers first, then OK

 private:
  std::vector<std::pair<std::string, std::string>> maildrop_;
};

inline SessionInfo TestInfo() {
  SessionInfo info;
  info.server_hostname = "pop.example.test";
  info.implementation = "porcupine-test";
  info.transport.peer_loopback = true;  // cleartext logins allowed, as for local clients
  return info;
}

// Renders bytes for a transcript line: tab as \t, other controls as \xHH,
// backslash doubled, everything else as is.
inline std::string Escape(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

inline std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ",") + s;
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
  // The next request is recorded but left unanswered until Release().
  void Hold() { hold_next_ = true; }
  void Release() {
    if (!held_) return;
    Request r = std::move(*held_);
    held_.reset();
    Answer(std::move(r));
    Pump();
  }

  const std::string& transcript() const { return transcript_; }
  bool closed() const { return closed_; }
  // Some output chunk did not end in CRLF (a framing bug).
  bool unterminated() const { return unterminated_; }
  Session& session() { return session_; }
  FakeBackend& backend() { return backend_; }
  const std::vector<Request>& requests() const { return requests_; }

 private:
  void FeedPiece(std::string_view bytes) {
    if (closed_ || write_cut_) return;
    session_.Feed(bytes);
    if (!held_) Pump();
  }

  void Event(void (Session::*event)()) {
    if (closed_) return;
    (session_.*event)();
    Flush();
    if (!held_) Pump();
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
          Record(*step.request);
          if (std::exchange(hold_next_, false)) {
            held_ = std::move(*step.request);
            return;
          }
          Answer(std::move(*step.request));
          break;
      }
    }
  }

  void Record(const Request& request) {
    requests_.push_back(request);
    if (auto* l = std::get_if<Login>(&request)) {
      transcript_ += "R: login user=" + Escape(l->user) + " password=" + Escape(l->password) + "\n";
    } else if (auto* r = std::get_if<Retrieve>(&request)) {
      transcript_ += "R: retrieve user=" + r->user + " uid=" + r->uid + "\n";
    } else if (auto* m = std::get_if<OpenMaildrop>(&request)) {
      transcript_ += "R: maildrop user=" + Escape(m->user) + "\n";
    } else if (auto* s = std::get_if<protocol::SaslStep>(&request)) {
      transcript_ +=
          std::string("R: sasl first=") + (s->first ? "1 " : "0 ") + Escape(s->response) + "\n";
    } else {
      const Commit& c = std::get<Commit>(request);
      transcript_ += "R: commit user=" + c.user + " uids=" + Join(c.uids) + "\n";
    }
  }

  void Answer(Request request) {
    if (auto* l = std::get_if<Login>(&request)) {
      session_.Complete(backend_.Login(*l));
    } else if (auto* r = std::get_if<Retrieve>(&request)) {
      session_.Complete(backend_.Retrieve(*r));
    } else if (auto* m = std::get_if<OpenMaildrop>(&request)) {
      session_.Complete(backend_.Maildrop(*m));
    } else if (auto* s = std::get_if<protocol::SaslStep>(&request)) {
      session_.Complete(protocol::testing::FakeScram(*s));
    } else {
      session_.Complete(backend_.Commit(std::get<Commit>(request)));
    }
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
  bool write_cut_ = false;  // a handshake ended the current client write
  bool fail_tls_ = false;
  bool unterminated_ = false;
  bool hold_next_ = false;
  std::optional<Request> held_;
  std::vector<Request> requests_;
};

}  // namespace porcupine::pop3::testing
