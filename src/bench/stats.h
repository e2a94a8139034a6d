// What a run counts: errors by kind, latency per operation, and the per-worker
// counters the progress line and the report read.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/histogram.h"

namespace porcupine::bench {

enum class ErrorKind : int {
  kConnect,     // TCP connect failed or the greeting was not 2xx / +OK
  kTimeout,     // an operation exceeded --timeout
  kDisconnect,  // the server closed or reset the connection mid-dialogue
  kProtocol,    // a malformed or unexpected reply
  kSmtp4xx,     // a transient SMTP refusal (MAIL, RCPT, DATA, end of data)
  kSmtp5xx,     // a permanent SMTP refusal
  kPop3Err,     // a POP3 -ERR (login, STAT, LIST, RETR, DELE, QUIT)
};
inline constexpr size_t kErrorKindCount = 7;
// "connect", "timeout", "disconnect", "protocol", "smtp_4xx", "smtp_5xx", "pop3_err".
std::string_view ErrorKindName(ErrorKind kind);

// Why an exchange failed; the kind is what the report counts.
struct Fault {
  ErrorKind kind;
  std::string detail;  // for the error samples, e.g. the server's reply
};
// nullopt: the exchange succeeded.
using MaybeFault = std::optional<Fault>;

enum class Op : int {
  kSmtpConnect,  // TCP connect + greeting + EHLO (+ STARTTLS, handshake, EHLO)
  kSmtpDeliver,  // MAIL to the 250 after the final dot (open loop: from the scheduled start)
  kPop3Session,  // connect to the +OK to QUIT, for sessions that completed
  kPop3Retr,     // RETR sent to the last byte of the message
};
inline constexpr size_t kOpCount = 4;
// "smtp_connect", "smtp_deliver", "pop3_session", "pop3_retr".
std::string_view OpName(Op op);

// One worker thread's numbers. The atomics may be read by the progress
// thread at any time (relaxed); the histograms belong to the worker thread
// until it has joined.
struct WorkerStats {
  // Whole run (warmup, window and drain), for the progress line.
  std::atomic<uint64_t> delivered_total{0};
  std::atomic<uint64_t> retrieved_total{0};
  std::atomic<uint64_t> errors_total{0};
  // Completed inside the measured window.
  std::atomic<uint64_t> delivered{0};        // messages acknowledged with 250 after DATA
  std::atomic<uint64_t> recipients{0};       // accepted recipients of those messages
  std::atomic<uint64_t> bytes_sent{0};       // unstuffed message bytes of those messages
  std::atomic<uint64_t> retrieved{0};        // messages RETRieved and DELEted, QUIT +OK
  std::atomic<uint64_t> bytes_retrieved{0};  // their bytes
  std::atomic<uint64_t> late_starts{0};      // open loop: starts > 1 s behind schedule
  // Whole run, except failures the bench itself caused by stopping.
  std::array<std::atomic<uint64_t>, kErrorKindCount> errors{};
  // Operations completed inside the measured window, in microseconds.
  std::array<Histogram, kOpCount> latency;
};

// The first few distinct faults of a run, to show operators what went wrong.
// Thread-safe.
class ErrorSamples {
 public:
  explicit ErrorSamples(size_t max) : max_(max) {}
  void Add(const Fault& fault);
  std::vector<std::string> Take() const;

 private:
  size_t max_;
  mutable std::mutex mu_;
  std::vector<std::string> samples_;  // guarded by mu_
};

}  // namespace porcupine::bench
