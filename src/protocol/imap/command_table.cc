// The IMAP command table, dispatch, and the small commands: CAPABILITY,
// NOOP, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342) and
// CHECK.
#include <string>

#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {

const Session::Impl::CommandSpec* Session::Impl::FindCommand(std::string_view name) {
  constexpr unsigned kAny = kNotAuthenticated | kAuthenticated | kSelected;
  constexpr unsigned kAuth = kAuthenticated | kSelected;
  constexpr unsigned kSel = kSelected;
  static constexpr CommandSpec kCommands[] = {
      {"CAPABILITY", &Impl::CmdCapability, kAny},
      {"NOOP", &Impl::CmdNoop, kAny},
      {"LOGOUT", &Impl::CmdLogout, kAny | kEndsPipeline},
      {"ID", &Impl::CmdId, kAny},
      {"STARTTLS", &Impl::CmdStartTls, kNotAuthenticated | kEndsPipeline},
      {"LOGIN", &Impl::CmdLogin, kNotAuthenticated},
      {"AUTHENTICATE", &Impl::CmdAuthenticate, kNotAuthenticated | kEndsPipeline},
      {"SELECT", &Impl::CmdSelect, kAuth},
      {"EXAMINE", &Impl::CmdExamine, kAuth},
      {"CREATE", &Impl::CmdCreate, kAuth},
      {"DELETE", &Impl::CmdDelete, kAuth},
      {"RENAME", &Impl::CmdRename, kAuth},
      {"SUBSCRIBE", &Impl::CmdSubscribe, kAuth},
      {"UNSUBSCRIBE", &Impl::CmdUnsubscribe, kAuth},
      {"LIST", &Impl::CmdList, kAuth},
      {"LSUB", &Impl::CmdLsub, kAuth},
      {"STATUS", &Impl::CmdStatus, kAuth},
      {"APPEND", &Impl::CmdAppend, kAuth, &Impl::AppendBeforeLiteral},
      {"NAMESPACE", &Impl::CmdNamespace, kAuth},
      {"ENABLE", &Impl::CmdEnable, kAuth},
      {"IDLE", &Impl::CmdIdle, kAuth | kEndsPipeline},
      {"CHECK", &Impl::CmdCheck, kSel},
      {"CLOSE", &Impl::CmdClose, kSel},
      {"UNSELECT", &Impl::CmdUnselect, kSel},
      {"EXPUNGE", &Impl::CmdExpunge, kSel | kUidForm},
      {"SEARCH", &Impl::CmdSearch, kSel | kUidForm | kSequenceNumbers},
      {"FETCH", &Impl::CmdFetch, kSel | kUidForm | kSequenceNumbers},
      {"STORE", &Impl::CmdStore, kSel | kUidForm | kSequenceNumbers},
      {"COPY", &Impl::CmdCopy, kSel | kUidForm},
      {"MOVE", &Impl::CmdMove, kSel | kUidForm},
  };
  for (const CommandSpec& c : kCommands) {
    if (EqualsIgnoreCase(c.name, name)) return &c;
  }
  return nullptr;
}

const char* Session::Impl::CheckBeforeLiteral(std::string_view name,
                                              const std::vector<Token>& args) {
  const CommandSpec* spec = FindCommand(name);
  if (spec == nullptr || spec->before_literal == nullptr) return nullptr;
  return spec->before_literal(args);
}

void Session::Impl::Dispatch(Command& c) {
  cur = Current{c.tag, (c.uid ? "UID " : "") + c.name, c.uid, false};
  const CommandSpec* spec = FindCommand(c.name);
  if (spec == nullptr) return Bad("Unknown command");
  if (c.uid && (spec->flags & kUidForm) == 0)
    return Bad("Unknown command UID " + c.name.substr(0, 32));
  unsigned need = state == State::kNotAuthenticated ? kNotAuthenticated
                  : state == State::kAuthenticated  ? kAuthenticated
                                                    : kSelected;
  if ((spec->flags & need) == 0) {
    if (state == State::kNotAuthenticated) return Bad("Log in first");
    if ((spec->flags & kSelected) != 0) return Bad("No mailbox selected");
    return Bad("Command not valid in this state");
  }
  cur->expunge_allowed = (spec->flags & kSequenceNumbers) == 0 || c.uid;
  (this->*spec->handler)(c);
}

bool Session::Impl::Arity(const Command& c, size_t min, size_t max, std::string_view usage) {
  if (c.args.size() >= min && c.args.size() <= max) return true;
  Bad("Syntax: " + std::string(usage));
  return false;
}

std::string Session::Impl::Capabilities() const {
  std::string caps =
      "IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS MOVE NAMESPACE SPECIAL-USE ENABLE ID UNSELECT "
      "CHILDREN";
  // RFC 3501 §6.2.3, §7.2.1: where cleartext logins are refused (no TLS, a
  // peer that is not loopback) LOGINDISABLED, and PLAIN is not offered.
  caps += transport.CleartextAuthAllowed() ? " AUTH=SCRAM-SHA-256 AUTH=PLAIN" : " LOGINDISABLED";
  if (OffersStartTls()) caps += " STARTTLS";
  return caps;
}

void Session::Impl::CmdCapability(Command& c) {
  if (!Arity(c, 0, 0, "CAPABILITY")) return;
  Untagged("CAPABILITY " + Capabilities());
  Ok("CAPABILITY completed");
}

// RFC 3501 §6.2.1. STARTTLS ends the pipeline, so nothing after it was
// parsed; the OK goes out in plaintext and every byte the client pipelined
// behind the command is dropped, never executed over TLS (CVE-2011-0411).
void Session::Impl::CmdStartTls(Command& c) {
  if (!transport.tls_available && !transport.secure) return Bad("Unknown command");
  if (!Arity(c, 0, 0, "STARTTLS")) return;
  if (transport.secure) return Bad("TLS already active");
  Ok("Begin TLS negotiation now");
  DiscardInput();
  tls_due = true;
}

void Session::Impl::DiscardInput() {
  reader.DiscardInput();
  queue.clear();
  parse_blocked = false;
}

// In a selected folder NOOP is the client's way to ask for news.
void Session::Impl::CmdNoop(Command& c) {
  if (!Arity(c, 0, 0, "NOOP")) return;
  if (!view) return Ok("NOOP completed");
  Sync([this] { Ok("NOOP completed"); });
}

void Session::Impl::CmdCheck(Command& c) {
  if (!Arity(c, 0, 0, "CHECK")) return;
  Sync([this] { Ok("CHECK completed"); });
}

void Session::Impl::CmdLogout(Command& c) {
  if (!Arity(c, 0, 0, "LOGOUT")) return;
  Untagged("BYE Logging out");
  Ok("LOGOUT completed");
  closed = true;
  state = State::kLogout;
}

// RFC 2971: the client's parameters are NIL or a list of string/nstring
// pairs; they are checked, not kept.
void Session::Impl::CmdId(Command& c) {
  if (!Arity(c, 1, 1, "ID (\"name\" \"value\" ...) | NIL")) return;
  const Token& t = c.args[0];
  if (!t.IsNil()) {
    bool ok = t.kind == Token::Kind::kList && t.items.size() % 2 == 0 && t.items.size() <= 60;
    for (size_t i = 0; ok && i < t.items.size(); ++i) {
      ok = t.items[i].is_string() || (i % 2 == 1 && t.items[i].IsNil());
    }
    if (!ok) return Bad("Syntax: ID (\"name\" \"value\" ...) | NIL");
  }
  std::string id = "ID (\"name\" ";
  AppendString(&id, info.implementation);
  id += " \"version\" ";
  AppendString(&id, info.version);
  id += ")";
  Untagged(id);
  Ok("ID completed");
}

// Nothing this server supports needs enabling (RFC 5161 §3.1: an unknown
// capability is ignored).
void Session::Impl::CmdEnable(Command& c) {
  if (c.args.empty()) return Bad("Syntax: ENABLE capability ...");
  for (const Token& t : c.args) {
    if (t.kind != Token::Kind::kAtom) return Bad("Syntax: ENABLE capability ...");
  }
  Untagged("ENABLED");
  Ok("ENABLE completed");
}

// One personal namespace, no prefix, "/" as the hierarchy delimiter.
void Session::Impl::CmdNamespace(Command& c) {
  if (!Arity(c, 0, 0, "NAMESPACE")) return;
  Untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
  Ok("NAMESPACE completed");
}

}  // namespace porcupine::imap
