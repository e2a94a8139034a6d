// The node's login throttle (core/login_throttle.h) for every protocol that
// checks a password (POP3, IMAP, and SMTP AUTH through MailService::
// Authenticate): the throttle decides, this wraps it with a lock, the clock,
// asio timers for the delays and counters for the metrics. Per node: counts
// are not shared across the cluster (docs/security.md).
//
// Thread-safe.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "core/login_throttle.h"
#include "core/status.h"

namespace porcupine::mail {

class LoginGate {
 public:
  struct Stats {
    uint64_t failures = 0;         // failed password checks
    uint64_t delayed = 0;          // answers held back
    uint64_t refused_address = 0;  // logins refused: the client address is locked
    uint64_t refused_account = 0;  // logins refused: the account is locked
    LoginThrottle::Stats tables;
  };

  // now_ms: a monotonic clock in milliseconds (the throttle's time).
  LoginGate(const LoginThrottleOptions& options, std::function<int64_t()> now_ms);

  // Before checking a password of `account` from `client` (net::ClientKey):
  // OK, or ResourceExhausted ("too many failed logins") when the address or
  // the account is locked; the password must then not be checked.
  Status Admit(const std::string& client, const std::string& account);
  // After the check (`success`: the password was right): waits out the
  // throttle's delay on the caller's executor without blocking a thread, then
  // OK, or ResourceExhausted when the address or account was locked meanwhile
  // (the check's result must then not be revealed).
  asio::awaitable<Status> Finish(std::string client, std::string account, bool success);

  Stats stats() const;

 private:
  Status Refused(LoginThrottle::Scope by, int64_t retry_after_ms);

  std::function<int64_t()> now_ms_;
  mutable std::mutex mu_;
  LoginThrottle throttle_;  // guarded by mu_
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> delayed_{0};
  std::atomic<uint64_t> refused_address_{0};
  std::atomic<uint64_t> refused_account_{0};
};

}  // namespace porcupine::mail
