// Internal state of outbound::Client (client.h). client.cc holds the
// connection part (greeting, EHLO/HELO, STARTTLS, AUTH, failures, QUIT),
// client_message.cc the mail transaction.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "outbound/client.h"
#include "outbound/data_encoder.h"

namespace porcupine::outbound {

// RFC 3463 codes of the outcomes we decide without a reply.
inline constexpr EnhancedCode kBadConnection{4, 4, 2};      // lost, timed out
inline constexpr EnhancedCode kProtocolError{4, 5, 0};      // garbage, out of turn
inline constexpr EnhancedCode kEncryptionNeeded{4, 7, 10};  // RFC 5248 X.7.10
inline constexpr EnhancedCode kAuthUnavailable{4, 7, 0};
inline constexpr EnhancedCode kTooBig{5, 3, 4};
inline constexpr EnhancedCode kConversionNeeded{5, 6, 3};
inline constexpr EnhancedCode kUtf8Needed{5, 6, 7};
inline constexpr EnhancedCode kBadRecipientSyntax{5, 1, 3};
inline constexpr EnhancedCode kBadSenderSyntax{5, 1, 7};

// The outcome a server reply gives: accepted (2xx), temporary (4xx),
// permanent (5xx). REQUIRES: reply class 2, 4 or 5.
Outcome FromReply(const Reply& reply, Stage stage);
// An outcome decided here, without a reply.
Outcome Decided(Outcome::Kind kind, Stage stage, EnhancedCode status, std::string text);
// Whether an address may be put between "<" and ">" on a command line.
bool SafeAddress(std::string_view address);

// (Outside Impl: clang wants nested structs with member initializers complete
// before Impl is.)
// A reply we wait for, in the order the commands went out.
struct PendingReply {
  Stage stage = Stage::kConnect;
  size_t index = 0;  // kRcpt: the recipient
};
// The message in progress.
struct Transaction {
  Envelope envelope;
  std::vector<std::optional<Outcome>> outcomes;  // per recipient; nullopt: undecided
  std::vector<size_t> to_send;                   // recipients with a sendable address
  size_t next_rcpt = 0;                          // into to_send (not pipelined)
  size_t accepted = 0;
  std::optional<Outcome> mail_failure;  // MAIL refused (pipelined: replies still coming)
  bool pipelined = false;
  bool lone_dot = false;  // 354 came with nobody to deliver to: "." sent, reply ignored
  DataEncoder encoder;
};

struct Client::Impl {
  enum class Phase {
    kActive,    // commands sent, replies expected (see `expect`)
    kTls,       // waiting for the driver's handshake
    kReady,     // between messages
    kBody,      // the driver streams the body
    kQuitting,  // QUIT sent
    kClosed,
  };
  using Expect = PendingReply;
  using Txn = Transaction;

  explicit Impl(ClientOptions o) : options(std::move(o)), parser(options.reply_limits) {}

  // client.cc
  Step NextStep();
  void Dispatch(const Expect& e, const Reply& reply);
  // Queues a command line; its reply is awaited as `e`. Fails the connection
  // when the server has sent bytes nobody asked for (it is out of step).
  void Send(std::string_view line, Expect e);
  void SendHello(bool ehlo);
  void AfterHello();
  void OnGreeting(const Reply& r);
  void OnHello(const Reply& r);
  void OnStartTls(const Reply& r);
  void OnAuth(const Reply& r);
  // Ends the connection for `why`: undecided recipients of the message in
  // progress take it; QUIT is sent when the dialogue is still in step.
  void Fail(Outcome why, bool quit);
  void ProtocolError(Stage stage, std::string detail);
  void LostConnection(std::string why);
  std::chrono::milliseconds ReplyTimeout(Stage stage) const;

  // client_message.cc
  void Start(Envelope envelope);
  bool DecideLocally();
  void SendMailGroup();
  void SendNextRcpt();
  void OnMail(const Reply& r);
  void OnRcpt(size_t index, const Reply& r);
  void OnData(const Reply& r);
  void OnDataEnd(const Reply& r);
  void OnRset(const Reply& r);
  // Gives every undecided recipient `o`.
  void DecideRest(const Outcome& o);
  // The message is over: its result is stored and the engine is ready.
  void FinishTxn();
  std::string MailCommand() const;

  ClientOptions options;
  ReplyParser parser;
  Phase phase = Phase::kActive;
  std::deque<Expect> expect{{Stage::kConnect, 0}};
  std::string output;
  bool body_in_output = false;  // output holds body bytes: data_block timeout
  Extensions ext;
  bool sent_ehlo = false;  // the hello in flight is EHLO (not HELO)
  bool used_helo = false;
  bool secure = false;
  bool tls_tried = false;
  bool authenticated = false;
  bool need_rset = false;  // the last transaction ended before the final "."
  std::optional<Txn> txn;
  std::optional<MessageResult> result;
  std::optional<Outcome> failure;
};

}  // namespace porcupine::outbound
