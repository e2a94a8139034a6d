// Generated test messages: valid RFC 5322 headers (From, To, Subject, Date,
// Message-ID) and a plain-text body of lines no longer than 78 characters,
// emitted directly in SMTP DATA form (CRLF line ends, dot-stuffed, ending with
// the ".\r\n" terminator) so a message is built in one pass.
//
// Thread-safety: a MessageFactory is immutable after construction and can be
// shared by every session.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "bench/sampling.h"

namespace porcupine::bench {

// Longest body and header line the generator writes, excluding CRLF
// (RFC 5322 §2.1.1 "SHOULD be no more than 78").
inline constexpr size_t kMaxLineChars = 78;

struct MessageSpec {
  std::string from;             // envelope and From: address
  std::vector<std::string> to;  // To: addresses, at least one
  std::string message_id;       // without angle brackets, unique per message
  std::time_t date = 0;         // Date: header (UTC)
  // Target size of the unstuffed message (headers + body, CRLF line ends).
  // The message is never smaller than its headers plus one body line.
  uint64_t size = 0;
};

class MessageFactory {
 public:
  // Builds the shared pool of body text; the text is a function of pool_seed.
  explicit MessageFactory(uint64_t pool_seed);

  // Appends the DATA payload of the message (dot-stuffed, ending with
  // ".\r\n") to *out and returns the message's unstuffed size (ActualSize).
  // The body starts at a random place in the pool.
  uint64_t AppendData(const MessageSpec& spec, Rng& rng, std::string* out) const;

  // The unstuffed size of the message AppendData builds for `spec`: spec.size,
  // or more when the headers alone are larger.
  uint64_t ActualSize(const MessageSpec& spec) const;

 private:
  std::vector<std::string> lines_;  // each with CRLF, unstuffed
};

// "Mon, 2 Jun 2025 12:00:00 +0000" (RFC 5322 §3.3), in UTC.
std::string FormatDate(std::time_t t);

// A Message-ID unique across runs (the nonce) and within a run (the counters):
// "<nonce>.<worker>.<session>.<seq>@<domain>", without angle brackets.
std::string MakeMessageId(std::string_view nonce, uint32_t worker, uint32_t session, uint64_t seq,
                          std::string_view domain);

// A fresh run nonce: hex of the wall clock, pid and OS randomness.
std::string MakeRunNonce();

// Dot-stuffs `message` (lines starting with '.' get another '.'), converts
// bare LF to CRLF and appends the terminator: the DATA payload of RFC 5321
// §4.5.2. Used by tests and for messages not built by MessageFactory.
std::string DotStuff(std::string_view message);

}  // namespace porcupine::bench
