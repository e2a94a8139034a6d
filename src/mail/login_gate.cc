#include "mail/login_gate.h"

#include <fmt/format.h>

namespace porcupine::mail {

LoginGate::LoginGate(const LoginThrottleOptions& options, std::function<int64_t()> now_ms)
    : now_ms_(std::move(now_ms)), throttle_(options) {}

Status LoginGate::Refused(LoginThrottle::Scope by, int64_t retry_after_ms) {
  ++(by == LoginThrottle::Scope::kAccount ? refused_account_ : refused_address_);
  // The wait is no secret: whoever keeps trying learns it anyway.
  const int64_t s = (retry_after_ms + 999) / 1000;
  return Status::ResourceExhausted(s > 0
                                       ? fmt::format("too many failed logins, try again in {} s", s)
                                       : std::string("too many failed logins, try again later"));
}

Status LoginGate::Admit(const std::string& client, const std::string& account) {
  LoginThrottle::Admission a;
  {
    std::lock_guard lock(mu_);
    a = throttle_.Admit(client, account, now_ms_());
  }
  return a.refused ? Refused(a.by, a.retry_after_ms) : Status::Ok();
}

asio::awaitable<Status> LoginGate::Finish(std::string client, std::string account, bool success) {
  LoginThrottle::Verdict v;
  {
    std::lock_guard lock(mu_);
    v = throttle_.Finish(client, account, success, now_ms_());
  }
  if (!success) ++failures_;
  if (v.refused) co_return Refused(v.by, 0);
  if (v.delay_ms > 0) {
    ++delayed_;
    asio::steady_timer timer(co_await asio::this_coro::executor,
                             std::chrono::milliseconds(v.delay_ms));
    asio::error_code ignored;  // cancelled only when the loop stops
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  co_return Status::Ok();
}

LoginGate::Stats LoginGate::stats() const {
  Stats s;
  s.failures = failures_.load();
  s.delayed = delayed_.load();
  s.refused_address = refused_address_.load();
  s.refused_account = refused_account_.load();
  std::lock_guard lock(mu_);
  s.tables = throttle_.stats();
  return s;
}

}  // namespace porcupine::mail
