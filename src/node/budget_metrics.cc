#include "node/budget_metrics.h"

#include <prometheus/gauge.h>

namespace porcupine::node {
namespace {

prometheus::Gauge* Gauge(admin::Metrics& metrics, const char* name, const char* help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(metrics.registry()).Add({});
}

}  // namespace

void AddSmtpDataBudgetMetrics(admin::Metrics& metrics, const MemoryBudget& budget) {
  prometheus::Gauge* used = Gauge(
      metrics, "porcupine_smtp_data_memory_bytes",
      "Bytes reserved by SMTP messages being received or stored (limits.smtp_data_memory_bytes)");
  prometheus::Gauge* peak = Gauge(metrics, "porcupine_smtp_data_memory_peak_bytes",
                                  "Most bytes SMTP messages being received ever reserved at once");
  prometheus::Gauge* limit =
      Gauge(metrics, "porcupine_smtp_data_memory_limit_bytes", "limits.smtp_data_memory_bytes");
  prometheus::Gauge* refused =
      Gauge(metrics, "porcupine_smtp_data_memory_refused_total",
            "SMTP messages refused with 452 4.3.1 because the DATA memory budget was full");
  limit->Set(static_cast<double>(budget.limit()));
  metrics.AddRefresher([&budget, used, peak, refused] {
    used->Set(static_cast<double>(budget.used()));
    peak->Set(static_cast<double>(budget.peak()));
    refused->Set(static_cast<double>(budget.refusals()));
  });
}

}  // namespace porcupine::node
