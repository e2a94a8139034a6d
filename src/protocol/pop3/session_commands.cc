// The POP3 command table, dispatch, and the commands valid in every state.
#include <string>

#include "protocol/pop3/command.h"
#include "protocol/pop3/reply.h"
#include "protocol/pop3/session_impl.h"

namespace porcupine::pop3 {

const Session::Impl::CommandSpec* Session::Impl::FindCommand(std::string_view verb) {
  constexpr unsigned kAuth = kInAuthorization;
  constexpr unsigned kTrans = kInTransaction;
  constexpr unsigned kBoth = kInAuthorization | kInTransaction;
  // AUTH takes a mechanism and a base64 initial response bounded only by
  // the line limit.
  constexpr size_t kUnbounded = SIZE_MAX;
  static constexpr CommandSpec kCommands[] = {
      {"CAPA", &Impl::CmdCapa, kBoth, 0, 0, 0, "CAPA"},
      {"QUIT", &Impl::CmdQuit, kBoth, 0, 0, 0, "QUIT"},
      {"NOOP", &Impl::CmdNoop, kTrans, 0, 0, 0, "NOOP"},
      {"USER", &Impl::CmdUser, kAuth, 1, 1, kMaxUserName, "USER name"},
      {"PASS", &Impl::CmdPass, kAuth | kRaw, 0, 0, 0, "PASS password"},
      {"AUTH", &Impl::CmdAuth, kAuth, 0, 2, kUnbounded, "AUTH [mechanism [initial-response]]"},
      {"STAT", &Impl::CmdStat, kTrans, 0, 0, 0, "STAT"},
      {"LIST", &Impl::CmdList, kTrans, 0, 1, kMaxArgument, "LIST [msg]"},
      {"UIDL", &Impl::CmdUidl, kTrans, 0, 1, kMaxArgument, "UIDL [msg]"},
      {"RETR", &Impl::CmdRetr, kTrans, 1, 1, kMaxArgument, "RETR msg"},
      {"TOP", &Impl::CmdTop, kTrans, 2, 2, kMaxArgument, "TOP msg lines"},
      {"DELE", &Impl::CmdDele, kTrans, 1, 1, kMaxArgument, "DELE msg"},
      {"RSET", &Impl::CmdRset, kTrans, 0, 0, 0, "RSET"},
      {"STLS", &Impl::CmdStls, kAuth, 0, 0, 0, "STLS"},
  };
  for (const CommandSpec& c : kCommands) {
    if (EqualsIgnoreCase(c.name, verb)) return &c;
  }
  return nullptr;
}

bool Session::Impl::Allowed(const CommandSpec& spec) const {
  unsigned need = state == State::kAuthorization ? kInAuthorization : kInTransaction;
  return (spec.flags & need) != 0;
}

void Session::Impl::Dispatch(std::string_view line) {
  CommandLine cmd = SplitCommand(line);
  const CommandSpec* spec = FindCommand(cmd.verb);
  if (spec == nullptr) return Error("unknown command");
  if (!Allowed(*spec)) return Error("command not valid in this state");
  Args args{cmd.rest, {}};
  if ((spec->flags & kRaw) == 0) {
    args.words = SplitArgs(cmd.rest);
    bool bad = args.words.size() < spec->min_args || args.words.size() > spec->max_args;
    for (std::string_view w : args.words) bad = bad || w.size() > spec->max_arg_len;
    if (bad) return Error("syntax: " + std::string(spec->usage));
  }
  (this->*spec->handler)(args);
}

// RFC 2449 §5. USER and SASL only make sense before login (§6.8: a server
// may change its capabilities after it); USER and PLAIN only where cleartext
// logins are allowed (RFC 2595 §4: hidden until STLS).
void Session::Impl::CmdCapa(const Args&) {
  const bool cleartext = state == State::kAuthorization && transport.CleartextAuthAllowed();
  Ok("Capability list follows");
  AppendListLine(&out, "TOP");
  AppendListLine(&out, "UIDL");
  if (cleartext) AppendListLine(&out, "USER");
  AppendListLine(&out, "RESP-CODES");
  AppendListLine(&out, "PIPELINING");
  AppendListLine(&out, "AUTH-RESP-CODE");
  if (cleartext) AppendListLine(&out, "SASL SCRAM-SHA-256 PLAIN");
  if (state == State::kAuthorization && OffersStls()) AppendListLine(&out, "STLS");
  AppendListLine(&out, "IMPLEMENTATION " + info.implementation);
  AppendTerminator(&out);
}

void Session::Impl::CmdNoop(const Args&) { Ok(""); }

// RFC 2595 §4. The +OK goes out in plaintext; what the client pipelined
// after STLS is dropped with the reader's buffer, never executed over TLS
// (CVE-2011-0411).
void Session::Impl::CmdStls(const Args&) {
  if (transport.secure) return Error("command not permitted when TLS active");
  if (!transport.tls_available) return Error("unknown command");
  Ok("Begin TLS negotiation");
  reader.Clear();
  gate.Reset();
  phase = Phase::kStartTls;
}

void Session::Impl::CmdQuit(const Args&) {
  if (state == State::kTransaction) return QuitTransaction();
  CloseOk(SigningOff());
}

}  // namespace porcupine::pop3
