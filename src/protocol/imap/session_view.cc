// The selected folder's view and how it follows the backend: sequence and
// UID sets, the OpenFolder re-read and its diff (EXPUNGE, FETCH FLAGS,
// EXISTS, RECENT), held-back expunges, announced keywords and the body cache.
#include <algorithm>
#include <string>
#include <utility>

#include "core/invariant.h"
#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {
namespace {

// A few recent bodies serve FETCH-after-SEARCH and multi-pass clients;
// the byte bound keeps a session with large messages small (the newest
// body is kept regardless).
constexpr size_t kBodyCacheEntries = 4;
constexpr size_t kBodyCacheBytes = 16u << 20;

bool Ascending(const std::vector<MessageInfo>& m) {
  return std::is_sorted(m.begin(), m.end(),
                        [](const MessageInfo& a, const MessageInfo& b) { return a.uid < b.uid; });
}

}  // namespace

std::vector<std::string> ShownFlags(const ViewMessage& m) {
  if (!m.recent) return m.info.flags;
  std::vector<std::string> flags{"\\Recent"};
  flags.insert(flags.end(), m.info.flags.begin(), m.info.flags.end());
  return flags;
}

const StoreEcho::Target* StoreEcho::Find(uint32_t u) const {
  auto it = std::lower_bound(targets.begin(), targets.end(), u,
                             [](const Target& t, uint32_t v) { return t.uid < v; });
  return it != targets.end() && it->uid == u ? &*it : nullptr;
}

bool Session::Impl::ExpungeAllowed() const { return cur && cur->expunge_allowed; }

void Session::Impl::Sync(std::function<void()> done, std::shared_ptr<StoreEcho> echo,
                         bool idle_poll) {
  // At shutdown the command answers from what it knows; BYE follows.
  if (!view || shutting_down) return done();
  OpenFolder open{user, view->name, !view->read_only, true, view->max_uid(), idle_poll};
  Send<Result<Snapshot>>(std::move(open), [this, done, echo](Result<Snapshot>& r) {
    if (r.ok() && r->unchanged) {
      // Nothing new to report; a STORE's replies still come from the view.
      if (echo == nullptr) return done();
      for (const ViewMessage& m : view->messages) {
        if (!m.expunged) r->messages.push_back(m.info);
      }
      r->unchanged = false;
    }
    if (r.ok()) {
      ApplySnapshot(std::move(r.value()), echo.get());
      if (closed) return;
    } else if (r.status().code() == Code::kNotFound) {
      return Bye("Selected mailbox no longer exists");
    }
    // Other errors: the news waits for the next sync; the command is done.
    done();
  });
}

void Session::Impl::ReportRecent() {
  uint32_t n = view->recent();
  if (n == view->recent_reported) return;
  view->recent_reported = n;
  Untagged(std::to_string(n) + " RECENT");
}

void Session::Impl::ExpungeIndexes(const std::vector<size_t>& indexes) {
  // Highest first, so every number is the one the client still knows.
  for (auto it = indexes.rbegin(); it != indexes.rend(); ++it) {
    Untagged(std::to_string(*it + 1) + " EXPUNGE");
    view->messages.erase(view->messages.begin() + static_cast<std::ptrdiff_t>(*it));
  }
}

void Session::Impl::FlushExpunges() {
  if (!view) return;
  std::vector<size_t> ghosts;
  for (size_t i = 0; i < view->messages.size(); ++i) {
    if (view->messages[i].expunged) ghosts.push_back(i);
  }
  ExpungeIndexes(ghosts);
}

// New keywords are announced in an untagged FLAGS (RFC 3501 §7.2.6) before
// any FETCH that shows them.
void Session::Impl::AnnounceKeywords() {
  bool added = false;
  for (const ViewMessage& m : view->messages) {
    for (const std::string& f : m.info.flags) {
      if (f.empty() || f[0] == '\\' || HasFlag(view->keywords, f)) continue;
      view->keywords.push_back(f);
      added = true;
    }
  }
  if (!added) return;
  std::vector<std::string> flags = SystemFlags();
  flags.insert(flags.end(), view->keywords.begin(), view->keywords.end());
  Untagged("FLAGS " + FlagList(flags));
}

void Session::Impl::ApplySnapshot(Snapshot snap, StoreEcho* echo) {
  View& v = *view;
  // Only a claiming re-read (read-write) makes messages recent.
  const bool claimed = !v.read_only;
  if (snap.uidvalidity != v.uidvalidity) return Bye("Mailbox UIDVALIDITY changed, reconnect");
  if (!Ascending(snap.messages)) {
    PORCUPINE_INVARIANT(false, "backend snapshot not in ascending uid order");
    std::sort(snap.messages.begin(), snap.messages.end(),
              [](const MessageInfo& a, const MessageInfo& b) { return a.uid < b.uid; });
  }
  // 1. Messages gone from the backend: reported now, or held as ghosts.
  const bool allow = ExpungeAllowed();
  std::vector<size_t> gone;
  size_t j = 0;
  for (size_t i = 0; i < v.messages.size(); ++i) {
    uint32_t uid = v.messages[i].info.uid;
    while (j < snap.messages.size() && snap.messages[j].uid < uid) ++j;
    bool present = j < snap.messages.size() && snap.messages[j].uid == uid;
    v.messages[i].expunged = !present;
    if (!present) gone.push_back(i);
  }
  if (allow) ExpungeIndexes(gone);
  // 2. Flag changes of the messages both know, and a STORE's replies.
  std::string fetches;
  j = 0;
  for (size_t i = 0; i < v.messages.size(); ++i) {
    ViewMessage& m = v.messages[i];
    while (j < snap.messages.size() && snap.messages[j].uid < m.info.uid) ++j;
    if (m.expunged || j == snap.messages.size() || snap.messages[j].uid != m.info.uid) continue;
    const bool joins = claimed && !m.recent && m.info.uid >= snap.recent_from;
    const bool changed = joins || !SameFlags(m.info.flags, snap.messages[j].flags);
    m.recent = m.recent || joins;
    m.info.flags = std::move(snap.messages[j].flags);
    const StoreEcho::Target* target = echo != nullptr ? echo->Find(m.info.uid) : nullptr;
    bool report = changed;
    if (target != nullptr) {
      report = !echo->silent || joins || !SameFlags(m.info.flags, target->expected);
    }
    if (!report) continue;
    fetches += "* " + std::to_string(i + 1) + " FETCH (";
    if (target != nullptr && echo->uid) fetches += "UID " + std::to_string(m.info.uid) + " ";
    fetches += "FLAGS " + FlagList(ShownFlags(m)) + ")\r\n";
  }
  if (echo != nullptr) echo->applied = true;
  // 3. New messages. A uid below the view's highest cannot be given a
  // sequence number without renumbering; it waits for the next SELECT.
  uint32_t max_uid = v.max_uid();
  size_t before = v.messages.size();
  for (MessageInfo& m : snap.messages) {
    if (m.uid <= max_uid) continue;
    bool recent = claimed && m.uid >= snap.recent_from;
    v.messages.push_back(ViewMessage{std::move(m), false, recent});
  }
  v.uidnext = std::max(snap.uidnext, v.max_uid() + 1);
  AnnounceKeywords();
  out += fetches;
  if (v.messages.size() != before) Untagged(std::to_string(v.exists()) + " EXISTS");
  ReportRecent();
}

std::optional<std::vector<size_t>> Session::Impl::ResolveSet(const Token& t, bool uid) {
  std::vector<SeqRange> set;
  if (t.kind == Token::Kind::kAtom) set = ParseSequenceSet(t.text);
  if (set.empty()) {
    Bad("Invalid sequence set");
    return std::nullopt;
  }
  const View& v = *view;
  std::vector<size_t> indexes;
  if (uid) {
    // Unknown UIDs are silently ignored (RFC 3501 §6.4.8).
    for (size_t i = 0; i < v.messages.size(); ++i) {
      if (InSequenceSet(set, v.messages[i].info.uid, v.max_uid())) indexes.push_back(i);
    }
    return indexes;
  }
  const uint32_t n = v.exists();
  for (const SeqRange& r : set) {
    bool star = r.low == kStar || r.high == kStar;
    if (n == 0 && star) continue;  // "1:*" in an empty folder names nothing
    for (uint32_t e : {r.low, r.high}) {
      if (e != kStar && (e == 0 || e > n)) {
        Bad("Invalid message sequence number: " + std::to_string(e));
        return std::nullopt;
      }
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (InSequenceSet(set, i + 1, n)) indexes.push_back(i);
  }
  return indexes;
}

std::shared_ptr<const mime::ParsedMessage> Session::Impl::CachedBody(uint32_t uid) const {
  for (const auto& [u, body] : body_cache) {
    if (u == uid) return body;
  }
  return nullptr;
}

std::shared_ptr<const mime::ParsedMessage> Session::Impl::CacheBody(uint32_t uid, std::string raw) {
  std::shared_ptr<const mime::ParsedMessage> parsed = mime::ParsedMessage::Parse(std::move(raw));
  std::erase_if(body_cache, [&](const auto& e) { return e.first == uid; });
  body_cache.emplace_back(uid, parsed);
  size_t bytes = 0;
  for (const auto& e : body_cache) bytes += e.second->raw().size();
  while (body_cache.size() > 1 &&
         (body_cache.size() > kBodyCacheEntries || bytes > kBodyCacheBytes)) {
    bytes -= body_cache.front().second->raw().size();
    body_cache.pop_front();
  }
  return parsed;
}

}  // namespace porcupine::imap
