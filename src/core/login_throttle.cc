#include "core/login_throttle.h"

#include <algorithm>

namespace porcupine {

LoginThrottle::LoginThrottle(const LoginThrottleOptions& options)
    : options_(options),
      addresses_(std::max<size_t>(1, options.max_addresses)),
      accounts_(std::max<size_t>(1, options.max_accounts)),
      pairs_(std::max<size_t>(1, options.max_trusted)) {}

LoginThrottle::Record* LoginThrottle::Live(LruMap<std::string, Record>& table,
                                           const std::string& key, int64_t now_ms) {
  Record* r = table.Find(key);
  if (r == nullptr) return nullptr;
  const int64_t forget_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.forget_after).count();
  if (now_ms >= r->locked_until_ms && now_ms - r->last_failure_ms >= forget_ms) {
    table.Erase(key);
    return nullptr;
  }
  return r;
}

bool LoginThrottle::Trusted(const std::string& pair, int64_t now_ms) {
  Pair* p = pairs_.Find(pair);
  if (p == nullptr) return false;
  if (now_ms >= p->trusted_until_ms) {
    pairs_.Erase(pair);
    return false;
  }
  return p->failures < options_.failures_before_delay;
}

void LoginThrottle::Charge(LruMap<std::string, Record>& table, const std::string& key,
                           int64_t now_ms) {
  // Records are touched only here, so the least recently touched failed
  // longest ago: the forgotten ones go first (forget_after >= lockout).
  const int64_t forget_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.forget_after).count();
  table.EraseOldestWhile([&](const Record& r) { return now_ms - r.last_failure_ms >= forget_ms; });
  const bool known = Live(table, key, now_ms) != nullptr;
  bool evicted = false;
  Record& r = table.Touch(key, &evicted);
  if (!known) r = Record{};
  evicted_ += evicted;
  ++r.failures;
  r.last_failure_ms = now_ms;
  if (r.failures >= options_.failures_before_lockout) {
    r.locked_until_ms =
        now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(options_.lockout).count();
  }
}

int64_t LoginThrottle::DelayAfter(int failures) const {
  if (failures < options_.failures_before_delay) return 0;
  const int64_t max = options_.delay_max.count();
  int64_t d = options_.delay_initial.count();
  for (int i = options_.failures_before_delay; i < failures && d < max; ++i) d *= 2;
  return std::min(d, max);
}

LoginThrottle::Admission LoginThrottle::Admit(const std::string& address,
                                              const std::string& account, int64_t now_ms) {
  if (Trusted(address + '\0' + account, now_ms)) return {};
  Admission a;
  auto check = [&](LruMap<std::string, Record>& table, const std::string& key, Scope scope) {
    Record* r = Live(table, key, now_ms);
    if (r == nullptr || now_ms >= r->locked_until_ms) return;
    if (!a.refused || r->locked_until_ms - now_ms > a.retry_after_ms) {
      a = {true, scope, r->locked_until_ms - now_ms};
    }
  };
  check(addresses_, address, Scope::kAddress);
  check(accounts_, account, Scope::kAccount);
  return a;
}

LoginThrottle::Verdict LoginThrottle::Finish(const std::string& address, const std::string& account,
                                             bool success, int64_t now_ms) {
  const std::string pair = address + '\0' + account;
  Verdict v;
  if (!Trusted(pair, now_ms)) {
    Admission locked = Admit(address, account, now_ms);
    if (locked.refused) {
      v = {true, locked.by, 0};
    } else {
      Record* ra = Live(addresses_, address, now_ms);
      Record* rc = Live(accounts_, account, now_ms);
      const int fa = ra ? ra->failures : 0;
      const int fc = rc ? rc->failures : 0;
      v.delay_ms = DelayAfter(std::max(fa, fc));
      if (v.delay_ms > 0) v.by = fa >= fc ? Scope::kAddress : Scope::kAccount;
    }
  }
  if (!success) {
    Charge(addresses_, address, now_ms);
    Charge(accounts_, account, now_ms);
    if (Pair* p = pairs_.Find(pair);
        p != nullptr && ++p->failures >= options_.failures_before_delay) {
      pairs_.Erase(pair);  // the trust ends
    }
  } else if (!v.refused) {
    pairs_.EraseOldestWhile([&](const Pair& p) { return now_ms >= p.trusted_until_ms; });
    bool evicted = false;
    Pair& p = pairs_.Touch(pair, &evicted);
    evicted_ += evicted;
    p.failures = 0;
    p.trusted_until_ms =
        now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(options_.trust).count();
  }
  return v;
}

LoginThrottle::Stats LoginThrottle::stats() const {
  return {addresses_.size(), accounts_.size(), pairs_.size(), evicted_};
}

}  // namespace porcupine
