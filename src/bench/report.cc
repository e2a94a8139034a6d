#include "bench/report.h"

#include <cstdio>

namespace porcupine::bench {
namespace {

double Ms(uint64_t us) { return static_cast<double>(us) / 1000.0; }
double PerSecond(uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0; }

nlohmann::json LatencyJson(const Histogram& h) {
  return {{"count", h.count()},          {"mean", h.mean() / 1000.0},
          {"p50", Ms(h.Percentile(50))}, {"p90", Ms(h.Percentile(90))},
          {"p99", Ms(h.Percentile(99))}, {"p999", Ms(h.Percentile(99.9))},
          {"max", Ms(h.max())}};
}

nlohmann::json OrNull(bool have, double v) { return have ? nlohmann::json(v) : nlohmann::json(); }

const Histogram& Deliver(const RunTotals& t) {
  return t.latency[static_cast<size_t>(Op::kSmtpDeliver)];
}

}  // namespace

nlohmann::json ReportJson(const Plan& plan, const UserSetup& users, const RunTotals& t) {
  const BenchOptions& o = plan.opts;
  const Histogram& deliver = Deliver(t);
  nlohmann::json j;
  j["delivered_per_s"] = PerSecond(t.delivered, t.window_s);
  j["retrieved_per_s"] = PerSecond(t.retrieved, t.window_s);
  j["errors"] = t.errors;
  j["p50_ms"] = OrNull(deliver.count() > 0, Ms(deliver.Percentile(50)));
  j["p99_ms"] = OrNull(deliver.count() > 0, Ms(deliver.Percentile(99)));
  j["cpu_s_per_msg"] = OrNull(t.node_cpu_s && t.delivered > 0,
                              t.node_cpu_s.value_or(0) / static_cast<double>(t.delivered));
  j["delivered"] = t.delivered;
  j["retrieved"] = t.retrieved;
  j["recipients"] = t.recipients;
  j["bytes_sent"] = t.bytes_sent;
  j["bytes_retrieved"] = t.bytes_retrieved;
  j["duration_s"] = t.window_s;
  j["warmup_s"] = o.warmup_s;
  j["interrupted"] = t.interrupted;
  j["sessions"] = o.sessions;
  j["readers"] = plan.readers;
  j["threads"] = o.threads;
  j["users"] = o.users;
  j["recipients_per_msg"] = o.recipients;
  j["mode"] = o.rate > 0 ? "open" : "closed";
  j["target_rate"] = o.rate;
  j["late_starts"] = t.late_starts;
  j["seed"] = o.seed;
  nlohmann::json lat = nlohmann::json::object();
  for (size_t op = 0; op < kOpCount; ++op) {
    lat[std::string(OpName(static_cast<Op>(op)))] = LatencyJson(t.latency[op]);
  }
  j["latency_ms"] = lat;
  nlohmann::json kinds = nlohmann::json::object();
  for (size_t k = 0; k < kErrorKindCount; ++k) {
    kinds[std::string(ErrorKindName(static_cast<ErrorKind>(k)))] = t.errors_by_kind[k];
  }
  j["errors_by_kind"] = kinds;
  j["error_samples"] = t.error_samples;
  j["pids"] = plan.pids;
  j["node_cpu_s"] = OrNull(t.node_cpu_s.has_value(), t.node_cpu_s.value_or(0));
  if (!t.node_cpu_note.empty()) j["node_cpu_note"] = t.node_cpu_note;
  j["bench_cpu_s"] = t.bench_cpu_s;
  j["bench_cpu_s_per_msg"] =
      OrNull(t.delivered > 0, t.bench_cpu_s / static_cast<double>(t.delivered));
  j["users_created"] = users.created;
  j["users_existed"] = users.existed;
  return j;
}

namespace {

void Line(std::string* out, const char* fmt, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, args...);
  out->append(buf);
}

void LatencyTable(const RunTotals& t, std::string* out) {
  Line(out, "\n%-14s %9s %9s %9s %9s %9s %9s\n", "latency (ms)", "count", "p50", "p90", "p99",
       "p99.9", "max");
  for (size_t op = 0; op < kOpCount; ++op) {
    const Histogram& h = t.latency[op];
    Line(out, "%-14s %9llu %9.2f %9.2f %9.2f %9.2f %9.2f\n",
         std::string(OpName(static_cast<Op>(op))).c_str(),
         static_cast<unsigned long long>(h.count()), Ms(h.Percentile(50)), Ms(h.Percentile(90)),
         Ms(h.Percentile(99)), Ms(h.Percentile(99.9)), Ms(h.max()));
  }
}

void ErrorTable(const RunTotals& t, std::string* out) {
  Line(out, "\nerrors         %llu", static_cast<unsigned long long>(t.errors));
  const char* sep = " (";
  for (size_t k = 0; k < kErrorKindCount; ++k) {
    if (t.errors_by_kind[k] == 0) continue;
    Line(out, "%s%s %llu", sep, std::string(ErrorKindName(static_cast<ErrorKind>(k))).c_str(),
         static_cast<unsigned long long>(t.errors_by_kind[k]));
    sep = ", ";
  }
  out->append(t.errors > 0 ? ")\n" : "\n");
  for (const std::string& s : t.error_samples) out->append("  e.g. ").append(s).append("\n");
}

void CpuTable(const Plan& plan, const RunTotals& t, std::string* out) {
  out->append("\n");
  if (t.node_cpu_s) {
    Line(out, "node cpu       %.2f s over %zu pid(s)", *t.node_cpu_s, plan.pids.size());
    if (t.delivered > 0) Line(out, " = %.3f ms/msg", 1000 * *t.node_cpu_s / t.delivered);
    out->append("\n");
  } else if (!t.node_cpu_note.empty()) {
    out->append("node cpu       unknown: ").append(t.node_cpu_note).append("\n");
  } else {
    out->append("node cpu       not measured (give --pids or --pid-file)\n");
  }
  Line(out, "bench cpu      %.2f s", t.bench_cpu_s);
  if (t.delivered > 0) Line(out, " = %.3f ms/msg", 1000 * t.bench_cpu_s / t.delivered);
  out->append("\n");
}

}  // namespace

std::string ReportTable(const Plan& plan, const UserSetup& users, const RunTotals& t) {
  const BenchOptions& o = plan.opts;
  std::string out;
  Line(&out,
       "porcupine bench: %.1f s measured%s after %.1f s warmup; %d senders, %d readers, "
       "%d users (%llu created), ",
       t.window_s, t.interrupted ? " (interrupted)" : "", o.warmup_s, o.sessions, plan.readers,
       o.users, static_cast<unsigned long long>(users.created));
  if (o.rate > 0) {
    Line(&out, "open loop at %.1f msg/s\n", o.rate);
  } else {
    out.append("closed loop\n");
  }
  Line(&out, "\ndelivered      %10llu  %10.1f msg/s  %8.2f MB/s  (%llu recipients)\n",
       static_cast<unsigned long long>(t.delivered), PerSecond(t.delivered, t.window_s),
       PerSecond(t.bytes_sent, t.window_s) / 1e6, static_cast<unsigned long long>(t.recipients));
  Line(&out, "retrieved      %10llu  %10.1f msg/s  %8.2f MB/s\n",
       static_cast<unsigned long long>(t.retrieved), PerSecond(t.retrieved, t.window_s),
       PerSecond(t.bytes_retrieved, t.window_s) / 1e6);
  if (o.rate > 0 && t.late_starts > 0) {
    Line(&out, "late starts    %10llu  (more than 1 s behind schedule: add --sessions)\n",
         static_cast<unsigned long long>(t.late_starts));
  }
  LatencyTable(t, &out);
  ErrorTable(t, &out);
  CpuTable(plan, t, &out);
  return out;
}

}  // namespace porcupine::bench
