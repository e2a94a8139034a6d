// Runs the load of a Plan: starts the workers, watches the clock (phases,
// CPU snapshots at the window's edges, progress line, interrupts), and
// collects the totals once every worker has finished.
#pragma once

#include <array>
#include <atomic>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bench/histogram.h"
#include "bench/plan.h"
#include "bench/stats.h"

namespace porcupine::bench {

struct LoadHooks {
  // Where the once-a-second progress line goes; null for none.
  std::FILE* progress = nullptr;
  // Rewrite the line in place ("\r") rather than one line per second.
  bool progress_tty = false;
  // Incremented by the caller's signal handler: 1 ends the window now (the
  // drain still runs), 2 also cuts the drain. May be null.
  const std::atomic<int>* interrupts = nullptr;
};

// Everything measured by a run.
struct RunTotals {
  double window_s = 0;  // the measured window as it actually was
  bool interrupted = false;
  uint64_t delivered = 0;
  uint64_t recipients = 0;
  uint64_t bytes_sent = 0;
  uint64_t retrieved = 0;
  uint64_t bytes_retrieved = 0;
  uint64_t late_starts = 0;
  uint64_t errors = 0;
  std::array<uint64_t, kErrorKindCount> errors_by_kind{};
  std::array<Histogram, kOpCount> latency;  // microseconds
  std::vector<std::string> error_samples;
  // CPU seconds over the window: the --pids processes (nullopt without pids
  // or when one exited), and this process.
  std::optional<double> node_cpu_s;
  std::string node_cpu_note;  // why node_cpu_s is missing, if it is
  double bench_cpu_s = 0;
};

// Runs the workload to its end (duration + bounded drain). REQUIRES: `plan`
// came from MakePlan.
RunTotals RunLoad(const Plan& plan, const LoadHooks& hooks);

}  // namespace porcupine::bench
