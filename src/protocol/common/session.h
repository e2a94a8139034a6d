// The shape shared by every protocol session engine.
//
// A session is a pure state machine: the network driver feeds it client
// bytes and end-of-input, and pulls Steps from it. A step says what the
// session needs next: more input, a backend request answered (the driver
// performs it and calls the session's Complete(...)), a pause (tarpit), a TLS
// handshake (STARTTLS), or the end of the connection. Reply bytes accumulate
// in an output buffer that the driver drains with TakeOutput() before acting
// on a step. Sessions never touch sockets, clocks, files or the cluster.
//
// TLS (STARTTLS, STLS): the session queues its "go ahead" reply, drops every
// client byte it has buffered (plaintext pipelined behind the command must
// never be executed once the connection is secure: CVE-2011-0411) and
// returns kStartTls. The driver flushes the reply, performs the server
// handshake on the same connection and calls the session's OnTlsStarted()
// (the connection is now secure; the session forgets what the client said
// before, as RFC 3207 / 3501 / 2595 require) or OnTlsFailed() (the session
// closes: nothing more can be said on that connection).
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace porcupine::protocol {

template <typename Request>
struct Step {
  enum class Kind {
    kNeedInput,  // feed more bytes (or OnEof / OnIdleTimeout)
    kRequest,    // perform `request`, then call the session's Complete(...)
    kDelay,      // wait `delay` before pulling the next step (tarpit)
    kClose,      // flush output, then close the connection
    kStartTls,   // flush output, perform the TLS handshake, then call OnTlsStarted/OnTlsFailed
  };
  Kind kind = Kind::kNeedInput;
  std::optional<Request> request;      // set for kRequest
  std::chrono::milliseconds delay{0};  // set for kDelay

  static Step NeedInput() { return {}; }
  static Step Close() { return {Kind::kClose, std::nullopt, {}}; }
  static Step Delay(std::chrono::milliseconds d) { return {Kind::kDelay, std::nullopt, d}; }
  static Step Do(Request r) { return {Kind::kRequest, std::move(r), {}}; }
  static Step StartTls() { return {Kind::kStartTls, std::nullopt, {}}; }
};

// What the driver knows about the connection that a session's rules depend
// on (which capabilities to offer, which login mechanisms to allow).
struct Transport {
  // The connection is encrypted: an implicit-TLS listener (RFC 8314), or
  // after a STARTTLS handshake (the session sets it in OnTlsStarted).
  bool secure = false;
  // The driver can start TLS on this connection (the node has a
  // certificate): STARTTLS / STLS are offered while the connection is not
  // secure, and refused when this is false.
  bool tls_available = false;
  // The client connects from a loopback address (127.0.0.0/8, ::1).
  bool peer_loopback = false;
  // [auth] allow_plaintext_without_tls: cleartext password mechanisms are
  // allowed on any connection (for a network the operator trusts).
  bool plaintext_auth_anywhere = false;

  // Whether a cleartext password mechanism (IMAP LOGIN and AUTHENTICATE
  // PLAIN, POP3 USER/PASS and AUTH PLAIN, SMTP AUTH PLAIN/LOGIN) may be
  // used: the connection is secure, the peer is loopback (nothing crosses a
  // network), or the operator allowed it everywhere. Where it may not, the
  // engines neither offer nor accept those mechanisms (docs/security.md).
  bool CleartextAuthAllowed() const { return secure || peer_loopback || plaintext_auth_anywhere; }
};

}  // namespace porcupine::protocol
