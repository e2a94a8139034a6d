// STORE and UID STORE (RFC 3501 §6.4.6): FLAGS, +FLAGS, -FLAGS and their
// .SILENT forms. One StoreFlags request carries the change (mode and flags)
// for every message named; the backend applies it to each message's current
// flags. The re-read that follows reports the result as the backend has it,
// changes made elsewhere included (StoreEcho in session_impl.h).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {
namespace {

constexpr std::string_view kUsage = "STORE sequence-set [+|-]FLAGS[.SILENT] (flags)";

using StoreMode = StoreFlags::Mode;

struct StoreItem {
  StoreMode mode = StoreMode::kReplace;
  bool silent = false;
};

std::optional<StoreItem> ParseStoreItem(const Token& t) {
  if (t.kind != Token::Kind::kAtom) return std::nullopt;
  std::string name = ToUpper(t.text);
  StoreItem item;
  if (!name.empty() && (name[0] == '+' || name[0] == '-')) {
    item.mode = name[0] == '+' ? StoreMode::kAdd : StoreMode::kRemove;
    name.erase(0, 1);
  }
  if (name == "FLAGS.SILENT") {
    item.silent = true;
  } else if (name != "FLAGS") {
    return std::nullopt;
  }
  return item;
}

// The flags: one parenthesized list, or bare flags (RFC 3501 store-att-flags).
// \Recent is accepted and dropped: STORE cannot change it (RFC 3501 §2.3.2).
std::optional<std::vector<std::string>> ParseStoreFlags(const std::vector<Token>& args) {
  std::vector<const Token*> tokens;
  if (args.size() == 3 && args[2].kind == Token::Kind::kList) {
    for (const Token& t : args[2].items) tokens.push_back(&t);
  } else {
    for (size_t i = 2; i < args.size(); ++i) tokens.push_back(&args[i]);
  }
  std::vector<std::string> flags;
  for (const Token* t : tokens) {
    if (t->kind == Token::Kind::kAtom && EqualsIgnoreCase(t->text, "\\Recent")) continue;
    std::optional<std::string> f;
    if (t->kind == Token::Kind::kAtom) f = CanonicalFlag(t->text);
    if (!f) return std::nullopt;
    AddFlag(&flags, *f);
  }
  return flags;
}

std::vector<std::string> Apply(StoreMode mode, std::vector<std::string> current,
                               const std::vector<std::string>& flags) {
  switch (mode) {
    case StoreMode::kReplace:
      return flags;
    case StoreMode::kAdd:
      for (const std::string& f : flags) AddFlag(&current, f);
      return current;
    case StoreMode::kRemove:
      for (const std::string& f : flags) RemoveFlag(&current, f);
      return current;
  }
  return current;
}

}  // namespace

void Session::Impl::CmdStore(Command& c) {
  if (!Arity(c, 3, SIZE_MAX, kUsage)) return;
  std::optional<StoreItem> item = ParseStoreItem(c.args[1]);
  std::optional<std::vector<std::string>> flags = ParseStoreFlags(c.args);
  if (!item) return Bad(std::string("Syntax: ") + std::string(kUsage));
  if (!flags) return Bad("Invalid flag (unknown system flags cannot be stored)");
  std::optional<std::vector<size_t>> indexes = ResolveSet(c.args[0], c.uid);
  if (!indexes) return;
  if (view->read_only) return No("[CANNOT] Mailbox is read-only");
  StoreFlags req{user, view->name, {}, item->mode, *flags};
  auto echo = std::make_shared<StoreEcho>();
  echo->silent = item->silent;
  echo->uid = c.uid;
  // Messages expunged elsewhere are skipped (RFC 2180 §4.2.1). Every other
  // one is sent, even where the view says nothing would change: the
  // backend's flags may differ from the view's.
  for (size_t i : *indexes) {
    const ViewMessage& m = view->messages[i];
    if (m.expunged) continue;
    req.messages.push_back(m.info);
    echo->targets.push_back({m.info.uid, Apply(item->mode, m.info.flags, *flags)});
  }
  auto finish = [this, echo] {
    Sync(
        [this, echo] {
          if (!echo->applied) StoreWithoutSync(*echo);
          Ok(cur->name + " completed");
        },
        echo);
  };
  bool no_op = req.messages.empty() || (item->mode != StoreMode::kReplace && flags->empty());
  if (no_op) return finish();
  Send<Status>(std::move(req), [this, finish](Status& s) {
    if (!s.ok()) return Fail(s);
    finish();
  });
}

// The re-read failed or was skipped (shutdown): the view takes the flags
// the change gives, and the client hears them; the next re-read corrects
// whatever the backend has differently.
void Session::Impl::StoreWithoutSync(const StoreEcho& echo) {
  std::string fetches;
  for (size_t i = 0; i < view->messages.size(); ++i) {
    ViewMessage& m = view->messages[i];
    const StoreEcho::Target* target = echo.Find(m.info.uid);
    if (target == nullptr || m.expunged) continue;
    m.info.flags = target->expected;
    if (echo.silent) continue;
    fetches += "* " + std::to_string(i + 1) + " FETCH (";
    if (echo.uid) fetches += "UID " + std::to_string(m.info.uid) + " ";
    fetches += "FLAGS " + FlagList(ShownFlags(m)) + ")\r\n";
  }
  AnnounceKeywords();
  out += fetches;
}

}  // namespace porcupine::imap
