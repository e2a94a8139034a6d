// Login throttling (docs/security.md): failed logins are counted per client
// address and per account, so that a node is never a password oracle at line
// rate. Past `failures_before_delay` failures the answers to that address's
// or account's logins are held back, doubling with each failure; the failure
// that reaches `failures_before_lockout` refuses every login of the address
// or account, unchecked, for `lockout`.
//
// The protocol in two calls around each password check:
//   Admit   before the check: refuse now (locked), or go on;
//   Finish  after it: the check's outcome is counted, and the answer either
//           waits `delay_ms` (the same whether the password was right or
//           wrong: an early answer would give the result away) or is refused
//           after all because the address or account was locked meanwhile
//           (by concurrent attempts), right password or not.
//
// A login that succeeded from an address makes that (address, account) pair
// trusted for `trust`: the pair's own logins skip the address's and the
// account's delays and lockouts, so that an attack on an account from
// elsewhere does not lock out its owner's usual client, while the pair's own
// failures, once they reach `failures_before_delay`, end the trust.
// Successes never reset an address's or account's failures (a client with an
// account of its own could otherwise launder its guesses); failures are
// forgotten `forget_after` after the last one. Unknown accounts are counted
// exactly like existing ones (no existence oracle).
//
// Every table is bounded and forgets its least recently failed entry when
// full. Deterministic: time is passed in (milliseconds on a monotonic clock).
// Thread-compatible: the caller serializes access.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/lru_map.h"

namespace porcupine {

// Every limit of the throttle (docs/config.md, [auth]).
struct LoginThrottleOptions {
  // Failures of one address or account after which its answers are delayed.
  int failures_before_delay = 3;
  // The first delay; each further failure doubles it, up to delay_max.
  std::chrono::milliseconds delay_initial{1000};
  std::chrono::milliseconds delay_max{15000};
  // The failure that reaches this count locks the address or account for
  // `lockout`; after it, each further failure (while remembered) locks again.
  int failures_before_lockout = 10;
  std::chrono::seconds lockout{300};
  // Failures are forgotten this long after the last one. REQUIRES: >= lockout.
  std::chrono::seconds forget_after{3600};
  // How long a success trusts its (address, account) pair.
  std::chrono::seconds trust{86400};
  // Table bounds: records kept at most (least recently failed evicted).
  size_t max_addresses = 100000;
  size_t max_accounts = 100000;
  size_t max_trusted = 100000;
};

class LoginThrottle {
 public:
  // What made a login wait or be refused.
  enum class Scope { kNone, kAddress, kAccount };

  struct Admission {
    bool refused = false;
    Scope by = Scope::kNone;
    int64_t retry_after_ms = 0;  // when refused: the lockout left
  };
  struct Verdict {
    bool refused = false;  // locked meanwhile: answer "refused", whatever the check said
    Scope by = Scope::kNone;
    int64_t delay_ms = 0;  // hold the answer this long first (0: answer now)
  };
  struct Stats {
    size_t addresses = 0;  // records held
    size_t accounts = 0;
    size_t trusted = 0;
    uint64_t evicted = 0;  // records forgotten to make room, since start
  };

  explicit LoginThrottle(const LoginThrottleOptions& options);

  // Before checking a password of `account` (the canonical address, or the
  // login as given when it is none) from client `address` (net::ClientKey).
  Admission Admit(const std::string& address, const std::string& account, int64_t now_ms);
  // After the check: `success` is whether the password was right. Every
  // Admit that went on and whose password was checked gets one Finish
  // (an attempt that ended without a check, e.g. the user's manager was
  // unreachable, gets none: it proves nothing).
  Verdict Finish(const std::string& address, const std::string& account, bool success,
                 int64_t now_ms);

  Stats stats() const;

 private:
  struct Record {
    int failures = 0;
    int64_t last_failure_ms = 0;
    int64_t locked_until_ms = 0;
  };
  struct Pair {
    int failures = 0;  // since the last success
    int64_t trusted_until_ms = 0;
  };
  // The record, or null when there is none or its failures are forgotten.
  Record* Live(LruMap<std::string, Record>& table, const std::string& key, int64_t now_ms);
  bool Trusted(const std::string& pair, int64_t now_ms);
  void Charge(LruMap<std::string, Record>& table, const std::string& key, int64_t now_ms);
  int64_t DelayAfter(int failures) const;

  const LoginThrottleOptions options_;
  LruMap<std::string, Record> addresses_;
  LruMap<std::string, Record> accounts_;
  LruMap<std::string, Pair> pairs_;  // key: address NUL account
  uint64_t evicted_ = 0;
};

}  // namespace porcupine
