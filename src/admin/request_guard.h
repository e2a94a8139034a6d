// Whole-request limits of the admin HTTP server (docs/security.md, "Admin API
// limits"): a deadline for the request head, another for the body, and a
// size for the head. Pure: it sees the bytes the HTTP parser is handed and
// the times the caller passes in; the server (http_server.h) does the I/O.
//
// Why whole-request deadlines: a timeout per read() is no deadline at all. A
// client that sends one header line every 2 s, or one byte per second, makes
// every read succeed and holds its connection (and the thread serving it) for
// as long as it likes. Here the head must be complete `header_timeout` after
// the request began, and the body `body_timeout` after the head, however the
// bytes trickle in.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace porcupine::admin {

// Limits of the admin HTTP server ([admin] keys, docs/config.md).
struct HttpLimits {
  // The request line and headers (and, over HTTPS, the TLS handshake of a new
  // connection) must arrive within this from the request's start.
  std::chrono::seconds header_timeout{10};
  // The body must arrive within this from the end of the head.
  std::chrono::seconds body_timeout{30};
  // The response must be taken by the client within this.
  std::chrono::seconds write_timeout{10};
  // An open connection waits this long for its next request.
  std::chrono::seconds keep_alive_timeout{5};
  // Connections served at once, each on its own thread; more are refused at
  // once (503 over HTTP, closed over HTTPS), never queued.
  size_t max_connections = 128;
  // Connections beyond max_connections kept for health checks: one may serve
  // a single GET of /healthz or /readyz, nothing else (503), so that slow
  // clients holding every ordinary connection do not fail the node's health
  // checks. Beyond these too, a connection is refused at once.
  size_t health_connections = 4;
  // A connection on one of those slots must send its request head within
  // this, else 408 and close (health checkers send at once).
  std::chrono::seconds health_header_timeout{2};
  // Request line plus headers, line ends included.
  size_t max_header_bytes = 8192;
  // Largest body (413 above it).
  size_t max_body_bytes = 1 << 20;
};

// One request on one connection. Not thread-safe (one per connection).
class RequestGuard {
 public:
  using Clock = std::chrono::steady_clock;

  enum class Cut : uint8_t { kNone, kHeaderTimeout, kBodyTimeout, kWriteTimeout, kHeaderSize };

  explicit RequestGuard(const HttpLimits& limits) : limits_(limits) {}

  // A new request begins at `now`: head phase, head deadline from now.
  void Start(Clock::time_point now);

  // The parser is about to be handed data[0..n): returns how many of them it
  // may have. All of them, unless the head would grow past max_header_bytes:
  // then the request is cut (kHeaderSize) and 0 is returned. Notices the end
  // of the head (the empty line: "\n\r\n") and starts the body deadline at `now`.
  size_t Admit(const char* data, size_t n, Clock::time_point now);

  // The deadline of the phase the request is in (head or body).
  Clock::time_point read_deadline() const { return read_deadline_; }
  // The deadline of the response; set by the first call of a request.
  Clock::time_point WriteDeadline(Clock::time_point now);

  // Marks the request cut for reason `why` (the caller saw a deadline pass).
  void CutFor(Cut why) {
    if (cut_ == Cut::kNone) cut_ = why;
  }
  // The read deadline has passed: cuts the request as its phase says.
  void ReadExpired() { CutFor(in_head_ ? Cut::kHeaderTimeout : Cut::kBodyTimeout); }

  Cut cut() const { return cut_; }
  bool in_head() const { return in_head_; }
  size_t head_bytes() const { return head_bytes_; }

 private:
  const HttpLimits& limits_;
  Clock::time_point read_deadline_{};
  Clock::time_point write_deadline_{};
  bool write_started_ = false;
  bool in_head_ = true;
  size_t head_bytes_ = 0;
  int blank_line_state_ = 0;  // 0: mid-line, 1: after "\n", 2: after "\n\r"
  Cut cut_ = Cut::kNone;
};

// "header_timeout", "body_timeout", "write_timeout", "header_size" (metric
// labels); "" for kNone.
const char* CutName(RequestGuard::Cut cut);

}  // namespace porcupine::admin
