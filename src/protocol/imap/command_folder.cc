// Folder management (RFC 3501 §6.3.3–6.3.7, §6.3.10): CREATE, DELETE,
// RENAME, SUBSCRIBE, UNSUBSCRIBE and STATUS. Names travel in modified
// UTF-7 and reach the backend as UTF-8.
#include <string>
#include <utility>

#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {
namespace {

bool IsUnder(std::string_view name, std::string_view parent) {
  return name.size() > parent.size() && name.substr(0, parent.size()) == parent &&
         name[parent.size()] == '/';
}

}  // namespace

std::optional<std::string> Session::Impl::MailboxArg(const Token& t) {
  if (!t.is_astring()) {
    Bad("Syntax: mailbox name expected");
    return std::nullopt;
  }
  std::optional<std::string> name = DecodeMailboxName(t.text);
  if (!name) {
    // A name no folder can have (not modified UTF-7): like any missing
    // folder, NO rather than BAD (as Dovecot answers; imaptest "atoms").
    No("[CANNOT] Invalid mailbox name: modified UTF-7 expected");
    return std::nullopt;
  }
  return NormalizeInbox(std::move(*name));
}

void Session::Impl::CmdCreate(Command& c) {
  if (!Arity(c, 1, 1, "CREATE mailbox")) return;
  std::optional<std::string> name = MailboxArg(c.args[0]);
  if (!name) return;
  // RFC 3501 §6.3.3: a trailing delimiter only declares the intent to
  // create children.
  while (!name->empty() && name->back() == '/') name->pop_back();
  if (name->empty()) return No("[CANNOT] Invalid mailbox name");
  if (*name == "INBOX") return No("[ALREADYEXISTS] INBOX always exists");
  Send<Status>(CreateFolder{user, *name}, [this](Status& s) {
    if (!s.ok()) return Fail(s);
    Ok("CREATE completed");
  });
}

void Session::Impl::CmdDelete(Command& c) {
  if (!Arity(c, 1, 1, "DELETE mailbox")) return;
  std::optional<std::string> name = MailboxArg(c.args[0]);
  if (!name) return;
  if (*name == "INBOX") return No("[CANNOT] INBOX cannot be deleted");
  Send<Status>(DeleteFolder{user, *name}, [this, n = *name](Status& s) {
    if (!s.ok()) return Fail(s);
    Ok("DELETE completed");
    // The view of a deleted folder cannot be kept consistent.
    if (view && view->name == n) Bye("Selected mailbox was deleted");
  });
}

void Session::Impl::CmdRename(Command& c) {
  if (!Arity(c, 2, 2, "RENAME from to")) return;
  std::optional<std::string> from = MailboxArg(c.args[0]);
  if (!from) return;
  std::optional<std::string> to = MailboxArg(c.args[1]);
  if (!to) return;
  while (!to->empty() && to->back() == '/') to->pop_back();
  if (to->empty()) return No("[CANNOT] Invalid mailbox name");
  if (*to == "INBOX") return No("[ALREADYEXISTS] INBOX always exists");
  Send<Status>(RenameFolder{user, *from, *to}, [this, f = *from, t = *to](Status& s) {
    if (!s.ok()) return Fail(s);
    // The selected folder (or an ancestor) moved: keep following it.
    // Renaming INBOX moves its mail, INBOX itself stays.
    if (view && f != "INBOX" && (view->name == f || IsUnder(view->name, f))) {
      view->name = t + view->name.substr(f.size());
    }
    Ok("RENAME completed");
  });
}

void Session::Impl::CmdSubscribe(Command& c) { SubscribeTo(c, true); }

void Session::Impl::CmdUnsubscribe(Command& c) { SubscribeTo(c, false); }

void Session::Impl::SubscribeTo(Command& c, bool subscribe) {
  if (!Arity(c, 1, 1, subscribe ? "SUBSCRIBE mailbox" : "UNSUBSCRIBE mailbox")) return;
  std::optional<std::string> name = MailboxArg(c.args[0]);
  if (!name) return;
  Send<Status>(Subscribe{user, *name, subscribe}, [this, subscribe](Status& s) {
    if (!s.ok()) return Fail(s);
    Ok(subscribe ? "SUBSCRIBE completed" : "UNSUBSCRIBE completed");
  });
}

void Session::Impl::CmdStatus(Command& c) {
  static constexpr std::string_view kUsage =
      "STATUS mailbox (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)";
  if (!Arity(c, 2, 2, kUsage)) return;
  std::optional<std::string> name = MailboxArg(c.args[0]);
  if (!name) return;
  const Token& list = c.args[1];
  std::vector<std::string> items;
  bool ok = list.kind == Token::Kind::kList && !list.items.empty();
  for (size_t i = 0; ok && i < list.items.size(); ++i) {
    const Token& t = list.items[i];
    std::string item = ToUpper(t.text);
    ok = t.kind == Token::Kind::kAtom &&
         (item == "MESSAGES" || item == "RECENT" || item == "UIDNEXT" || item == "UIDVALIDITY" ||
          item == "UNSEEN");
    items.push_back(std::move(item));
  }
  if (!ok) return Bad("Syntax: " + std::string(kUsage));
  // STATUS counts the unclaimed messages as RECENT but claims none.
  OpenFolder open{user, *name, false};
  Send<Result<Snapshot>>(std::move(open), [this, items, n = *name](Result<Snapshot>& r) {
    if (!r.ok()) return Fail(r.status());
    const Snapshot& s = r.value();
    std::string line = "STATUS ";
    AppendString(&line, EncodeMailboxName(n));
    line += " (";
    for (const std::string& item : items) {
      if (line.back() != '(') line += ' ';
      uint64_t v = 0;
      if (item == "MESSAGES") v = s.messages.size();
      if (item == "UIDNEXT") v = s.uidnext;
      if (item == "UIDVALIDITY") v = s.uidvalidity;
      if (item == "RECENT") {
        for (const MessageInfo& m : s.messages) v += m.uid >= s.recent_from ? 1 : 0;
      }
      if (item == "UNSEEN") {
        for (const MessageInfo& m : s.messages) v += HasFlag(m.flags, "\\Seen") ? 0 : 1;
      }
      line += item + " " + std::to_string(v);
    }
    Untagged(line + ")");
    Ok("STATUS completed");
  });
}

}  // namespace porcupine::imap
