// SMTP receiver session (RFC 5321 + ESMTP PIPELINING, SIZE, 8BITMIME,
// ENHANCEDSTATUSCODES, SMTPUTF8, STARTTLS): a pure state machine, see
// protocol/common/session.h for how a driver runs it.
//
// STARTTLS (RFC 3207): advertised in EHLO while the transport has TLS
// available and is not secure yet. "220 2.0.0 Ready to start TLS", then
// every buffered client byte is dropped and Next() returns kStartTls. After
// OnTlsStarted() the session is back at its start (no HELO/EHLO, no
// transaction): the client must say EHLO again, whose reply no longer offers
// STARTTLS. Refused: with arguments (501 5.5.4), inside a mail transaction
// (503 5.5.1), when already secure (503 5.5.1), when TLS is not available
// (502 5.5.1, as before TLS existed); each is a counted error.
//
// The session does not know users or domains: it asks the backend through
// requests (CheckRecipient, Login, Deliver) and turns the answers into
// replies.
//
// AUTH (RFC 4954), on submission listeners only (SessionInfo::submission; on
// the smtp listener AUTH is 502 and not advertised): mechanisms
// SCRAM-SHA-256, PLAIN and LOGIN, each with or without an initial response
// ("=" is an empty one), a 334 continuation otherwise; "*" cancels (501
// 5.0.0). SCRAM's responses go to the backend as SaslStep requests; its
// final server message is a last 334 whose empty response gets the 235. Offered in EHLO and
// accepted only where Transport::CleartextAuthAllowed() (TLS, a loopback
// peer, or allowed by configuration), else 538 5.7.11. The credentials go out
// in a Login request: OK → 235 2.7.0; PermissionDenied/NotFound → 535 5.7.8;
// ResourceExhausted (the login throttle) → 454 4.7.0 (counted); other errors
// → 454 4.7.0. Refused: before EHLO, after a successful AUTH, inside a mail
// transaction (503 5.5.1), an unknown mechanism (504 5.5.4), bad base64
// (501 5.5.2), a malformed PLAIN message (501 5.5.2), an authzid that is not
// the user (535 5.7.8), a response line over max_auth_line (500 5.5.6). An
// AUTH command line may be up to max_auth_line long (RFC 4954 §4: 12288
// octets, for initial responses); a longer one, or any other command line
// over max_command_line, gets 500 5.5.2 "line too long" and the session goes on.
//
// Submission (RFC 6409), on submission listeners: MAIL before AUTH is 530
// 5.7.0; with SessionInfo::require_sender_match the reverse path must be
// the authenticated address (the null sender too), else 553 5.7.1; a
// recipient in a domain that is not local (kRelayDenied) gets 451 4.3.2
// "outbound delivery not available yet" (not an error: nothing is lost, a
// client or relay retries once outbound delivery exists) where the smtp
// listener answers 550 5.7.1. Received: says ESMTPA/ESMTPSA (UTF8SMTPA/SA)
// and "(authenticated as <user>)"; never anything of the password.
//
// Files: command.h (command-line and MAIL/RCPT argument parsing), path.h
// (address syntax), reply.h, received.h, session_impl.h (internal state);
// session.cc / session_commands.cc / session_data.cc implement this class.
//
// Error accounting: replies to bad commands (500/501/502/503/555/553), to
// refused recipients (550 5.1.1, 550 5.7.1) and to spoiled DATA (overlong
// line, bare CR, NUL) count as errors. 452 "too many recipients", 552 "too big",
// 452 "insufficient system storage" and temporary failures do not: they are
// not the client misbehaving.
//
// Memory: a message being received is held in one buffer whose capacity is
// reserved, before it grows, against the node-wide SessionInfo::data_budget;
// a message whose buffer cannot grow is read to its end, discarded and
// refused with 452 4.3.1 (the client retries later), and its reservation is
// given back. A delivered message's reservation is kept until its Deliver
// request is answered (the backend holds the bytes until then).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/memory_budget.h"
#include "core/status.h"
#include "protocol/common/sasl.h"
#include "protocol/common/session.h"

namespace porcupine::smtp {

// Every SMTP limit, named and defaulted (docs/config.md lists them).
struct Limits {
  // Largest accepted message (DATA payload after unstuffing); advertised in SIZE.
  uint64_t max_message_bytes = 50ull << 20;
  // Longest command line including CRLF (RFC 5321 §4.5.3.1.4 says 512).
  size_t max_command_line = 512;
  // Longest AUTH command line and SASL response line, CRLF included (RFC
  // 4954 §4: 12288); every other command line stays at max_command_line.
  size_t max_auth_line = 12288;
  // Longest line inside DATA including CRLF (RFC: 1000; we are lenient).
  size_t max_data_line = 64 * 1024;
  // Recipients per transaction (RFC 5321 §4.5.3.1.8: at least 100).
  size_t max_recipients = 100;
  // Errors (5xx/4xx replies to bad commands or refused recipients) before
  // each reply is delayed by `tarpit_delay` ...
  int soft_error_limit = 10;
  std::chrono::milliseconds tarpit_delay{1000};
  // ... and before the session is closed with 421.
  int hard_error_limit = 20;
  // Commands accepted in one session (counts every command line).
  uint64_t max_commands = 100000;
};

// Fixed facts about one connection, set by the driver.
struct SessionInfo {
  std::string server_hostname = "localhost";  // in the greeting, EHLO, Received:
  std::string peer_ip;                        // in Received:
  // Unique in the cluster (queue_id.h); the session's queue ids are
  // "<session_id>.<n>", in the 250 reply after DATA and in Received:.
  std::string session_id;
  // RFC 5322 date-time for the Received: header, filled by the driver so the
  // session stays clock-free; Deliver requests carry it.
  std::string (*now_rfc5322)() = nullptr;
  // The node's budget for the buffers of messages being received, shared by
  // every SMTP and IMAP session (limits.message_memory_bytes); must outlive
  // the session. nullptr: nothing but max_message_bytes limits a message.
  MemoryBudget* data_budget = nullptr;
  // Whether the connection is (or can become) secure, and the peer loopback.
  protocol::Transport transport;
  // A submission listener (RFC 6409: 587, 465): AUTH is offered and
  // required, and the submission rules apply (above).
  bool submission = false;
  // [submission] require_sender_match: MAIL FROM must be the authenticated
  // address (553 5.7.1 otherwise). Only on submission listeners.
  bool require_sender_match = true;
};

// Request: is this forward-path deliverable here?
struct CheckRecipient {
  std::string address;  // the mailbox from RCPT TO:<...>, as sent (local@domain)
};

enum class RecipientVerdict {
  kAccept,       // 250 2.1.5
  kUnknownUser,  // 550 5.1.1
  kRelayDenied,  // domain not local: 550 5.7.1
  kTempFail,     // manager unreachable etc.: 451 4.4.3
};

// Request: store this message for these recipients (all already accepted).
struct Deliver {
  std::string reverse_path;             // MAIL FROM (may be empty: <>)
  std::vector<std::string> recipients;  // accepted forward-paths, in order
  // Return-Path: and Received: headers (received.h) + unstuffed DATA, CRLF
  // line ends, always ending in CRLF (an empty DATA gives just the headers).
  // At most max_message_bytes of DATA.
  std::string message;
  bool smtputf8 = false;
  bool eight_bit_mime = false;
};

// Request: check these credentials (AUTH PLAIN or LOGIN). The password is
// the client's; the session wipes its own copies.
struct Login {
  std::string user;
  std::string password;
};

// SCRAM-SHA-256: the exchange's state lives in the backend (protocol/common/
// sasl.h); the session forwards each client response as a SaslStep.
using Request = std::variant<CheckRecipient, Login, Deliver, protocol::SaslStep>;
using Step = protocol::Step<Request>;

// Answers, one per request kind. For Deliver: OK → 250; Unavailable or any
// other error → 451 4.3.0 (the client retries); ResourceExhausted → 452 4.3.1.
// For Login: the canonical address of the user, or an error (above).
using LoginResult = Result<std::string>;
using Response = std::variant<RecipientVerdict, Status, LoginResult, protocol::SaslReply>;

class Session {
 public:
  Session(const Limits& limits, SessionInfo info);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Queues the 220 greeting. Call once, first.
  void Start();
  // Appends client bytes. Ignored once the session has closed.
  void Feed(std::string_view bytes);
  // The client closed its side. Complete lines already fed are still
  // processed; when the session next needs input it closes without a reply
  // (a partial message is dropped).
  void OnEof();
  // No input within the idle timeout: queues 421 4.4.2 and closes. Ignored
  // while a request is outstanding (a slow backend is not the client's fault).
  void OnIdleTimeout();
  // The node is shutting down: queues 421 4.3.2 and closes at once, dropping
  // a partially received message; with a request outstanding, Complete()
  // first queues that request's reply, then the 421.
  void OnShutdown();

  // Advances as far as buffered input allows; see protocol/common/session.h.
  // All buffered (pipelined) commands are answered before kNeedInput. Above
  // soft_error_limit, each command is preceded by a kDelay step. After
  // kClose every call returns kClose.
  Step Next();
  // The TLS handshake the last kStartTls step asked for succeeded: the
  // connection is secure and the session starts over (RFC 3207 §4.2).
  // REQUIRES: the last Next() returned kStartTls.
  void OnTlsStarted();
  // It failed: the session closes without a reply (the connection is in an
  // unknown TLS state). REQUIRES: the last Next() returned kStartTls.
  void OnTlsFailed();
  // The connection as the session sees it now (secure after OnTlsStarted).
  const protocol::Transport& transport() const;
  bool submission() const;
  // The address AUTH authenticated; empty before (and after STARTTLS).
  const std::string& authenticated_user() const;

  // Answers the request of the last kRequest step. RecipientVerdict for
  // CheckRecipient, LoginResult for Login, Status for Deliver; a successful Deliver is answered
  // "250 2.0.0 Ok: queued as <session_id>.<n>" (n counts DATA transactions).
  // REQUIRES: the last Next() returned kRequest; response type matches it
  // (a mismatch asserts in debug builds and is treated as a temporary
  // failure in release builds).
  void Complete(Response response);

  // Reply bytes produced so far; the driver writes them out.
  std::string TakeOutput();
  bool HasOutput() const;

  // Cumulative counters for metrics: replies by first digit (2..5), errors.
  struct Counters {
    uint64_t replies[6] = {};
    uint64_t errors = 0;
  };
  const Counters& counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace porcupine::smtp
