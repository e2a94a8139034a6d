// APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315) and TRYCREATE.
#include <string>
#include <utility>

#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {
namespace {

constexpr std::string_view kUsage = "Syntax: APPEND mailbox [(flags)] [\"date-time\"] {literal}";

}  // namespace

void Session::Impl::CmdAppend(Command& c) {
  if (!Arity(c, 2, 4, kUsage)) return;
  std::optional<std::string> name = MailboxArg(c.args[0]);
  if (!name) return;
  AppendMessage req{user, *name, {}, 0, {}};
  size_t i = 1;
  if (i < c.args.size() - 1 && c.args[i].kind == Token::Kind::kList) {
    for (const Token& t : c.args[i].items) {
      // \Recent is the server's to set (RFC 3501 §2.3.2): dropped.
      if (t.kind == Token::Kind::kAtom && EqualsIgnoreCase(t.text, "\\Recent")) continue;
      std::optional<std::string> flag;
      if (t.kind == Token::Kind::kAtom) flag = CanonicalFlag(t.text);
      if (!flag) return Bad("Invalid flag in APPEND");
      AddFlag(&req.flags, *flag);
    }
    ++i;
  }
  if (i < c.args.size() - 1 && c.args[i].kind == Token::Kind::kQuoted) {
    std::optional<int64_t> date = ParseDateTime(c.args[i].text);
    if (!date) return Bad("Invalid date-time in APPEND");
    req.internal_date_ms = *date == 0 ? 1 : *date;  // 0 means "now" to the backend
    ++i;
  }
  Token& message = c.args.back();
  if (i != c.args.size() - 1 || message.kind != Token::Kind::kLiteral) return Bad(kUsage);
  if (message.text.size() > limits.max_message_size) return No("[TOOBIG] Message too large");
  if (message.text.empty()) return No("[CANNOT] Empty message");
  req.message = std::move(message.text);
  Send<Result<AppendResult>>(std::move(req), [this, n = *name](Result<AppendResult>& r) {
    if (!r.ok()) {
      Code code = r.status().code();
      if (code == Code::kNotFound) return No("[TRYCREATE] Mailbox does not exist");
      if (code == Code::kResourceExhausted) return No("[OVERQUOTA] Quota exceeded");
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
