// The phases of a run on the steady clock: warmup, the measured window, and a
// bounded drain. Shared by every worker; the deadlines are atomics so the
// main thread can end a run early (SIGINT).
//
//   start ── warmup ──> window_start ── duration ──> end ── drain ──> hard_stop
//
// Sessions start no new work at `end`, finish what is in flight during the
// drain, and are cut off (sockets closed) at `hard_stop`.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>

namespace porcupine::bench {

using SteadyClock = std::chrono::steady_clock;
using Duration = SteadyClock::duration;
using TimePoint = SteadyClock::time_point;

class RunClock {
 public:
  RunClock(TimePoint start, Duration warmup, Duration duration, Duration drain)
      : start_(start),
        window_start_(warmup.count()),
        end_((warmup + duration).count()),
        hard_stop_((warmup + duration + drain).count()),
        drain_(drain) {}

  TimePoint start() const { return start_; }
  TimePoint window_start() const { return At(window_start_); }
  TimePoint end() const { return At(end_); }
  TimePoint hard_stop() const { return At(hard_stop_); }

  // Whether work finishing at `t` is measured.
  bool InWindow(TimePoint t) const { return t >= window_start() && t < end(); }
  // Whether no new work may start at `t`.
  bool Ended(TimePoint t) const { return t >= end(); }

  // Ends the window at `now` (if earlier) and keeps the drain after it. The
  // window then covers [window_start, now); if the warmup had not finished,
  // nothing is measured.
  void EndNow(TimePoint now) {
    Duration::rep n = (now - start_).count();
    if (n < end_.load()) {
      end_ = n;
      hard_stop_ = std::min(hard_stop_.load(), n + drain_.count());
      window_start_ = std::min(window_start_.load(), n);
    }
  }
  // Cuts the drain short.
  void StopNow(TimePoint now) {
    EndNow(now);
    hard_stop_ = std::min(hard_stop_.load(), (now - start_).count());
  }

 private:
  TimePoint At(const std::atomic<Duration::rep>& offset) const {
    return start_ + Duration(offset.load(std::memory_order_relaxed));
  }

  const TimePoint start_;
  std::atomic<Duration::rep> window_start_;
  std::atomic<Duration::rep> end_;
  std::atomic<Duration::rep> hard_stop_;
  const Duration drain_;
};

}  // namespace porcupine::bench
