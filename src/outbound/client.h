// The SMTP client protocol engine (RFC 5321 client side, with PIPELINING,
// SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS and AUTH PLAIN):
// one connection to one server, delivering one or more messages over it.
//
// A pure state machine, like the server engines (protocol/common/session.h,
// DESIGN.md §9): it never touches a socket, a clock, DNS or the queue. Its
// driver connects, then loops:
//
//   for (;;) switch (Step s = c.Next(); s.kind) {
//     case kSend:     write c.TakeOutput() within s.timeout; break;
//     case kReceive:  read within s.timeout: c.Feed(bytes), or c.OnTimeout(),
//                     or c.OnConnectionLost(why) (EOF, reset); break;
//     case kStartTls: TLS client handshake within s.timeout, then
//                     c.OnTlsStarted() or c.OnTlsFailed(why); break;
//     case kNeedBody: c.AddBody(next chunk of the message), or c.EndBody()
//                     after the last one; break;
//     case kReady:    take c.TakeResult() if any; then c.StartMessage(next)
//                     or c.Quit(); break;
//     case kClose:    take c.TakeResult() if any; close; done.
//   }
//
// The dialogue: greeting (220; anything else fails the connection) → EHLO
// (5xx: HELO instead, without extensions) → STARTTLS when the server offers
// it and the policy allows, then EHLO again over TLS → AUTH PLAIN when
// credentials are configured → kReady. Per message: MAIL FROM (SIZE= when
// offered, BODY=8BITMIME for an 8-bit message, SMTPUTF8 when the message
// needs it) → RCPT TO each recipient → DATA → the body, dot-stuffed, with
// every line end made CRLF → the reply to the final "." → kReady, with the
// message's result (one outcome per recipient). With PIPELINING, MAIL, the
// RCPTs and DATA go out in one write and their replies are read in order
// (RFC 2920 §3.1): when no recipient was accepted but the server still
// answers DATA with 354, a lone "." is sent and its reply ignored; without
// PIPELINING, DATA is not sent at all when no recipient was accepted.
// A transaction that ended before the final "." reply (MAIL, DATA refused,
// no recipient) is followed by RSET before the next MAIL. Quit() sends QUIT.
//
// Choices (docs/outbound.md, "SMTP client"):
// - An 8-bit message to a server without 8BITMIME is refused before MAIL, as
//   a permanent failure 554 5.6.3 per recipient (RFC 6152 §3 allows bounce or
//   conversion). Converting to quoted-printable needs the whole MIME tree,
//   rewrites bodies after DKIM signed them, and servers without 8BITMIME
//   have all but vanished.
// - A message that needs SMTPUTF8 to a server without it: permanent failure
//   553 5.6.7 (RFC 6531 §3.4; no downgrade).
// - A message larger than the server's SIZE: permanent failure 552 5.3.4
//   before MAIL (RFC 1870 §6.1).
// - STARTTLS: kOpportunistic uses it when offered and carries on in clear
//   text when the server refuses the command; a failed handshake fails the
//   connection (the driver may retry in clear text). kRequired fails the
//   connection (temporary, 4.7.10) when it is not offered or refused.
// - AUTH PLAIN (RFC 4954 with initial response) only over TLS unless the
//   options allow clear text; not offered, refused or not allowed: the
//   connection fails as temporary (a smarthost misconfiguration must not
//   bounce mail).
// - Addresses with CR, LF, other control bytes, "<" or ">" are never sent
//   (command injection): such a recipient fails permanently (5.1.3), such a
//   sender fails the whole message (5.1.7).
//
// Failures: a 421 reply at any point, a reply that cannot be parsed or is
// too long, a reply that does not fit the command (354 to MAIL), bytes from
// the server when none are expected, a timeout and a lost connection all end
// the connection at once (no QUIT) and give every undecided recipient of the
// message in progress a temporary failure. A lost connection or timeout
// after the final "." leaves the outcome unknown (the server may have taken
// the message): it is reported as temporary with that said in the text; a
// retry may then duplicate the message (RFC 5321 §4.5.3.2.6, RFC 1047).
//
// Thread-safety: none; one engine per connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outbound/extensions.h"
#include "outbound/reply.h"

namespace porcupine::outbound {

// How long to wait for each reply (RFC 5321 §4.5.3.2); the engine takes no
// clock, it says which applies to the wait at hand (Step::timeout).
struct ClientTimeouts {
  std::chrono::milliseconds initial{std::chrono::minutes(5)};     // the 220 greeting
  std::chrono::milliseconds mail{std::chrono::minutes(5)};        // reply to MAIL
  std::chrono::milliseconds rcpt{std::chrono::minutes(5)};        // reply to each RCPT
  std::chrono::milliseconds data_init{std::chrono::minutes(2)};   // the 354 to DATA
  std::chrono::milliseconds data_block{std::chrono::minutes(3)};  // each write of the body
  std::chrono::milliseconds data_term{std::chrono::minutes(10)};  // reply to the final "."
  // EHLO, HELO, STARTTLS (and its handshake), AUTH, RSET, QUIT and writes of
  // commands: RFC 5321 names none; 5 minutes as Postfix's smtp_helo_timeout.
  std::chrono::milliseconds command{std::chrono::minutes(5)};
};

enum class TlsPolicy {
  kNone,           // never STARTTLS (a policy for a known-broken peer)
  kOpportunistic,  // STARTTLS when offered (RFC 7435); clear text otherwise
  kRequired,       // STARTTLS or nothing: a temporary failure when missing
};

struct ClientOptions {
  // The name we give in EHLO/HELO: the node's public host name. REQUIRES: no
  // CR, LF or spaces.
  std::string helo_name = "localhost";
  TlsPolicy tls = TlsPolicy::kOpportunistic;
  // The connection is already encrypted (implicit TLS, a smarthost on 465):
  // no STARTTLS; kRequired is satisfied.
  bool implicit_tls = false;
  // Credentials for AUTH PLAIN (a smarthost); empty user: no AUTH.
  std::string auth_user;
  std::string auth_password;
  // Send AUTH PLAIN without TLS (a smarthost on loopback or a trusted link).
  bool auth_without_tls = false;
  // Use PIPELINING when offered.
  bool pipelining = true;
  ReplyLimits reply_limits;
  ClientTimeouts timeouts;
};

// One message to deliver.
struct Envelope {
  std::string reverse_path;             // MAIL FROM:<...>; empty for the null sender
  std::vector<std::string> recipients;  // RCPT TO:<...>, in order
  // The message's size in bytes as it will be sent (CRLF line ends, before
  // dot-stuffing): SIZE= on MAIL and the check against the server's SIZE.
  uint64_t size = 0;
  bool eight_bit = false;  // the body has 8-bit bytes (BODY=8BITMIME, RFC 6152)
  bool smtputf8 = false;   // addresses or headers need SMTPUTF8 (RFC 6531)
};

// Where in the dialogue an outcome was decided.
enum class Stage {
  kConnect,   // the greeting, or the connection before any message
  kHelo,      // EHLO / HELO
  kStartTls,  // the STARTTLS command or its handshake
  kAuth,
  kMail,
  kRcpt,
  kData,     // the DATA command
  kDataEnd,  // the reply to the final "."
  kRset,
  kQuit,
  kLocal,  // decided here without asking the server (size, 8-bit, syntax)
};
std::string_view StageName(Stage stage);  // "RCPT TO", "end of data", ...

struct Outcome {
  enum class Kind { kAccepted, kTemporary, kPermanent };
  Kind kind = Kind::kTemporary;
  Stage stage = Stage::kConnect;
  // The server's reply that decided it; nullopt when none did (a lost
  // connection, a local refusal).
  std::optional<Reply> reply;
  // RFC 3463 status for a DSN's Status: field: the reply's enhanced code,
  // class.0.0 from its basic code, or ours when there was no reply.
  EnhancedCode status;
  // In words, for a DSN and the logs: "550 5.1.1 no such user" as the
  // server said it, or our own reason.
  std::string text;
};

struct RecipientResult {
  std::string recipient;
  Outcome outcome;
};

// The outcome of one message: one entry per recipient, in envelope order.
struct MessageResult {
  std::vector<RecipientResult> recipients;
};

class Client {
 public:
  struct Step {
    enum class Kind {
      kSend,      // write TakeOutput() (within timeout), then Next()
      kReceive,   // read (within timeout) and Feed(), OnTimeout() or OnConnectionLost()
      kStartTls,  // TLS client handshake (within timeout), then OnTlsStarted/OnTlsFailed
      kNeedBody,  // AddBody() the next chunk, or EndBody()
      kReady,     // StartMessage() or Quit(); TakeResult() first
      kClose,     // close the connection: the engine is finished
    };
    Kind kind = Kind::kClose;
    std::chrono::milliseconds timeout{0};  // for kSend, kReceive, kStartTls
  };

  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // What the driver should do now. Pure in the sense that calling it twice
  // without other calls returns the same step.
  Step Next();

  // Bytes to write, produced so far (commands and the encoded body).
  std::string TakeOutput();
  bool HasOutput() const;

  // Bytes read from the server. Ignored once closed.
  void Feed(std::string_view bytes);
  // The wait of the last kReceive/kSend step timed out.
  void OnTimeout();
  // The connection broke (EOF, reset, write error): `why` goes into the text.
  void OnConnectionLost(std::string_view why);
  // The handshake the last kStartTls asked for succeeded / failed.
  // REQUIRES: the last Next() returned kStartTls.
  void OnTlsStarted();
  void OnTlsFailed(std::string_view why);

  // Starts a message. An envelope the server cannot take (size, 8-bit,
  // SMTPUTF8, a bad sender) is decided at once: Next() stays kReady and
  // TakeResult() has the result. REQUIRES: the last Next() returned kReady,
  // the previous result was taken, and `envelope` has a recipient.
  void StartMessage(Envelope envelope);
  // Encodes a chunk of the message into the output (data_encoder.h).
  // REQUIRES: the last Next() returned kNeedBody (or kSend after AddBody).
  void AddBody(std::string_view chunk);
  // The message is complete. REQUIRES: as AddBody.
  void EndBody();
  // No more messages: sends QUIT. REQUIRES: the last Next() returned kReady.
  void Quit();

  // The result of the last message, once it is decided (at kReady or
  // kClose), and only once.
  std::optional<MessageResult> TakeResult();
  // Why the connection ended before its time (a failed greeting, EHLO,
  // STARTTLS or AUTH; a lost connection or protocol error at any point);
  // nullopt while it is fine or after a clean QUIT. Messages not yet started
  // on this connection take this outcome (or try another server).
  const std::optional<Outcome>& connection_failure() const;

  // What the server announced (after the last EHLO), whether TLS is on,
  // whether HELO had to be used.
  const Extensions& extensions() const;
  bool secure() const;
  bool used_helo() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace porcupine::outbound
