// A worker: one io_context on one thread running its share of the sender and
// reader sessions. The workers of a run share a `Shared` (read-only apart
// from its thread-safe members).
#pragma once

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>

#include "bench/conn.h"
#include "bench/message.h"
#include "bench/plan.h"
#include "bench/run_clock.h"
#include "bench/sampling.h"
#include "bench/stats.h"

namespace porcupine::bench {

// The POP3 users being read right now, so two readers of this run never log
// in as the same user at once (they would RETR the same messages and count
// them twice). Thread-safe.
class LoginLeases {
 public:
  bool TryAcquire(uint32_t user);
  void Release(uint32_t user);

 private:
  std::mutex mu_;
  std::unordered_set<uint32_t> held_;  // guarded by mu_
};

// What every worker of a run shares. REQUIRES: outlives the workers.
struct Shared {
  const Plan* plan;
  RunClock* clock;
  LoginLeases* leases;
  ErrorSamples* samples;
  const MessageFactory* factory;
  const SizeSampler* sizes;
  const ZipfSampler* zipf;
};

// What a session coroutine sees of its worker. Single-threaded: only used on
// the worker's thread.
struct SessionEnv {
  const Shared* shared;
  asio::any_io_executor ex;
  ConnRegistry* registry;
  WorkerStats* stats;
  ArrivalSchedule* schedule;  // open loop; null in closed loop
  uint32_t worker;            // index, for Message-IDs

  const Plan& plan() const { return *shared->plan; }
  const RunClock& clock() const { return *shared->clock; }
  Duration timeout() const;
  // Whether the bench is cutting connections (failures now are its own doing).
  bool stopping() const { return registry->closing(); }
  // Counts a failure unless stopping().
  void Count(const Fault& fault) const;
  // Records an operation's latency if it completed inside the window.
  void Record(Op op, TimePoint start, TimePoint end) const;
};

// Suspends until `t`: true when reached, false as soon as the window has
// ended (checked every few tens of milliseconds, so SIGINT is noticed).
asio::awaitable<bool> SleepUntil(const SessionEnv& env, TimePoint t);

// A session's random seed from the run's --seed, the session kind (sender,
// reader, schedule) and its index.
uint64_t SessionSeed(uint64_t seed, uint64_t kind, uint64_t id);

class Worker {
 public:
  // Takes senders index, index + workers, ... and readers the same way.
  Worker(const Shared& shared, uint32_t index, uint32_t workers);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the sessions until they have all ended (at the latest shortly after
  // the clock's hard stop). Call once, on the worker's own thread.
  void Run();
  // Abandons the event loop (last resort after the hard stop). Thread-safe.
  void Abort() { io_.stop(); }
  bool done() const { return done_.load(); }
  WorkerStats& stats() { return stats_; }

 private:
  asio::awaitable<void> Session(bool sender, uint32_t id);
  // Closes every connection at the hard stop; ends when the sessions have.
  asio::awaitable<void> Supervise();

  const Shared& shared_;
  uint32_t index_;
  uint32_t workers_;
  ConnRegistry registry_;
  WorkerStats stats_;
  std::optional<ArrivalSchedule> schedule_;
  int live_ = 0;  // sessions still running
  std::atomic<bool> done_{false};
  // Last, so it is destroyed first: session frames left in it after Abort()
  // are destroyed while the registry and stats they point to still exist.
  asio::io_context io_{1};
};

}  // namespace porcupine::bench
