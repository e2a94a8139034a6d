// Internal state of smtp::Session, shared by the files that implement it:
//   session.cc          lifecycle, the Next() loop, replies, error accounting
//   session_commands.cc the command table and one handler per command
//   session_data.cc     DATA: reading, unstuffing, limits, the Deliver request
//   session_auth.cc     AUTH: the SASL exchange, the Login request
// Not part of the contract; include only from those files and tests.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/common/command_gate.h"
#include "protocol/common/line_reader.h"
#include "protocol/smtp/session.h"

namespace porcupine::smtp {

enum class Phase {
  kCommand,   // reading command lines
  kData,      // reading the DATA payload
  kAwaiting,  // a request is out; only Complete() moves on
  kStartTls,  // STARTTLS accepted: kStartTls goes out, then OnTlsStarted/Failed
  kTls,       // the handshake is running; only OnTlsStarted/Failed moves on
  kClosed,    // every further Next() returns kClose
};

enum class Greeting { kNone, kHelo, kEhlo };

// The mail transaction: MAIL .. RCPT* .. DATA (RFC 5321 §3.3).
struct Transaction {
  bool active = false;  // MAIL accepted
  std::string reverse_path;
  bool smtputf8 = false;
  bool eight_bit_mime = false;
  bool rcpt_seen = false;  // some RCPT was answered (accepted or not)
  std::vector<std::string> recipients;
};

// The DATA payload being received.
struct DataState {
  std::string message;         // trace headers + unstuffed lines
  MemoryReservation held;      // message.capacity(), of SessionInfo::data_budget
  size_t header_bytes = 0;     // the trace headers at the start of message
  std::string id;              // queue id, in Received: and the 250 reply
  uint64_t payload_bytes = 0;  // unstuffed payload so far, CRLFs included
  bool line_too_long = false;  // some line exceeded max_data_line
  bool too_big = false;        // payload exceeded max_message_bytes
  bool bare_cr = false;        // some line held a CR not followed by LF
  bool nul = false;            // some line held a NUL byte
  bool no_memory = false;      // the budget could not take a larger buffer
  bool Discarding() const { return line_too_long || too_big || bare_cr || nul || no_memory; }
};

using PendingLine = protocol::HeldLine;

// The octets a line took on the wire, its terminator included.
inline size_t WireLength(const PendingLine& line) {
  return line.text.size() + (line.bare_lf ? 1 : 2);
}

// What the outstanding request was, to interpret its Response.
enum class Awaiting { kNothing, kRecipient, kLogin, kSasl, kDelivery };

// The SASL mechanisms of AUTH.
// kScramFinal: SCRAM succeeded, the server's final message went out as a
// 334, and the client's (empty) response completes the exchange.
enum class SaslMechanism { kNone, kPlain, kLogin, kScram, kScramFinal };

// AUTH: the exchange in progress and its outcome.
struct AuthState {
  // Set while the session waits for the client's next response line (after
  // a 334); that line is a SASL response, not a command.
  SaslMechanism exchange = SaslMechanism::kNone;
  std::string login_user;    // AUTH LOGIN: the user name, until the password comes
  std::string user;          // the authenticated address; empty before 235
  bool scram_first = false;  // the next SCRAM response starts the exchange
  std::string scram_user;    // SCRAM succeeded as this user, 235 still to come
};

struct Session::Impl {
  Impl(const Limits& l, SessionInfo i);

  // --- session.cc
  Step Next();
  void Complete(Response response);
  std::optional<Step> PullCommand();
  void Execute(const PendingLine& line);
  // The longest `line` may be: max_auth_line for AUTH, else max_command_line.
  size_t LineLimit(const PendingLine& line) const;
  void Reply(int code, std::string_view enhanced, std::string_view text);
  void ReplyLines(int code, const std::vector<std::string>& lines);
  // A reply to a bad command or refused recipient: counts an error and
  // closes with 421 once the hard limit is reached.
  void Error(int code, std::string_view enhanced, std::string_view text);
  void CloseWith(int code, std::string_view enhanced, std::string_view text);
  void Request(Awaiting what, smtp::Request request);
  void ResetTransaction();
  // The reader's line limit between DATA phases: long enough for AUTH lines;
  // Execute() holds every other command to max_command_line.
  size_t CommandReaderLimit() const {
    return std::max(limits.max_command_line, limits.max_auth_line);
  }

  // --- session_commands.cc (one handler per verb; args trimmed)
  using Handler = void (Impl::*)(std::string_view args);
  enum CommandFlags : unsigned {
    kNoArgs = 1u << 0,  // arguments are a syntax error (501)
  };
  // One row of the command table: the data that drives Dispatch().
  struct CommandSpec {
    std::string_view name;
    Handler handler;
    unsigned flags;
  };
  static const CommandSpec* FindCommand(std::string_view verb);
  void Dispatch(std::string_view verb, std::string_view args);
  void CmdHelo(std::string_view args);
  void CmdEhlo(std::string_view args);
  void CmdMail(std::string_view args);
  void CmdRcpt(std::string_view args);
  void CmdData(std::string_view args);
  void CmdRset(std::string_view args);
  void CmdNoop(std::string_view args);
  void CmdQuit(std::string_view args);
  void CmdVrfy(std::string_view args);
  void CmdExpn(std::string_view args);
  void CmdHelp(std::string_view args);
  void CmdNotImplemented(std::string_view args);
  void CmdStartTls(std::string_view args);
  bool OffersStartTls() const { return transport.tls_available && !transport.secure; }
  void CompleteRecipient(RecipientVerdict verdict);
  bool SenderAllowed(std::string_view reverse_path) const;

  // --- session_auth.cc
  void CmdAuth(std::string_view args);
  bool OffersAuth() const { return info.submission && transport.CleartextAuthAllowed(); }
  void SaslResponse(const PendingLine& line);
  void SaslStep(SaslMechanism mechanism, std::string_view base64);
  void ExpectResponse(SaslMechanism mechanism, std::string_view challenge);
  void StartLogin(std::string user, std::string password);
  void CompleteLogin(LoginResult* result);
  void ScramResponse(std::string_view line, bool first);
  void CompleteSasl(protocol::SaslReply* reply);
  bool AcceptGreeting(std::string_view args, std::string_view verb);

  // --- session_data.cc
  void BeginData();
  std::optional<Step> PullData();
  void NoteSpoiled(const protocol::Line& line);
  void AppendDataLine(std::string_view text);
  bool HoldData(size_t needed);
  void DropData();
  void EndData();
  void CompleteDelivery(const Status& status);

  const Limits limits;
  const SessionInfo info;
  protocol::Transport transport;  // info.transport, secure after STARTTLS
  protocol::LineReader reader;
  std::string out;
  Counters counters;

  Phase phase = Phase::kCommand;
  bool eof = false;
  bool shutting_down = false;
  protocol::CommandGate gate;  // holds a read line across a tarpit pause
  uint64_t commands = 0;
  int errors = 0;
  uint64_t transactions = 0;  // DATA attempts, numbers queue ids

  Greeting greeting = Greeting::kNone;
  std::string helo_name;
  Transaction txn;
  AuthState auth;
  DataState data;
  // The reservation of the message handed out in a Deliver request: the
  // backend holds its bytes until it answers.
  MemoryReservation delivering;

  Awaiting awaiting = Awaiting::kNothing;
  std::optional<smtp::Request> outgoing;  // set until Next() hands it out
  std::string checking_recipient;         // the RCPT being checked
};

}  // namespace porcupine::smtp
