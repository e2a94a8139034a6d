#include "bench/engine.h"

#include <chrono>
#include <memory>
#include <thread>

#include "bench/cpu.h"
#include "bench/worker.h"

namespace porcupine::bench {
namespace {

using std::chrono::duration;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

// How long after the hard stop the workers get before their event loops are
// abandoned (sessions stuck in something no socket close can end).
constexpr auto kAbortGrace = std::chrono::seconds(2);
constexpr auto kMonitorTick = milliseconds(100);
constexpr size_t kErrorSamples = 10;

Duration Seconds(double s) { return duration_cast<Duration>(duration<double>(s)); }

struct CpuSnapshot {
  std::optional<double> nodes;  // nullopt: a pid could not be read
  std::string note;
  double self = 0;
};

CpuSnapshot TakeCpu(const std::vector<int>& pids) {
  CpuSnapshot s;
  s.self = SelfCpuSeconds();
  if (pids.empty()) return s;
  double sum = 0;
  for (int pid : pids) {
    Result<double> cpu = ProcessCpuSeconds(pid);
    if (!cpu.ok()) {
      s.note = cpu.status().message();
      return s;
    }
    sum += *cpu;
  }
  s.nodes = sum;
  return s;
}

class Monitor {
 public:
  Monitor(const Plan& plan, RunClock* clock, std::vector<std::unique_ptr<Worker>>* workers,
          const LoadHooks& hooks)
      : plan_(plan), clock_(clock), workers_(workers), hooks_(hooks) {}

  // Returns when every worker is done.
  void Watch();
  CpuSnapshot cpu_start, cpu_end;
  bool interrupted = false;

 private:
  bool AllDone() const;
  void HandleInterrupts(TimePoint now);
  void Progress(TimePoint now);

  const Plan& plan_;
  RunClock* clock_;
  std::vector<std::unique_ptr<Worker>>* workers_;
  const LoadHooks& hooks_;
  bool have_start_ = false;
  bool have_end_ = false;
  bool aborted_ = false;
  TimePoint next_progress_;
  TimePoint last_progress_;
  uint64_t last_delivered_ = 0;
  uint64_t last_retrieved_ = 0;
};

bool Monitor::AllDone() const {
  for (const auto& w : *workers_) {
    if (!w->done()) return false;
  }
  return true;
}

void Monitor::HandleInterrupts(TimePoint now) {
  int n = hooks_.interrupts ? hooks_.interrupts->load() : 0;
  if (n >= 1 && !interrupted) {
    interrupted = true;
    clock_->EndNow(now);
  }
  if (n >= 2) clock_->StopNow(now);
}

void Monitor::Progress(TimePoint now) {
  uint64_t delivered = 0, retrieved = 0, errors = 0;
  for (auto& w : *workers_) {
    delivered += w->stats().delivered_total.load(std::memory_order_relaxed);
    retrieved += w->stats().retrieved_total.load(std::memory_order_relaxed);
    errors += w->stats().errors_total.load(std::memory_order_relaxed);
  }
  double dt = duration<double>(now - last_progress_).count();
  const char* phase = now < clock_->window_start() ? "warmup"
                      : now < clock_->end()        ? "measure"
                                                   : "drain";
  if (dt > 0 && hooks_.progress) {
    std::fprintf(hooks_.progress,
                 "%s[%6.1fs] %-7s delivered %8.1f/s  retrieved %8.1f/s  errors %llu%s",
                 hooks_.progress_tty ? "\r" : "", duration<double>(now - clock_->start()).count(),
                 phase, (delivered - last_delivered_) / dt, (retrieved - last_retrieved_) / dt,
                 static_cast<unsigned long long>(errors), hooks_.progress_tty ? "\x1b[K" : "\n");
    std::fflush(hooks_.progress);
  }
  last_progress_ = now;
  last_delivered_ = delivered;
  last_retrieved_ = retrieved;
}

void Monitor::Watch() {
  last_progress_ = clock_->start();
  next_progress_ = clock_->start() + std::chrono::seconds(1);
  while (true) {
    TimePoint now = SteadyClock::now();
    HandleInterrupts(now);
    // Snapshot CPU as close to the window's edges as we can wake up.
    if (!have_start_ && now >= clock_->window_start()) {
      cpu_start = TakeCpu(plan_.pids);
      have_start_ = true;
    }
    bool done = AllDone();
    if (!have_end_ && (now >= clock_->end() || done)) {
      cpu_end = TakeCpu(plan_.pids);
      have_end_ = true;
    }
    if (done) break;
    if (!aborted_ && now >= clock_->hard_stop() + kAbortGrace) {
      for (auto& w : *workers_) w->Abort();
      aborted_ = true;
    }
    if (hooks_.progress && now >= next_progress_) {
      Progress(now);
      next_progress_ += std::chrono::seconds(1);
    }
    TimePoint wake = now + kMonitorTick;
    if (!have_start_) wake = std::min(wake, clock_->window_start());
    if (!have_end_) wake = std::min(wake, clock_->end());
    std::this_thread::sleep_until(wake);
  }
  if (hooks_.progress && hooks_.progress_tty) std::fputc('\n', hooks_.progress);
}

void Collect(std::vector<std::unique_ptr<Worker>>& workers, RunTotals* t) {
  for (auto& w : workers) {
    WorkerStats& s = w->stats();
    t->delivered += s.delivered.load();
    t->recipients += s.recipients.load();
    t->bytes_sent += s.bytes_sent.load();
    t->retrieved += s.retrieved.load();
    t->bytes_retrieved += s.bytes_retrieved.load();
    t->late_starts += s.late_starts.load();
    for (size_t k = 0; k < kErrorKindCount; ++k) {
      t->errors_by_kind[k] += s.errors[k].load();
      t->errors += s.errors[k].load();
    }
    for (size_t op = 0; op < kOpCount; ++op) t->latency[op].Merge(s.latency[op]);
  }
}

}  // namespace

RunTotals RunLoad(const Plan& plan, const LoadHooks& hooks) {
  const BenchOptions& o = plan.opts;
  MessageFactory factory(o.seed);
  SizeSampler sizes(o.size_mean, o.size_sigma, 1, static_cast<uint64_t>(o.size_max));
  ZipfSampler zipf(static_cast<uint32_t>(o.users), o.zipf);
  LoginLeases leases;
  ErrorSamples samples(kErrorSamples);
  RunClock clock(SteadyClock::now(), Seconds(o.warmup_s), Seconds(o.duration_s),
                 Seconds(o.drain_s));
  Shared shared{&plan, &clock, &leases, &samples, &factory, &sizes, &zipf};

  uint32_t n = static_cast<uint32_t>(o.threads);
  std::vector<std::unique_ptr<Worker>> workers;
  for (uint32_t i = 0; i < n; ++i) workers.push_back(std::make_unique<Worker>(shared, i, n));
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });

  Monitor monitor(plan, &clock, &workers, hooks);
  monitor.Watch();
  for (std::thread& t : threads) t.join();

  RunTotals t;
  Collect(workers, &t);
  t.window_s = std::max(0.0, duration<double>(clock.end() - clock.window_start()).count());
  t.interrupted = monitor.interrupted;
  t.error_samples = samples.Take();
  t.bench_cpu_s = monitor.cpu_end.self - monitor.cpu_start.self;
  if (monitor.cpu_start.nodes && monitor.cpu_end.nodes) {
    t.node_cpu_s = *monitor.cpu_end.nodes - *monitor.cpu_start.nodes;
  } else if (!plan.pids.empty()) {
    t.node_cpu_note = monitor.cpu_end.note.empty() ? monitor.cpu_start.note : monitor.cpu_end.note;
  }
  return t;
}

}  // namespace porcupine::bench
