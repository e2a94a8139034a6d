// POP3 server session (RFC 1939, RFC 2449 CAPA/RESP-CODES/PIPELINING,
// RFC 5034 AUTH PLAIN, RFC 2595 STLS): a pure state machine, see
// protocol/common/session.h.
//
// States AUTHORIZATION → TRANSACTION → UPDATE. DELE only marks; the marked
// messages are removed by a Commit request at QUIT, and the +OK to QUIT is
// sent only after the Commit succeeded (durably). A session that ends any
// other way (EOF, idle timeout, shutdown, too many errors) removes nothing.
//
// Replies, in brief (the golden transcripts in testdata/ show every one):
//   greeting          +OK <hostname> POP3 ready
//   USER name         +OK send PASS (whether or not the user exists)
//   PASS / AUTH       Login request; +OK maildrop has N messages (M octets),
//                     -ERR [AUTH] invalid credentials (PermissionDenied, NotFound),
//                     -ERR [SYS/TEMP] too many failed logins, try again later
//                     (ResourceExhausted: the login throttle; a counted error),
//                     -ERR [SYS/TEMP] ... (any other error)
//   AUTH PLAIN        initial response on the line ("=" for empty) or after "+ ";
//                     "*" cancels; authzid must be empty or equal the authcid
//   AUTH SCRAM-SHA-256 each response a SaslStep request; challenges as "+ ";
//                     the server's final message a last "+ " whose empty
//                     response makes an OpenMaildrop request (then as Login)
//   STAT LIST UIDL    from the snapshot taken at login; marked messages are invisible
//   RETR n            Retrieve request; "+OK <listed size> octets" and the
//                     dot-stuffed message (every line CRLF-terminated)
//   TOP n k           Retrieve request; header, blank line, k body lines
//   DELE n / RSET     mark / unmark; "-ERR message n already deleted"
//   QUIT              Commit request if anything is marked, then +OK or
//                     "-ERR [SYS/TEMP] some deleted messages not removed"; close
//   STLS              (AUTHORIZATION, offered in CAPA while the transport has
//                     TLS available and is not secure) "+OK Begin TLS
//                     negotiation", buffered input dropped, kStartTls; after
//                     OnTlsStarted() the session is in AUTHORIZATION with
//                     nothing remembered (a USER is forgotten) and CAPA no
//                     longer lists STLS. "-ERR command not permitted when TLS
//                     active" when secure; "unknown command" when TLS is not
//                     available (both counted errors).
//
// Input: commands are case-insensitive; a line ends at CRLF or a bare LF; a
// NUL or a bare CR in a line, an overlong line, an unknown command, a command
// in the wrong state, malformed arguments and failed logins are counted
// errors (see Limits). A well-formed number naming no message, or a marked
// one, is answered -ERR but not counted. Pipelined commands are executed in
// order; each request interrupts the stream until Complete().
//
// Backpressure is the driver's: it should stop reading while a request is
// outstanding and drain TakeOutput() before performing the next request, so
// that neither buffer grows past one command line plus one message.
//
// Thread-safety: none; one session per connection, used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"
#include "protocol/common/sasl.h"
#include "protocol/common/session.h"

namespace porcupine::pop3 {

// Every POP3 limit, named and defaulted (docs/config.md lists them).
struct Limits {
  // Longest command line including CRLF. RFC 2449 says 255; AUTH PLAIN
  // responses can be longer, so we take 1024.
  size_t max_command_line = 1024;
  // Once more than this many errors (bad commands, failed logins) have been
  // counted, every further command line waits tarpit_delay (a kDelay step)
  // before it is executed ...
  int soft_error_limit = 5;
  std::chrono::milliseconds tarpit_delay{1000};
  // ... and the error that reaches this count is answered
  // "-ERR [SYS/PERM] too many errors" (instead of its own -ERR) and closes.
  int hard_error_limit = 10;
  // Command lines (SASL responses included) in one session; the next one is
  // answered "-ERR [SYS/PERM] too many commands" and closes.
  uint64_t max_commands = 100000;
};

struct SessionInfo {
  std::string server_hostname = "localhost";  // in the greeting
  std::string implementation = "porcupine";   // CAPA IMPLEMENTATION
  protocol::Transport transport;              // secure / TLS available / loopback peer
};

// One message of the maildrop as the backend lists it.
struct MessageEntry {
  std::string uid;    // unique-id for UIDL: 1..70 chars in 0x21..0x7E, stable forever,
                      // unique in the listing (asserted in debug builds)
  uint64_t size = 0;  // octets of the stored message (CRLF line ends)
};

// Request: check credentials and list the maildrop (one snapshot for the
// session; the listing's order gives the message numbers 1..N).
struct Login {
  std::string user;
  std::string password;
};
// Request: the whole stored message (unstuffed, CRLF line ends).
struct Retrieve {
  std::string user;
  std::string uid;
};
// Request: remove these messages durably (at QUIT).
struct Commit {
  std::string user;
  std::vector<std::string> uids;
};

// Request: list the maildrop of `user`, whom a SCRAM exchange of this
// connection authenticated (answered like Login).
struct OpenMaildrop {
  std::string user;
};

// protocol::SaslStep: one AUTH SCRAM-SHA-256 response (its state lives in
// the backend) → protocol::SaslReply.
using Request = std::variant<Login, Retrieve, Commit, OpenMaildrop, protocol::SaslStep>;
using Step = protocol::Step<Request>;

// Login → Result<vector<MessageEntry>>: PermissionDenied/NotFound → -ERR [AUTH],
//   ResourceExhausted (throttled) → -ERR [SYS/TEMP] too many failed logins,
//   Unavailable → -ERR [SYS/TEMP]. Retrieve → Result<string>: NotFound → -ERR
//   no such message (it vanished). Commit → Status: error → -ERR [SYS/TEMP].
using LoginResult = Result<std::vector<MessageEntry>>;
using RetrieveResult = Result<std::string>;
using Response = std::variant<LoginResult, RetrieveResult, Status, protocol::SaslReply>;

class Session {
 public:
  Session(const Limits& limits, SessionInfo info);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Start();                       // queues the +OK greeting
  void Feed(std::string_view bytes);  // appends client bytes
  void OnEof();                       // client closed: no UPDATE state (RFC 1939 §6)
  void OnIdleTimeout();               // -ERR and close, no UPDATE
  void OnShutdown();                  // finishes the in-flight request, then closes

  Step Next();
  // REQUIRES: the last Next() returned kRequest; response type matches it.
  void Complete(Response response);
  // The handshake of the last kStartTls step succeeded (the session starts
  // over in AUTHORIZATION, secure) or failed (it closes without a reply).
  // REQUIRES: the last Next() returned kStartTls.
  void OnTlsStarted();
  void OnTlsFailed();
  // The connection as the session sees it now (secure after OnTlsStarted).
  const protocol::Transport& transport() const;

  std::string TakeOutput();
  bool HasOutput() const;

  struct Counters {
    uint64_t ok = 0;      // +OK responses (the greeting included)
    uint64_t err = 0;     // -ERR responses
    uint64_t errors = 0;  // bad commands and failed logins
  };
  const Counters& counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace porcupine::pop3
