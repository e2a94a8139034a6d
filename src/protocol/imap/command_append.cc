// APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315) and TRYCREATE.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {
namespace {

constexpr const char* kUsage = "Syntax: APPEND mailbox [(flags)] [\"date-time\"] {literal}";

// APPEND's arguments before the message: mailbox [flag-list] [date-time].
struct AppendArgs {
  std::vector<std::string> flags;  // canonical; \Recent dropped (the server's to set)
  DateTime date;                   // ms 0: none given
};

const char* ParseFlags(const Token& list, AppendArgs* out) {
  for (const Token& t : list.items) {
    if (t.kind == Token::Kind::kAtom && EqualsIgnoreCase(t.text, "\\Recent")) continue;
    std::optional<std::string> flag;
    if (t.kind == Token::Kind::kAtom) flag = CanonicalFlag(t.text);
    if (!flag) return "Invalid flag in APPEND";
    AddFlag(&out->flags, *flag);
  }
  return nullptr;
}

// `args` holds the mailbox first, the message not. nullptr when they are
// well formed (*out filled), else the reason for BAD.
const char* ParseAppendArgs(const Token* args, size_t n, AppendArgs* out) {
  if (n == 0 || !args[0].is_astring()) return kUsage;
  size_t i = 1;
  if (i < n && args[i].kind == Token::Kind::kList) {
    if (const char* why = ParseFlags(args[i], out)) return why;
    ++i;
  }
  if (i < n && args[i].kind == Token::Kind::kQuoted) {
    std::optional<DateTime> date = ParseDateTime(args[i].text);
    if (!date) return "Invalid date-time in APPEND";
    out->date = *date;
    if (date->ms == 0) out->date.ms = 1;  // 0 means "now" to the backend
    ++i;
  }
  return i == n ? nullptr : kUsage;
}

}  // namespace

const char* Session::Impl::AppendBeforeLiteral(const std::vector<Token>& args) {
  if (args.empty()) return nullptr;  // the mailbox name is the literal
  AppendArgs unused;
  return ParseAppendArgs(args.data(), args.size(), &unused);
}

void Session::Impl::CmdAppend(Command& c) {
  if (c.args.size() < 2) return Bad(kUsage);
  std::optional<std::string> name = MailboxArg(c.args[0]);
  if (!name) return;
  AppendArgs args;
  if (const char* why = ParseAppendArgs(c.args.data(), c.args.size() - 1, &args)) return Bad(why);
  Token& message = c.args.back();
  if (message.kind != Token::Kind::kLiteral) return Bad(kUsage);
  if (message.text.size() > limits.max_message_size) return No("[TOOBIG] Message too large");
  if (message.text.empty()) return No("[CANNOT] Empty message");
  AppendMessage req{
      user, *name, std::move(args.flags), args.date.ms, std::move(message.text), args.date.zone};
  Send<Result<AppendResult>>(std::move(req), [this, n = *name](Result<AppendResult>& r) {
    if (!r.ok()) {
      Code code = r.status().code();
      if (code == Code::kNotFound) return No("[TRYCREATE] Mailbox does not exist");
      if (code == Code::kResourceExhausted) return No(kNoResources);
      return Fail(r.status());
    }
    std::string text = "[APPENDUID " + std::to_string(r.value().uidvalidity) + " " +
                       std::to_string(r.value().uid) + "] APPEND completed";
    // Appending to the selected folder: the client learns of it now.
    if (view && view->name == n) return Sync([this, text] { Ok(text); });
    Ok(text);
  });
}

}  // namespace porcupine::imap
