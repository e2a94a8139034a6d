// SELECT and EXAMINE (RFC 3501 §6.3.1, §6.3.2), CLOSE (§6.4.2), UNSELECT
// (RFC 3691), EXPUNGE (§6.4.3) and UID EXPUNGE (RFC 4315).
#include <algorithm>
#include <string>
#include <utility>

#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {

void Session::Impl::Deselect() {
  view.reset();
  body_cache.clear();
  state = State::kAuthenticated;
}

void Session::Impl::CmdSelect(Command& c) { SelectFolder(c, false); }

void Session::Impl::CmdExamine(Command& c) { SelectFolder(c, true); }

// A SELECT while selected deselects first, without expunging, whether or
// not the new SELECT succeeds (RFC 3501 §6.3.1).
void Session::Impl::SelectFolder(Command& c, bool read_only) {
  if (!Arity(c, 1, 1, read_only ? "EXAMINE mailbox" : "SELECT mailbox")) return;
  std::optional<std::string> name = MailboxArg(c.args[0]);
  if (!name) return;
  if (view) Deselect();
  // SELECT claims the folder's new messages as its recent ones; EXAMINE
  // only shows them (RFC 3501 §6.3.2: \Recent is not changed).
  Send<Result<Snapshot>>(OpenFolder{user, *name, !read_only, true, 0}, [this, n = *name, read_only](
                                                                           Result<Snapshot>& r) {
    if (!r.ok()) return Fail(r.status());
    Snapshot& s = r.value();
    View v;
    v.name = n;
    v.read_only = read_only;
    v.uidvalidity = s.uidvalidity;
    std::sort(s.messages.begin(), s.messages.end(),
              [](const MessageInfo& a, const MessageInfo& b) { return a.uid < b.uid; });
    for (MessageInfo& m : s.messages) {
      bool recent = m.uid >= s.recent_from;
      v.messages.push_back(ViewMessage{std::move(m), false, recent});
    }
    v.recent_reported = v.recent();
    v.uidnext = std::max(s.uidnext, v.max_uid() + 1);
    view = std::move(v);
    state = State::kSelected;
    // The flag list includes the keywords in use, announced once.
    AnnounceKeywords();
    if (view->keywords.empty()) Untagged("FLAGS " + FlagList(SystemFlags()));
    std::vector<std::string> permanent = SystemFlags();
    permanent.insert(permanent.end(), view->keywords.begin(), view->keywords.end());
    permanent.push_back("\\*");
    Untagged(read_only ? "OK [PERMANENTFLAGS ()] Read-only mailbox"
                       : "OK [PERMANENTFLAGS " + FlagList(permanent) + "] Flags permitted");
    Untagged(std::to_string(view->exists()) + " EXISTS");
    Untagged(std::to_string(view->recent_reported) + " RECENT");
    for (size_t i = 0; i < view->messages.size(); ++i) {
      if (HasFlag(view->messages[i].info.flags, "\\Seen")) continue;
      Untagged("OK [UNSEEN " + std::to_string(i + 1) + "] First unseen");
      break;
    }
    Untagged("OK [UIDVALIDITY " + std::to_string(view->uidvalidity) + "] UIDs valid");
    Untagged("OK [UIDNEXT " + std::to_string(view->uidnext) + "] Predicted next UID");
    Ok(read_only ? "[READ-ONLY] EXAMINE completed" : "[READ-WRITE] SELECT completed");
  });
}

void Session::Impl::CmdUnselect(Command& c) {
  if (!Arity(c, 0, 0, "UNSELECT")) return;
  Deselect();
  Ok("UNSELECT completed");
}

// CLOSE has no NO response (RFC 3501 §6.4.2): if the silent expunge fails
// the messages simply stay, still marked \Deleted.
void Session::Impl::CmdClose(Command& c) {
  if (!Arity(c, 0, 0, "CLOSE")) return;
  ExpungeMessages req{user, view->name, {}};
  for (const ViewMessage& m : view->messages) {
    if (!m.expunged && HasFlag(m.info.flags, "\\Deleted")) req.messages.push_back(m.info);
  }
  if (view->read_only || req.messages.empty()) {
    Deselect();
    return Ok("CLOSE completed");
  }
  Send<Status>(std::move(req), [this](Status& s) {
    Deselect();
    Ok(s.ok() ? "CLOSE completed" : "CLOSE completed; messages not expunged, try again later");
  });
}

void Session::Impl::CmdExpunge(Command& c) {
  if (!Arity(c, c.uid ? 1 : 0, c.uid ? 1 : 0, c.uid ? "UID EXPUNGE uid-set" : "EXPUNGE")) return;
  std::vector<size_t> candidates;
  if (c.uid) {
    std::optional<std::vector<size_t>> set = ResolveSet(c.args[0], true);
    if (!set) return;
    candidates = std::move(*set);
  } else {
    for (size_t i = 0; i < view->messages.size(); ++i) candidates.push_back(i);
  }
  if (view->read_only) return No("[CANNOT] Mailbox is read-only");
  ExpungeMessages req{user, view->name, {}};
  std::vector<uint32_t> uids;
  for (size_t i : candidates) {
    const ViewMessage& m = view->messages[i];
    if (m.expunged || !HasFlag(m.info.flags, "\\Deleted")) continue;
    req.messages.push_back(m.info);
    uids.push_back(m.info.uid);
  }
  if (req.messages.empty()) return Sync([this] { Ok("EXPUNGE completed"); });
  Send<Status>(std::move(req), [this, uids](Status& s) {
    if (!s.ok()) return Fail(s);
    // The removal is durable: report it without waiting for the re-read.
    std::vector<size_t> indexes;
    for (size_t i = 0; i < view->messages.size(); ++i) {
      if (std::binary_search(uids.begin(), uids.end(), view->messages[i].info.uid)) {
        indexes.push_back(i);
      }
    }
    ExpungeIndexes(indexes);
    Sync([this] { Ok("EXPUNGE completed"); });
  });
}

}  // namespace porcupine::imap
