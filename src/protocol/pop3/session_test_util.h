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
//   -- starttls [failed]               a TLS handshake (STLS)
// The driving is protocol::testing::SessionDriver's. Header-only so the library never links it.
#pragma once

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "protocol/common/session_test_util.h"
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
  return protocol::testing::EscapeBytes(s, {.double_backslash = true, .escape_8bit = false});
}

inline std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

class Driver : public protocol::testing::SessionDriver<Driver, Session, Request> {
 public:
  explicit Driver(const Limits& limits, SessionInfo info = TestInfo())
      : SessionDriver(limits, std::move(info)) {}

  FakeBackend& backend() { return backend_; }

 private:
  friend SessionDriver;

  static std::string Escape(std::string_view s) { return testing::Escape(s); }

  void Record(const Request& request) {
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

  FakeBackend backend_;
};

}  // namespace porcupine::pop3::testing
