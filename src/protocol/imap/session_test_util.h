// Test-only backend and driver for imap::Session. FakeBackend keeps users,
// folders and messages in memory and answers every Request; several
// sessions may share one backend (each through its own Driver), so one
// session sees another's changes at its next sync. Driver plays the
// network driver's part and records everything observable as a transcript
// of lines:
//   S: <line>                  bytes the session wrote, one per CRLF line
//   R: <request>               a backend request (see Describe below)
//   -- delay <n>ms / -- close  tarpit and close steps
//   -- starttls [failed]       a TLS handshake
// The driving is protocol::testing::SessionDriver's. Header-only so the library never links it.
#pragma once

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "protocol/common/session_test_util.h"
#include "protocol/imap/session.h"

namespace porcupine::imap::testing {

// 2024-02-01 10:00:00 UTC; message n of a folder is dated n-1 days later.
constexpr int64_t kBaseDateMs = 1706781600000;
constexpr int64_t kDayMs = 86400000;

struct FakeMessage {
  MessageInfo info;
  std::string body;
};

struct FakeFolder {
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 1;
  std::string special_use;
  bool subscribed = false;
  std::vector<FakeMessage> messages;
  // \Recent: the messages with uid >= recent_horizon are not claimed yet.
  uint32_t recent_horizon = 1;
};

// Users: alice (password "secret", any case of the name logs in as
// "alice") and bob (password "pass word"), each with an INBOX; "down"
// always gets Unavailable; "locked" always gets ResourceExhausted (the login
// throttle); everybody else is unknown (NotFound).
class FakeBackend {
 public:
  FakeBackend() {
    users_["alice"].password = "secret";
    users_["bob"].password = "pass word";
    for (auto& [name, u] : users_) AddFolder(name, "INBOX", "", true);
  }

  FakeFolder& AddFolder(const std::string& user, const std::string& name,
                        std::string special_use = "", bool subscribed = false) {
    FakeFolder& f = users_[user].folders[name];
    f.uidvalidity = next_uidvalidity_++;
    f.special_use = std::move(special_use);
    f.subscribed = subscribed;
    return f;
  }

  FakeFolder* folder(const std::string& user, const std::string& name) {
    auto u = users_.find(user);
    if (u == users_.end()) return nullptr;
    auto f = u->second.folders.find(name);
    return f == u->second.folders.end() ? nullptr : &f->second;
  }

  // Adds a message; returns its uid. REQUIRES: the folder exists.
  uint32_t AddMessage(const std::string& user, const std::string& name, std::string body,
                      std::vector<std::string> flags = {}, int64_t date_ms = 0) {
    FakeFolder& f = *folder(user, name);
    FakeMessage m;
    m.info.uid = f.uidnext++;
    m.info.id = "m" + std::to_string(++next_id_);
    m.info.flags = std::move(flags);
    m.info.internal_date_ms =
        date_ms != 0 ? date_ms : kBaseDateMs + static_cast<int64_t>(m.info.uid - 1) * kDayMs;
    m.info.size = body.size();
    m.body = std::move(body);
    f.messages.push_back(std::move(m));
    return f.messages.back().info.uid;
  }

  void SetFlags(const std::string& user, const std::string& name, uint32_t uid,
                std::vector<std::string> flags) {
    for (FakeMessage& m : folder(user, name)->messages) {
      if (m.info.uid == uid) m.info.flags = flags;
    }
  }

  void Expunge(const std::string& user, const std::string& name, uint32_t uid) {
    std::erase_if(folder(user, name)->messages,
                  [&](const FakeMessage& m) { return m.info.uid == uid; });
  }

  // The next request of this kind (see Kind()) fails with `status`.
  void FailNext(const std::string& kind, Status status) { failures_[kind].push_back(status); }

  static std::string Kind(const Request& r) {
    static const char* const kKinds[] = {"login",     "list",    "create", "delete", "rename",
                                         "subscribe", "open",    "fetch",  "store",  "copy",
                                         "append",    "expunge", "sasl"};
    return kKinds[r.index()];
  }

  Response Handle(const Request& r) {
    auto& queue = failures_[Kind(r)];
    if (!queue.empty()) {
      Status s = queue.front();
      queue.pop_front();
      if (!s.ok()) return Error(r, s);
    }
    return std::visit([this](const auto& req) { return Do(req); }, r);
  }

 private:
  struct User {
    std::string password;
    std::map<std::string, FakeFolder> folders;
  };

  // The error as the Response alternative the request expects.
  static Response Error(const Request& r, const Status& s) {
    switch (r.index()) {
      case 0:
      case 7:
        return Result<std::string>(s);
      case 1:
        return Result<std::vector<FolderInfo>>(s);
      case 6:
        return Result<Snapshot>(s);
      case 9:
        return Result<CopyResult>(s);
      case 10:
        return Result<AppendResult>(s);
      case 12: {
        protocol::SaslReply reply;
        reply.status = s;
        return reply;
      }
      default:
        return s;
    }
  }

  User* FindUser(const std::string& name) {
    auto it = users_.find(name);
    return it == users_.end() ? nullptr : &it->second;
  }

  Response Do(const protocol::SaslStep& step) { return protocol::testing::FakeScram(step); }

  Response Do(const Login& l) {
    std::string name = l.user;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "down") return Result<std::string>(Status::Unavailable("manager unreachable"));
    if (name == "locked") {
      return Result<std::string>(Status::ResourceExhausted("too many failed logins"));
    }
    User* u = FindUser(name);
    if (u == nullptr) return Result<std::string>(Status::NotFound("no such user"));
    if (u->password != l.password) return Result<std::string>(Status::PermissionDenied("bad"));
    return Result<std::string>(name);
  }

  Response Do(const ListFolders& l) {
    User* u = FindUser(l.user);
    if (u == nullptr) return Result<std::vector<FolderInfo>>(Status::NotFound("user"));
    std::vector<FolderInfo> out;
    for (const auto& [name, f] : u->folders) out.push_back({name, f.special_use, f.subscribed});
    return Result<std::vector<FolderInfo>>(std::move(out));
  }

  static bool ValidName(std::string_view n) {
    return !n.empty() && n.front() != '/' && n.back() != '/' && n.find("//") == n.npos;
  }

  Response Do(const CreateFolder& c) {
    User* u = FindUser(c.user);
    if (u == nullptr) return Status::NotFound("user");
    if (!ValidName(c.name)) return Status::InvalidArgument("bad name");
    if (u->folders.count(c.name) != 0) return Status::AlreadyExists("exists");
    AddFolder(c.user, c.name);
    return Status::Ok();
  }

  Response Do(const DeleteFolder& d) {
    User* u = FindUser(d.user);
    if (u == nullptr || u->folders.count(d.name) == 0) return Status::NotFound("no folder");
    if (d.name == "INBOX") return Status::InvalidArgument("INBOX");
    u->folders.erase(d.name);
    return Status::Ok();
  }

  Response Do(const RenameFolder& r) {
    User* u = FindUser(r.user);
    if (u == nullptr || u->folders.count(r.from) == 0) return Status::NotFound("no folder");
    if (u->folders.count(r.to) != 0) return Status::AlreadyExists("exists");
    if (!ValidName(r.to)) return Status::InvalidArgument("bad name");
    if (r.from == "INBOX") {
      // RFC 3501: the mail moves to the new folder, INBOX stays, empty.
      FakeFolder& to = AddFolder(r.user, r.to);
      for (FakeMessage& m : u->folders["INBOX"].messages) {
        m.info.uid = to.uidnext++;
        to.messages.push_back(std::move(m));
      }
      u->folders["INBOX"].messages.clear();
      return Status::Ok();
    }
    std::map<std::string, FakeFolder> renamed;
    for (auto it = u->folders.begin(); it != u->folders.end();) {
      const std::string& n = it->first;
      if (n == r.from || n.rfind(r.from + "/", 0) == 0) {
        renamed[r.to + n.substr(r.from.size())] = std::move(it->second);
        it = u->folders.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [n, f] : renamed) u->folders[n] = std::move(f);
    return Status::Ok();
  }

  Response Do(const Subscribe& s) {
    if (FakeFolder* f = folder(s.user, s.name)) f->subscribed = s.subscribe;
    return Status::Ok();
  }

  Response Do(const OpenFolder& o) {
    FakeFolder* f = folder(o.user, o.name);
    if (f == nullptr) return Result<Snapshot>(Status::NotFound("no folder"));
    Snapshot s{f->uidvalidity, f->uidnext, {}, f->recent_horizon};
    for (const FakeMessage& m : f->messages) s.messages.push_back(m.info);
    // A claim hands every message so far to this session.
    if (o.claim_recent) f->recent_horizon = f->uidnext;
    return Result<Snapshot>(std::move(s));
  }

  static bool SameFlag(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
      return std::tolower(static_cast<unsigned char>(x)) ==
             std::tolower(static_cast<unsigned char>(y));
    });
  }

  FakeMessage* Find(FakeFolder* f, uint32_t uid) {
    if (f == nullptr) return nullptr;
    for (FakeMessage& m : f->messages) {
      if (m.info.uid == uid) return &m;
    }
    return nullptr;
  }

  Response Do(const FetchBody& b) {
    FakeMessage* m = Find(folder(b.user, b.folder), b.message.uid);
    if (m == nullptr) return Result<std::string>(Status::NotFound("gone"));
    return Result<std::string>(m->body);
  }

  Response Do(const StoreFlags& s) {
    FakeFolder* f = folder(s.user, s.folder);
    if (f == nullptr) return Status::NotFound("no folder");
    // The change applies to the current flags, whatever the session knew.
    for (const MessageInfo& mi : s.messages) {
      FakeMessage* m = Find(f, mi.uid);
      if (m == nullptr) continue;
      if (s.mode == StoreFlags::Mode::kReplace) m->info.flags.clear();
      for (const std::string& flag : s.flags) {
        auto same = [&](const std::string& x) { return SameFlag(x, flag); };
        std::erase_if(m->info.flags, same);
        if (s.mode != StoreFlags::Mode::kRemove) m->info.flags.push_back(flag);
      }
    }
    return Status::Ok();
  }

  Response Do(const CopyMessages& c) {
    FakeFolder* from = folder(c.user, c.from);
    FakeFolder* to = folder(c.user, c.to);
    if (from == nullptr || to == nullptr) return Result<CopyResult>(Status::NotFound("no folder"));
    CopyResult result{to->uidvalidity, {}};
    std::vector<FakeMessage> copies;
    for (const MessageInfo& mi : c.messages) {
      FakeMessage* m = Find(from, mi.uid);
      if (m == nullptr) continue;
      FakeMessage copy = *m;
      copy.info.uid = to->uidnext++;
      copy.info.id = "m" + std::to_string(++next_id_);
      result.uids.push_back(copy.info.uid);
      copies.push_back(std::move(copy));
    }
    if (c.move) {
      for (const MessageInfo& mi : c.messages) {
        std::erase_if(from->messages, [&](const FakeMessage& m) { return m.info.uid == mi.uid; });
      }
    }
    for (FakeMessage& m : copies) to->messages.push_back(std::move(m));
    return Result<CopyResult>(std::move(result));
  }

  Response Do(const AppendMessage& a) {
    FakeFolder* f = folder(a.user, a.folder);
    if (f == nullptr) return Result<AppendResult>(Status::NotFound("no folder"));
    int64_t date = a.internal_date_ms != 0 ? a.internal_date_ms : kBaseDateMs + 100 * kDayMs;
    uint32_t uid = AddMessage(a.user, a.folder, a.message, a.flags, date);
    f->messages.back().info.internal_date_zone = a.internal_date_zone;
    return Result<AppendResult>(AppendResult{f->uidvalidity, uid});
  }

  Response Do(const ExpungeMessages& e) {
    FakeFolder* f = folder(e.user, e.folder);
    if (f == nullptr) return Status::NotFound("no folder");
    for (const MessageInfo& mi : e.messages) Expunge(e.user, e.folder, mi.uid);
    return Status::Ok();
  }

  std::map<std::string, User> users_;
  std::map<std::string, std::deque<Status>> failures_;
  uint32_t next_uidvalidity_ = 1000;
  uint64_t next_id_ = 0;
};

inline SessionInfo TestInfo() {
  SessionInfo info;
  info.server_hostname = "imap.example.test";
  info.implementation = "porcupine-test";
  info.version = "9.9";
  info.transport.peer_loopback = true;  // cleartext logins allowed, as for local clients
  return info;
}

// Renders bytes for a transcript line: tab as \t, other controls as \xHH,
// everything else as is (backslashes too: IMAP flags are full of them).
inline std::string Escape(std::string_view s) {
  return protocol::testing::EscapeBytes(s, {.double_backslash = false, .escape_8bit = false});
}

inline std::string Uids(const std::vector<MessageInfo>& messages) {
  std::string out;
  for (const MessageInfo& m : messages) out += (out.empty() ? "" : ",") + std::to_string(m.uid);
  return out;
}

inline std::string Flags(const std::vector<std::string>& flags) {
  std::string out = "(";
  for (const std::string& f : flags) out += (out.size() > 1 ? " " : "") + f;
  return out + ")";
}

// One line per request; the user is shown only at login (every other
// request is checked to name the logged-in user by the fake backend, which
// answers NotFound for an unknown one).
inline std::string Describe(const Request& request) {
  struct V {
    std::string operator()(const Login& l) const {
      return "login user=" + Escape(l.user) + " password=" + Escape(l.password);
    }
    std::string operator()(const protocol::SaslStep& s) const {
      return std::string("sasl first=") + (s.first ? "1 " : "0 ") + Escape(s.response);
    }
    std::string operator()(const ListFolders&) const { return "list"; }
    std::string operator()(const CreateFolder& c) const { return "create " + Escape(c.name); }
    std::string operator()(const DeleteFolder& d) const { return "delete " + Escape(d.name); }
    std::string operator()(const RenameFolder& r) const {
      return "rename " + Escape(r.from) + " -> " + Escape(r.to);
    }
    std::string operator()(const Subscribe& s) const {
      return std::string(s.subscribe ? "subscribe " : "unsubscribe ") + Escape(s.name);
    }
    std::string operator()(const OpenFolder& o) const {
      return "open " + Escape(o.name) + (o.claim_recent ? " claim" : "");
    }
    std::string operator()(const FetchBody& b) const {
      return "fetch " + Escape(b.folder) + " uid=" + std::to_string(b.message.uid);
    }
    std::string operator()(const StoreFlags& s) const {
      const char* mode = s.mode == StoreFlags::Mode::kAdd      ? "+"
                         : s.mode == StoreFlags::Mode::kRemove ? "-"
                                                               : "";
      return "store " + Escape(s.folder) + " uids=" + Uids(s.messages) + " " + mode +
             "flags=" + Flags(s.flags);
    }
    std::string operator()(const CopyMessages& c) const {
      return std::string(c.move ? "move " : "copy ") + Escape(c.from) + " -> " + Escape(c.to) +
             " uids=" + Uids(c.messages);
    }
    std::string operator()(const AppendMessage& a) const {
      return "append " + Escape(a.folder) + " flags=" + Flags(a.flags) +
             " date=" + std::to_string(a.internal_date_ms) +
             (a.internal_date_zone != 0 ? " zone=" + std::to_string(a.internal_date_zone) : "") +
             " size=" + std::to_string(a.message.size());
    }
    std::string operator()(const ExpungeMessages& e) const {
      return "expunge " + Escape(e.folder) + " uids=" + Uids(e.messages);
    }
  };
  return std::visit(V{}, request);
}

class Driver : public protocol::testing::SessionDriver<Driver, Session, Request> {
 public:
  // A driver with its own backend, or one sharing `backend` (not owned;
  // it must outlive the driver).
  explicit Driver(const Limits& limits, SessionInfo info = TestInfo())
      : SessionDriver(limits, std::move(info)),
        owned_(std::make_unique<FakeBackend>()),
        backend_(owned_.get()) {}
  Driver(FakeBackend* backend, const Limits& limits, SessionInfo info = TestInfo())
      : SessionDriver(limits, std::move(info)), backend_(backend) {}

  // The driver's poll timer fired (only if the session asked for one).
  void Poll() {
    if (closed()) return;
    if (!session_.PollInterval()) {
      transcript_ += "-- no poll requested\n";
      return;
    }
    Event(&Session::OnPoll);
  }

  // Sends `line` + CRLF and returns what the session wrote in response.
  std::string Send(std::string_view line) {
    size_t from = transcript_.size();
    Feed(std::string(line) + "\r\n");
    return transcript_.substr(from);
  }

  FakeBackend& backend() { return *backend_; }

 private:
  friend SessionDriver;

  static std::string Escape(std::string_view s) { return testing::Escape(s); }
  void Record(const Request& request) { transcript_ += "R: " + Describe(request) + "\n"; }
  void Answer(Request request) { session_.Complete(backend_->Handle(request)); }

  std::unique_ptr<FakeBackend> owned_;
  FakeBackend* backend_;
};

}  // namespace porcupine::imap::testing
