// The SMTP command table and one handler per command (RFC 5321 §4.1.1).
#include <algorithm>
#include <utility>

#include "protocol/smtp/command.h"
#include "protocol/smtp/session_impl.h"

namespace porcupine::smtp {
namespace {

// A HELO/EHLO argument goes into the Received: header, so only printable
// ASCII without spaces is taken (a domain or an address literal).
bool IsValidHeloName(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool ContainsIgnoreCase(const std::vector<std::string>& list, std::string_view s) {
  return std::any_of(list.begin(), list.end(),
                     [&](const std::string& x) { return EqualsIgnoreCase(x, s); });
}

}  // namespace

// BDAT is not advertised; it answers 502 and counts as an error, like any
// command the server does not offer (STARTTLS when the connection cannot
// have TLS, AUTH on the smtp listener).
const Session::Impl::CommandSpec* Session::Impl::FindCommand(std::string_view verb) {
  static constexpr CommandSpec kCommands[] = {
      {"EHLO", &Impl::CmdEhlo, 0},           {"HELO", &Impl::CmdHelo, 0},
      {"MAIL", &Impl::CmdMail, 0},           {"RCPT", &Impl::CmdRcpt, 0},
      {"DATA", &Impl::CmdData, kNoArgs},     {"RSET", &Impl::CmdRset, kNoArgs},
      {"NOOP", &Impl::CmdNoop, 0},  // RFC 5321: NOOP [ SP String ]
      {"QUIT", &Impl::CmdQuit, kNoArgs},     {"VRFY", &Impl::CmdVrfy, 0},
      {"EXPN", &Impl::CmdExpn, 0},           {"HELP", &Impl::CmdHelp, 0},
      {"STARTTLS", &Impl::CmdStartTls, 0},   {"AUTH", &Impl::CmdAuth, 0},
      {"BDAT", &Impl::CmdNotImplemented, 0}, {"TURN", &Impl::CmdNotImplemented, 0},
  };
  for (const CommandSpec& c : kCommands) {
    if (EqualsIgnoreCase(c.name, verb)) return &c;
  }
  return nullptr;
}

void Session::Impl::Dispatch(std::string_view verb, std::string_view args) {
  const CommandSpec* spec = FindCommand(verb);
  if (spec == nullptr) {
    Error(500, "5.5.2", "Error: command not recognized");
  } else if ((spec->flags & kNoArgs) && !args.empty()) {
    Error(501, "5.5.4", "Syntax: " + std::string(spec->name) + " takes no arguments");
  } else {
    (this->*spec->handler)(args);
  }
}

bool Session::Impl::AcceptGreeting(std::string_view args, std::string_view verb) {
  if (!IsValidHeloName(args)) {
    Error(501, "5.5.4", "Syntax: " + std::string(verb) + " hostname");
    return false;
  }
  // RFC 5321 §4.1.4: HELO/EHLO in a session resets the transaction.
  ResetTransaction();
  helo_name = std::string(args);
  return true;
}

void Session::Impl::CmdHelo(std::string_view args) {
  if (!AcceptGreeting(args, "HELO")) return;
  greeting = Greeting::kHelo;
  Reply(250, "", info.server_hostname);
}

void Session::Impl::CmdEhlo(std::string_view args) {
  if (!AcceptGreeting(args, "EHLO")) return;
  greeting = Greeting::kEhlo;
  std::vector<std::string> lines = {info.server_hostname,
                                    "PIPELINING",
                                    "SIZE " + std::to_string(limits.max_message_bytes),
                                    "8BITMIME",
                                    "ENHANCEDSTATUSCODES",
                                    "SMTPUTF8"};
  if (OffersStartTls()) lines.push_back("STARTTLS");
  if (OffersAuth()) lines.push_back("AUTH SCRAM-SHA-256 PLAIN LOGIN");
  ReplyLines(250, lines);
}

// RFC 3207. The reply goes out in plaintext; whatever the client sent after
// the command line is dropped with the reader's buffer, never executed over
// TLS (CVE-2011-0411); bytes still in flight reach the TLS layer, where they
// fail the handshake.
void Session::Impl::CmdStartTls(std::string_view args) {
  if (!transport.tls_available && !transport.secure) return CmdNotImplemented(args);
  if (!args.empty()) return Error(501, "5.5.4", "Syntax: STARTTLS takes no arguments");
  if (transport.secure) return Error(503, "5.5.1", "Error: TLS already active");
  if (txn.active) return Error(503, "5.5.1", "Error: MAIL transaction in progress");
  Reply(220, "2.0.0", "Ready to start TLS");
  reader.Clear();
  gate.Reset();
  phase = Phase::kStartTls;
}

void Session::Impl::CmdMail(std::string_view args) {
  if (greeting == Greeting::kNone) return Error(503, "5.5.1", "Error: send HELO/EHLO first");
  if (txn.active) return Error(503, "5.5.1", "Error: nested MAIL command");
  // RFC 6409 §4.3: a submission server accepts mail from authenticated
  // users only.
  if (info.submission && auth.user.empty()) {
    return Error(530, "5.7.0", "Authentication required");
  }
  MailParse parsed = ParseMailArgs(args);
  if (auto* err = std::get_if<ArgError>(&parsed)) {
    switch (err->kind) {
      case ArgError::Kind::kSyntax:
        return Error(501, "5.5.4", "Syntax: MAIL FROM:<address>");
      case ArgError::Kind::kPath:
        return Error(501, "5.1.7", "Bad sender address syntax");
      case ArgError::Kind::kParamSyntax:
        return Error(501, "5.5.4", "Bad parameter: " + err->param);
      case ArgError::Kind::kParamUnsupported:
        return Error(555, "5.5.4", "Unsupported parameter: " + err->param);
    }
  }
  MailArgs& mail = std::get<MailArgs>(parsed);
  if (mail.path.non_ascii && !mail.smtputf8) {
    return Error(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
  }
  if (mail.size && *mail.size > limits.max_message_bytes) {
    return Reply(552, "5.3.4", "Message size exceeds fixed limit");
  }
  if (!SenderAllowed(mail.path.mailbox)) {
    return Error(
        553, "5.7.1",
        "<" + mail.path.mailbox + ">: Sender address rejected: not owned by user " + auth.user);
  }
  txn.active = true;
  txn.reverse_path = std::move(mail.path.mailbox);
  txn.smtputf8 = mail.smtputf8;
  txn.eight_bit_mime = mail.body == BodyType::k8BitMime;
  Reply(250, "2.1.0", "Ok");
}

// RFC 6409 §6.1: the submission server may check that the sender is the
// authenticated user; with require_sender_match it must be (aliases, once
// they exist, will count too). The null sender is no user's address.
bool Session::Impl::SenderAllowed(std::string_view reverse_path) const {
  if (!info.submission || !info.require_sender_match) return true;
  return !reverse_path.empty() && EqualsIgnoreCase(reverse_path, auth.user);
}

void Session::Impl::CmdRcpt(std::string_view args) {
  if (!txn.active) return Error(503, "5.5.1", "Error: need MAIL command");
  RcptParse parsed = ParseRcptArgs(args);
  if (auto* err = std::get_if<ArgError>(&parsed)) {
    switch (err->kind) {
      case ArgError::Kind::kSyntax:
        return Error(501, "5.5.4", "Syntax: RCPT TO:<address>");
      case ArgError::Kind::kPath:
        return Error(501, "5.1.3", "Bad recipient address syntax");
      case ArgError::Kind::kParamSyntax:
        return Error(501, "5.5.4", "Bad parameter: " + err->param);
      case ArgError::Kind::kParamUnsupported:
        return Error(555, "5.5.4", "Unsupported parameter: " + err->param);
    }
  }
  Path& path = std::get<RcptArgs>(parsed).path;
  if (path.non_ascii && !txn.smtputf8) {
    return Error(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
  }
  txn.rcpt_seen = true;
  // A repeated recipient would be delivered twice; the backend folds case,
  // so the comparison does too.
  if (ContainsIgnoreCase(txn.recipients, path.mailbox)) return Reply(250, "2.1.5", "Ok");
  if (txn.recipients.size() >= limits.max_recipients) {
    // Not an error: RFC 5321 §4.5.3.1.10 clients send the rest later.
    return Reply(452, "4.5.3", "Error: too many recipients");
  }
  checking_recipient = path.mailbox;
  Request(Awaiting::kRecipient, CheckRecipient{std::move(path.mailbox)});
}

void Session::Impl::CompleteRecipient(RecipientVerdict verdict) {
  std::string mailbox = std::exchange(checking_recipient, std::string());
  std::string who = "<" + mailbox + ">: ";
  switch (verdict) {
    case RecipientVerdict::kAccept:
      txn.recipients.push_back(std::move(mailbox));
      return Reply(250, "2.1.5", "Ok");
    case RecipientVerdict::kUnknownUser:
      return Error(550, "5.1.1", who + "Recipient address rejected: User unknown");
    case RecipientVerdict::kRelayDenied:
      if (info.submission) {
        // An authenticated user may send anywhere (RFC 6409), but the node
        // cannot deliver to other domains yet: a temporary refusal, so that
        // nothing is lost and nothing bounces for good (docs/protocols.md).
        return Reply(451, "4.3.2", who + "Outbound delivery not available yet, try again later");
      }
      return Error(550, "5.7.1", who + "Relay access denied");
    case RecipientVerdict::kTempFail:
      return Reply(451, "4.4.3", who + "Recipient lookup failed, try again later");
  }
}

void Session::Impl::CmdData(std::string_view) {
  if (!txn.active) return Error(503, "5.5.1", "Error: need MAIL command");
  if (!txn.rcpt_seen) return Error(503, "5.5.1", "Error: need RCPT command");
  if (txn.recipients.empty()) {
    // Refused recipients were already counted; resetting makes the client
    // start over with MAIL (RFC 2920 §3.1 clients stop at this reply).
    ResetTransaction();
    return Reply(554, "5.5.1", "Error: no valid recipients");
  }
  Reply(354, "", "End data with <CR><LF>.<CR><LF>");
  BeginData();
}

void Session::Impl::CmdRset(std::string_view) {
  ResetTransaction();
  Reply(250, "2.0.0", "Ok");
}

void Session::Impl::CmdNoop(std::string_view) { Reply(250, "2.0.0", "Ok"); }

void Session::Impl::CmdQuit(std::string_view) { CloseWith(221, "2.0.0", "Bye"); }

void Session::Impl::CmdVrfy(std::string_view args) {
  if (args.empty()) return Error(501, "5.5.4", "Syntax: VRFY address");
  // RFC 5321 §3.5.3: never confirm (no address harvesting), never deny.
  Reply(252, "2.1.5", "Cannot VRFY user, but will accept message and attempt delivery");
}

void Session::Impl::CmdExpn(std::string_view) { Error(502, "5.5.1", "Error: EXPN not supported"); }

void Session::Impl::CmdHelp(std::string_view) {
  Reply(214, "2.0.0",
        info.submission ? "Commands: EHLO HELO AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"
                        : "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
}

void Session::Impl::CmdNotImplemented(std::string_view) {
  Error(502, "5.5.1", "Error: command not implemented");
}

}  // namespace porcupine::smtp
