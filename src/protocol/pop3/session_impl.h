// Internal state of pop3::Session, shared by the files that implement it:
//   session.cc              lifecycle, the Next() loop, replies, error accounting
//   session_commands.cc     the command table, dispatch, CAPA, NOOP, QUIT
//   session_auth.cc         AUTHORIZATION: USER, PASS, AUTH PLAIN, the Login result
//   session_transaction.cc  TRANSACTION: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, Commit
// Not part of the contract; include only from those files and tests.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/common/command_gate.h"
#include "protocol/common/line_reader.h"
#include "protocol/pop3/session.h"

namespace porcupine::pop3 {

// RFC 1939 §3 states. UPDATE is the Commit request sent at QUIT.
enum class State { kAuthorization, kTransaction };

enum class Phase {
  kCommand,       // reading command lines
  kSaslResponse,  // reading the client's answer to a "+ " continuation (RFC 5034)
  kAwaiting,      // a request is out; only Complete() moves on
  kStartTls,      // STLS accepted: kStartTls goes out, then OnTlsStarted/Failed
  kTls,           // the handshake is running
  kClosed,        // every further Next() returns kClose
};

// What the outstanding request was, to interpret its Response.
enum class Awaiting { kNothing, kLogin, kRetrieve, kCommit, kSasl };

// The mechanism a kSaslResponse line is for.
enum class Sasl { kPlain, kScram, kScramFinal };

using PendingLine = protocol::HeldLine;

// One message of the session's snapshot; its number is its index + 1.
struct Message {
  std::string uid;
  uint64_t size = 0;
  bool deleted = false;  // marked by DELE, unmarked by RSET
};

// The maildrop as listed at login, with running totals of what is not marked.
struct Maildrop {
  std::vector<Message> messages;
  size_t live_count = 0;
  uint64_t live_octets = 0;
  void Mark(size_t index);  // REQUIRES: index is in range and not marked
  void UnmarkAll();
  // The running totals match the messages (checked in debug builds).
  bool Consistent() const;
};

// The arguments of one command line.
struct Args {
  std::string_view rest;                // after the keyword and one space, untouched
  std::vector<std::string_view> words;  // `rest` split at spaces (empty for raw commands)
};

struct Session::Impl {
  Impl(const Limits& l, SessionInfo i);

  // --- session.cc
  Step Next();
  void Complete(Response response);
  std::optional<Step> PullLine();
  void Execute(const PendingLine& line);
  void Ok(std::string_view text);
  void Err(std::string_view text);
  // A reply to a bad command or failed login: counts an error, and at the
  // hard limit answers "too many errors" instead and closes.
  void Error(std::string_view text);
  void CloseOk(std::string_view text);
  void CloseErr(std::string_view text);
  void Request(Awaiting what, pop3::Request request);
  std::string SigningOff() const;

  // --- session_commands.cc
  using Handler = void (Impl::*)(const Args& args);
  enum CommandFlags : unsigned {
    kInAuthorization = 1u << 0,  // allowed in the AUTHORIZATION state
    kInTransaction = 1u << 1,    // allowed in the TRANSACTION state
    kRaw = 1u << 2,              // the handler parses `rest` itself (PASS)
  };
  // One row of the command table: the data that drives Dispatch().
  struct CommandSpec {
    std::string_view name;
    Handler handler;
    unsigned flags;
    size_t min_args;
    size_t max_args;
    size_t max_arg_len;
    std::string_view usage;  // for "-ERR syntax: ..."
  };
  static const CommandSpec* FindCommand(std::string_view verb);
  void Dispatch(std::string_view line);
  bool Allowed(const CommandSpec& spec) const;
  void CmdCapa(const Args& args);
  void CmdNoop(const Args& args);
  void CmdQuit(const Args& args);
  void CmdStls(const Args& args);
  bool OffersStls() const { return transport.tls_available && !transport.secure; }

  // --- session_auth.cc
  void CmdUser(const Args& args);
  bool RefuseCleartext();
  void CmdPass(const Args& args);
  void CmdAuth(const Args& args);
  void SaslResponse(std::string_view line);
  void FinishPlain(std::string_view base64);
  void CompleteLogin(LoginResult* result);
  void StartScram(std::string_view base64, bool first);
  void CompleteSasl(protocol::SaslReply* reply);

  // --- session_transaction.cc
  // Parses a message-number argument. Replies -ERR and returns nullopt when
  // it is not a number, names no message, or names a marked one.
  std::optional<size_t> LookupMessage(std::string_view arg);
  std::string MaildropSummary() const;
  void CmdStat(const Args& args);
  void CmdList(const Args& args);
  void CmdUidl(const Args& args);
  void CmdRetr(const Args& args);
  void CmdTop(const Args& args);
  void CmdDele(const Args& args);
  void CmdRset(const Args& args);
  void QuitTransaction();
  void CompleteRetrieve(RetrieveResult* result);
  void CompleteCommit(const Status* status);

  const Limits limits;
  const SessionInfo info;
  protocol::Transport transport;  // info.transport, secure after STLS
  protocol::LineReader reader;
  std::string out;
  Counters counters;

  State state = State::kAuthorization;
  Phase phase = Phase::kCommand;
  bool eof = false;
  bool shutting_down = false;
  protocol::CommandGate gate;  // holds a read line across a tarpit pause
  uint64_t commands = 0;
  int errors = 0;

  std::optional<std::string> user_given;  // USER accepted, waiting for PASS
  std::string login_user;                 // the user of the outstanding Login
  std::string user;                       // authenticated user (TRANSACTION)
  Sasl sasl = Sasl::kPlain;               // what a kSaslResponse line is for
  bool scram_first = false;               // the next SCRAM response starts the exchange
  std::string scram_user;                 // SCRAM succeeded as this user
  Maildrop maildrop;

  Awaiting awaiting = Awaiting::kNothing;
  std::optional<pop3::Request> outgoing;  // set until Next() hands it out
  std::optional<uint64_t> top_lines;      // the outstanding Retrieve is for TOP
  size_t retrieve_index = 0;              // the message the Retrieve is for
  size_t commit_count = 0;                // messages in the outstanding Commit
};

}  // namespace porcupine::pop3
