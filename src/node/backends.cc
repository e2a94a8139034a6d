#include "node/backends.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

namespace porcupine::node {

std::string NowRfc5322() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

asio::awaitable<smtp::Response> SmtpBackend::Handle(smtp::Request request) {
  auto dispatch = [this](auto&& r) { return Do(std::move(r)); };
  co_return co_await std::visit(dispatch, std::move(request));
}

namespace {

smtp::RecipientVerdict VerdictOf(mail::RecipientCheck check) {
  switch (check) {
    case mail::RecipientCheck::kLocalUser:
      return smtp::RecipientVerdict::kAccept;
    case mail::RecipientCheck::kUnknownUser:
    case mail::RecipientCheck::kBadAddress:
      return smtp::RecipientVerdict::kUnknownUser;
    case mail::RecipientCheck::kNotLocalDomain:
      return smtp::RecipientVerdict::kRelayDenied;
    case mail::RecipientCheck::kTempFail:
      return smtp::RecipientVerdict::kTempFail;
  }
  return smtp::RecipientVerdict::kTempFail;
}

}  // namespace

// One co_return: g++ 12 miscompiled this coroutine with a co_return in
// every case of a switch (SIGILL at its start).
asio::awaitable<smtp::Response> SmtpBackend::Do(smtp::CheckRecipient check) {
  mail::RecipientCheck result = co_await mail_.CheckRecipient(std::move(check.address));
  co_return VerdictOf(result);
}

// AUTH PLAIN/LOGIN: the one password path (MailService::Authenticate, with
// the login throttle), like POP3 and IMAP.
asio::awaitable<smtp::Response> SmtpBackend::Do(smtp::Login login) {
  Result<std::string> user =
      co_await mail_.Authenticate(std::move(login.user), std::move(login.password), client_);
  if (!user.ok()) {
    const Code c = user.status().code();
    if (c != Code::kPermissionDenied && c != Code::kResourceExhausted && c != Code::kNotFound) {
      metrics_.smtp().backend_errors->Increment();
    }
  }
  co_return smtp::LoginResult(std::move(user));
}

asio::awaitable<smtp::Response> SmtpBackend::Do(protocol::SaslStep step) {
  co_return co_await scram_.Step(std::move(step));
}

asio::awaitable<smtp::Response> SmtpBackend::Do(smtp::Deliver deliver) {
  const size_t bytes = deliver.message.size();
  mail::MailService::DeliveryReport report;
  Status st =
      co_await mail_.Deliver(std::move(deliver.recipients), std::move(deliver.message), &report);
  if (st.ok()) {
    metrics_.messages_stored->Increment(static_cast<double>(report.copies));
    metrics_.bytes_stored->Increment(static_cast<double>(report.copies * bytes));
  } else {
    // Every failed delivery is answered 4xx (smtp::Session::Complete).
    metrics_.smtp().backend_errors->Increment();
    if (report.maybe_stored) metrics_.smtp_tempfail_after_store->Increment();
    spdlog::warn("delivery failed{}: {}", report.maybe_stored ? " (a copy may be stored)" : "",
                 st.ToString());
  }
  co_return st;
}

asio::awaitable<pop3::Response> Pop3Backend::Handle(pop3::Request request) {
  auto dispatch = [this](auto&& r) { return Do(std::move(r)); };
  co_return co_await std::visit(dispatch, std::move(request));
}

asio::awaitable<pop3::Response> Pop3Backend::Do(pop3::Login login) {
  std::string user;
  auto box = co_await mail_.OpenMailbox(login.user, login.password, &user, client_);
  if (!box.ok()) {
    const Code c = box.status().code();
    if (c != Code::kPermissionDenied && c != Code::kResourceExhausted) {
      metrics_.pop3().backend_errors->Increment();
    }
    co_return pop3::LoginResult(box.status());
  }
  co_return Listed(std::move(user), std::move(*box));
}

pop3::LoginResult Pop3Backend::Listed(std::string user, std::vector<mail::MailboxEntry> box) {
  user_ = std::move(user);
  std::vector<pop3::MessageEntry> entries;
  entries.reserve(box.size());
  for (mail::MailboxEntry& e : box) {
    std::string uid = e.id.ToHex();
    entries.push_back({uid, e.size});
    entries_[uid] = std::move(e);
  }
  return pop3::LoginResult(std::move(entries));
}

asio::awaitable<pop3::Response> Pop3Backend::Do(protocol::SaslStep step) {
  protocol::SaslReply reply = co_await scram_.Step(std::move(step));
  scram_user_ = reply.kind == protocol::SaslReply::Kind::kSuccess ? reply.user : std::string();
  co_return reply;
}

// Only the user this connection's SCRAM exchange authenticated.
asio::awaitable<pop3::Response> Pop3Backend::Do(pop3::OpenMaildrop open) {
  if (scram_user_.empty() || open.user != scram_user_) {
    co_return pop3::LoginResult(Status::PermissionDenied("not authenticated"));
  }
  Result<std::vector<mail::MailboxEntry>> box = co_await mail_.ListMaildrop(open.user);
  if (!box.ok()) {
    metrics_.pop3().backend_errors->Increment();
    co_return pop3::LoginResult(box.status());
  }
  co_return Listed(std::move(open.user), std::move(*box));
}

asio::awaitable<pop3::Response> Pop3Backend::Do(pop3::Retrieve retrieve) {
  auto it = entries_.find(retrieve.uid);
  if (it == entries_.end()) co_return pop3::RetrieveResult(Status::NotFound("no such message"));
  auto body = co_await mail_.ReadMessage(user_, it->second);
  if (!body.ok() && body.status().code() != Code::kNotFound) {
    metrics_.pop3().backend_errors->Increment();
  }
  co_return pop3::RetrieveResult(std::move(body));
}

asio::awaitable<pop3::Response> Pop3Backend::Do(pop3::Commit commit) {
  std::vector<mail::MailboxEntry> doomed;
  for (const std::string& uid : commit.uids) {
    auto it = entries_.find(uid);
    if (it != entries_.end()) doomed.push_back(it->second);
  }
  const size_t count = doomed.size();
  Status st = co_await mail_.DeleteMessages(user_, std::move(doomed));
  if (st.ok()) {
    metrics_.messages_deleted->Increment(static_cast<double>(count));
  } else {
    metrics_.pop3().backend_errors->Increment();
  }
  co_return st;
}

// ---- IMAP ----

asio::awaitable<imap::Response> ImapBackend::Handle(imap::Request request) {
  if (!std::holds_alternative<imap::Login>(request) &&
      !std::holds_alternative<protocol::SaslStep>(request) && user_.empty()) {
    co_return Status::PermissionDenied("not logged in");  // the session never does this
  }
  auto dispatch = [this](auto&& r) { return Do(std::move(r)); };
  co_return co_await std::visit(dispatch, std::move(request));
}

Status ImapBackend::Counted(Status st) {
  const Code c = st.code();
  if (c == Code::kUnavailable || c == Code::kIoError || c == Code::kInternal ||
      c == Code::kCorruption || c == Code::kUnknownOutcome) {
    metrics_.imap().backend_errors->Increment();
  }
  return st;
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::Login r) {
  Result<std::string> user = co_await mail_.Authenticate(r.user, r.password, client_);
  if (!user.ok()) co_return Result<std::string>(Counted(user.status()));
  LoggedIn(*user);
  co_return user;
}

void ImapBackend::LoggedIn(std::string user) {
  user_ = std::move(user);
  if (watch_) interest_ = watch_->Watch(user_);
}

asio::awaitable<imap::Response> ImapBackend::Do(protocol::SaslStep r) {
  protocol::SaslReply reply = co_await scram_.Step(std::move(r));
  if (reply.kind == protocol::SaslReply::Kind::kSuccess) LoggedIn(reply.user);
  if (reply.kind == protocol::SaslReply::Kind::kFailure) (void)Counted(reply.status);
  co_return reply;
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::ListFolders) {
  Result<manager::FolderState> st = co_await mail_.Folders(user_, {});
  if (!st.ok()) co_return Result<std::vector<imap::FolderInfo>>(Counted(st.status()));
  std::vector<imap::FolderInfo> out;
  for (const manager::FolderStatus& f : st->folders) {
    out.push_back({f.folder.name(), f.folder.special_use(), f.folder.subscribed()});
  }
  co_return out;
}

asio::awaitable<Status> ImapBackend::FolderChange(manager::FolderOp op) {
  co_return Counted((co_await mail_.Folders(user_, std::move(op))).status());
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::CreateFolder r) {
  co_return co_await FolderChange({manager::FolderOp::Kind::kCreate, r.name});
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::DeleteFolder r) {
  // The folder's messages go first (a folder id is never reused, so a copy
  // missed here stays invisible).
  Result<mail::FolderView> view = co_await mail_.OpenFolder(user_, r.name);
  if (!view.ok()) co_return Counted(view.status());
  if (view->status.folder.name() == "INBOX") {
    co_return Status::FailedPrecondition("the inbox cannot be deleted");
  }
  Status st = co_await mail_.DeleteMessages(user_, std::move(view->messages));
  if (!st.ok()) co_return Counted(st);
  co_return co_await FolderChange({manager::FolderOp::Kind::kDelete, r.name});
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::RenameFolder r) {
  if (r.from != "INBOX") {
    co_return co_await FolderChange({manager::FolderOp::Kind::kRename, r.from, r.to});
  }
  // RFC 3501 §6.3.5: renaming INBOX moves its messages to a new folder of
  // that name; INBOX stays, empty (its subfolders stay too). Each message is
  // copied before the originals go, so a failure half way loses nothing.
  Status created = co_await FolderChange({manager::FolderOp::Kind::kCreate, r.to});
  if (!created.ok()) co_return created;
  Result<mail::FolderView> inbox = co_await mail_.OpenFolder(user_, "INBOX");
  if (!inbox.ok()) co_return Counted(inbox.status());
  std::vector<mail::MailboxEntry> messages = std::move(inbox->messages);
  const size_t count = messages.size();
  Result<mail::Placed> moved = co_await mail_.Copy(user_, std::move(messages), r.to, true);
  if (!moved.ok()) co_return Counted(moved.status());
  metrics_.messages_deleted->Increment(static_cast<double>(count));
  co_return Status::Ok();
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::Subscribe r) {
  co_return co_await FolderChange(
      {r.subscribe ? manager::FolderOp::Kind::kSubscribe : manager::FolderOp::Kind::kUnsubscribe,
       r.name});
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::OpenFolder r) {
  const auto now = std::chrono::steady_clock::now();
  if (r.idle_poll && watch_ && last_valid_ && !held_ && r.name == last_name_ &&
      now - full_at_ < recheck_ && watch_->Armed(user_) && watch_->Changes(user_) == mark_) {
    // No node reported a change of the user's messages since the last read.
    metrics_.imap_idle_skipped->Increment();
    co_return Unchanged(last_.uidnext);
  }
  if (r.idle_poll) metrics_.imap_idle_read->Increment();
  const uint64_t mark = watch_ ? watch_->Changes(user_) : 0;  // before the read
  auto remember = [&](const mail::FolderView& v) {
    last_valid_ = true;
    last_name_ = r.name;
    mark_ = mark;
    full_at_ = now;
    held_ = v.hold_from != 0;
  };
  // A new selection starts from nothing (a re-read keeps what was shown,
  // also when the folder was renamed meanwhile).
  if (r.selected && r.shown_through == 0 && !r.idle_poll) {
    shown_.clear();
    listing_ = {};
    last_valid_ = false;
  }
  // Re-reads of the selection only list again where something changed.
  mail::ListingCache* cache = r.selected ? &listing_ : nullptr;
  // What the session shows is never held back (FolderView::hold_from).
  std::function<bool(const store::MessageId&)> is_shown;
  if (r.selected)
    is_shown = [this](const store::MessageId& id) { return shown_.count(id.ToHex()) > 0; };
  Result<mail::FolderView> view =
      co_await mail_.OpenFolder(user_, r.name, r.claim_recent, cache, is_shown);
  if (!view.ok()) co_return Result<imap::Snapshot>(Counted(view.status()));
  if (view->unchanged) {  // only a re-read: a new selection emptied the cache
    const mail::FolderView& v = *view;
    if (v.status.folder.uidvalidity() == last_.uidvalidity &&
        v.status.recent_from == last_.recent_from) {
      // The common poll: no listing, no diff.
      last_.uidnext = std::max(last_.uidnext, v.status.uidnext);
      remember(v);
      co_return Unchanged(last_.uidnext);
    }
    listing_ = {};  // the folder's header moved: list it in full
    view = co_await mail_.OpenFolder(user_, r.name, r.claim_recent, cache, is_shown);
    if (!view.ok()) co_return Result<imap::Snapshot>(Counted(view.status()));
  }
  if (r.selected && r.shown_through > 0) {
    // A message under a UID the session has passed (a delivery that
    // finished after a later one, or one whose node was down at SELECT)
    // cannot be shown without a new UID; clients see it as a new message.
    std::vector<mail::MailboxEntry> late;
    uint32_t highest = r.shown_through;
    for (const mail::MailboxEntry& e : view->messages) {
      highest = std::max(highest, e.uid);
      if (e.uid != 0 && e.uid <= r.shown_through && !shown_.count(e.id.ToHex())) {
        late.push_back(e);
      }
    }
    if (!late.empty() &&
        (co_await mail_.Renumber(user_, view->status.folder.name(), std::move(late), highest))
            .ok()) {
      // Without the cache: this listing must return the messages (the
      // cache's older versions make the next poll list again).
      view = co_await mail_.OpenFolder(user_, r.name, r.claim_recent, nullptr, is_shown);
      if (!view.ok()) co_return Result<imap::Snapshot>(Counted(view.status()));
    }
  }
  imap::Snapshot snap;
  snap.uidvalidity = view->status.folder.uidvalidity();
  snap.uidnext = view->status.uidnext;
  snap.recent_from = view->status.recent_from;
  uint32_t last_uid = 0;
  std::unordered_set<std::string> present;
  for (mail::MailboxEntry& e : view->messages) {
    // Two copies under one UID that could not be renumbered yet show the
    // lower message id only (DESIGN.md §6).
    if (e.uid == 0 || e.uid == last_uid) continue;
    last_uid = e.uid;
    std::string id = e.id.ToHex();
    snap.messages.push_back({e.uid, id, e.flags, e.internal_date_ms, e.size, e.internal_date_zone});
    if (r.selected) present.insert(id);
    entries_[id] = std::move(e);
  }
  if (!r.selected) co_return snap;
  if (r.shown_through > 0 && snap.uidvalidity == last_.uidvalidity) {
    snap.uidnext = std::max(snap.uidnext, last_.uidnext);  // UIDNEXT never goes back
  }
  last_ = {snap.uidvalidity, snap.uidnext, {}, snap.recent_from};
  remember(*view);
  {
    // A shown message none of whose holders listed the folder (down, or
    // dropped from the mail map with a view change) is unavailable, not
    // expunged: it stays in the session's view as last listed.
    const auto answered = [&](cluster::NodeId n) {
      return std::find(view->answered.begin(), view->answered.end(), n) != view->answered.end();
    };
    bool kept = false;
    for (const std::string& id : shown_) {
      auto it = entries_.find(id);
      if (present.count(id) || it == entries_.end()) continue;
      const mail::MailboxEntry& e = it->second;
      if (std::any_of(e.holders.begin(), e.holders.end(), answered)) continue;
      snap.messages.push_back(
          {e.uid, id, e.flags, e.internal_date_ms, e.size, e.internal_date_zone});
      present.insert(id);
      kept = true;
    }
    if (kept) {
      const auto by_uid = [](const imap::MessageInfo& a, const imap::MessageInfo& b) {
        return a.uid < b.uid;
      };
      std::stable_sort(snap.messages.begin(), snap.messages.end(), by_uid);
      // A listed message under a kept one's UID would be a second copy.
      snap.messages.erase(std::unique(snap.messages.begin(), snap.messages.end(),
                                      [](const imap::MessageInfo& a, const imap::MessageInfo& b) {
                                        return a.uid == b.uid;
                                      }),
                          snap.messages.end());
    }
  }
  // What the session shows from this snapshot on (it skips UIDs it passed).
  std::unordered_set<std::string> shown;
  for (const imap::MessageInfo& m : snap.messages) {
    if (m.uid > r.shown_through || shown_.count(m.id)) shown.insert(m.id);
  }
  shown_ = std::move(shown);
  co_return snap;
}

imap::Snapshot ImapBackend::Unchanged(uint32_t uidnext) const {
  imap::Snapshot same{last_.uidvalidity, uidnext, {}, last_.recent_from};
  same.unchanged = true;
  return same;
}

std::vector<mail::MailboxEntry> ImapBackend::EntriesOf(
    const std::vector<imap::MessageInfo>& messages) {
  std::vector<mail::MailboxEntry> out;
  for (const imap::MessageInfo& m : messages) {
    auto it = entries_.find(m.id);
    if (it == entries_.end()) continue;
    out.push_back(it->second);
  }
  return out;
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::FetchBody r) {
  auto it = entries_.find(r.message.id);
  if (it == entries_.end()) co_return Result<std::string>(Status::NotFound("no such message"));
  Result<std::string> body = co_await mail_.ReadMessage(user_, it->second);
  if (!body.ok()) (void)Counted(body.status());
  co_return body;
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::StoreFlags r) {
  mail::FlagChange::Mode mode = mail::FlagChange::Mode::kReplace;
  if (r.mode == imap::StoreFlags::Mode::kAdd) mode = mail::FlagChange::Mode::kAdd;
  if (r.mode == imap::StoreFlags::Mode::kRemove) mode = mail::FlagChange::Mode::kRemove;
  co_return Counted(
      co_await mail_.SetFlags(user_, EntriesOf(r.messages), mode, std::move(r.flags)));
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::CopyMessages r) {
  std::vector<mail::MailboxEntry> entries = EntriesOf(r.messages);
  const size_t count = entries.size();
  Result<mail::Placed> placed = co_await mail_.Copy(user_, std::move(entries), r.to, r.move);
  if (!placed.ok()) co_return Result<imap::CopyResult>(Counted(placed.status()));
  if (r.move) metrics_.messages_deleted->Increment(static_cast<double>(count));
  co_return imap::CopyResult{placed->uidvalidity, std::move(placed->uids)};
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::AppendMessage r) {
  const mail::InternalDate date{r.internal_date_ms, r.internal_date_zone};
  Result<mail::Placed> placed =
      co_await mail_.Append(user_, r.folder, std::move(r.flags), date, std::move(r.message));
  if (!placed.ok()) co_return Result<imap::AppendResult>(Counted(placed.status()));
  co_return imap::AppendResult{placed->uidvalidity, placed->uids.front()};
}

asio::awaitable<imap::Response> ImapBackend::Do(imap::ExpungeMessages r) {
  std::vector<mail::MailboxEntry> entries = EntriesOf(r.messages);
  const size_t count = entries.size();
  Status st = co_await mail_.DeleteMessages(user_, std::move(entries));
  if (st.ok()) metrics_.messages_deleted->Increment(static_cast<double>(count));
  co_return Counted(st);
}

}  // namespace porcupine::node
