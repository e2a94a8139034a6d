#include "bench/worker.h"

#include <exception>

#include "bench/reader.h"
#include "bench/sender.h"

namespace porcupine::bench {
namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
// How often sleeping sessions and the supervisor look at the clock, so an
// early end (SIGINT) is noticed promptly.
constexpr auto kTick = std::chrono::milliseconds(50);

uint64_t Mix(uint64_t x) {  // SplitMix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

bool LoginLeases::TryAcquire(uint32_t user) {
  std::lock_guard<std::mutex> lock(mu_);
  return held_.insert(user).second;
}

void LoginLeases::Release(uint32_t user) {
  std::lock_guard<std::mutex> lock(mu_);
  held_.erase(user);
}

Duration SessionEnv::timeout() const {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(plan().opts.timeout_s));
}

void SessionEnv::Count(const Fault& fault) const {
  if (stopping()) return;
  stats->errors[static_cast<size_t>(fault.kind)].fetch_add(1, std::memory_order_relaxed);
  stats->errors_total.fetch_add(1, std::memory_order_relaxed);
  shared->samples->Add(fault);
}

void SessionEnv::Record(Op op, TimePoint start, TimePoint end) const {
  if (!clock().InWindow(end)) return;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(end - start).count();
  stats->latency[static_cast<size_t>(op)].Record(us < 0 ? 0 : static_cast<uint64_t>(us));
}

uint64_t SessionSeed(uint64_t seed, uint64_t kind, uint64_t id) {
  return Mix(Mix(seed) ^ Mix(kind << 32 | id));
}

asio::awaitable<bool> SleepUntil(const SessionEnv& env, TimePoint t) {
  asio::steady_timer timer(env.ex);
  while (true) {
    TimePoint now = SteadyClock::now();
    if (env.clock().Ended(now)) co_return false;
    if (now >= t) co_return true;
    timer.expires_at(std::min(t, now + kTick));
    co_await timer.async_wait(kTuple);
  }
}

Worker::Worker(const Shared& shared, uint32_t index, uint32_t workers)
    : shared_(shared), index_(index), workers_(workers) {
  const BenchOptions& o = shared.plan->opts;
  if (o.rate > 0) {
    // Each worker schedules its share of the rate; merged Poisson processes
    // are again Poisson with the summed rate.
    uint32_t senders = 0;
    for (uint32_t id = index; id < static_cast<uint32_t>(o.sessions); id += workers) ++senders;
    double share = o.rate * senders / o.sessions;
    if (share > 0) schedule_.emplace(share, /*poisson=*/true, SessionSeed(o.seed, 3, index));
  }
}

asio::awaitable<void> Worker::Session(bool sender, uint32_t id) {
  SessionEnv env{
      &shared_, io_.get_executor(), &registry_, &stats_, schedule_ ? &*schedule_ : nullptr, index_};
  try {
    if (sender) {
      co_await RunSender(env, id);
    } else {
      co_await RunReader(env, id);
    }
  } catch (const std::exception& e) {
    // Sessions report failures as Faults; an exception is a bug or resource
    // exhaustion. Record it rather than lose the session silently.
    shared_.samples->Add(Fault{ErrorKind::kProtocol, std::string("internal: ") + e.what()});
    stats_.errors[static_cast<size_t>(ErrorKind::kProtocol)].fetch_add(1);
    stats_.errors_total.fetch_add(1);
  }
  --live_;
}

asio::awaitable<void> Worker::Supervise() {
  asio::steady_timer timer(io_);
  while (live_ > 0) {
    if (SteadyClock::now() >= shared_.clock->hard_stop() && !registry_.closing()) {
      registry_.CloseAll();
    }
    timer.expires_after(kTick);
    co_await timer.async_wait(kTuple);
  }
}

void Worker::Run() {
  const Plan& plan = *shared_.plan;
  for (uint32_t id = index_; id < static_cast<uint32_t>(plan.opts.sessions); id += workers_) {
    ++live_;
    asio::co_spawn(io_, Session(true, id), asio::detached);
  }
  for (uint32_t id = index_; id < static_cast<uint32_t>(plan.readers); id += workers_) {
    ++live_;
    asio::co_spawn(io_, Session(false, id), asio::detached);
  }
  asio::co_spawn(io_, Supervise(), asio::detached);
  io_.run();
  done_ = true;
}

}  // namespace porcupine::bench
