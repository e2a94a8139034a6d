#include "node/budget_metrics.h"

#include <prometheus/gauge.h>

#include <string>

namespace porcupine::node {
namespace {

prometheus::Gauge* Gauge(admin::Metrics& metrics, const std::string& name,
                         const std::string& help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(metrics.registry()).Add({});
}

// One set of the four gauges under `prefix`.
void AddBudgetGauges(admin::Metrics& metrics, const MemoryBudget& budget, const std::string& prefix,
                     const std::string& note) {
  prometheus::Gauge* used =
      Gauge(metrics, prefix + "_bytes",
            "Bytes reserved by messages held in flight: SMTP DATA, IMAP literals "
            "(limits.message_memory_bytes)" +
                note);
  prometheus::Gauge* peak = Gauge(metrics, prefix + "_peak_bytes",
                                  "Most bytes messages in flight ever reserved at once" + note);
  prometheus::Gauge* limit =
      Gauge(metrics, prefix + "_limit_bytes", "limits.message_memory_bytes" + note);
  prometheus::Gauge* refused =
      Gauge(metrics, prefix + "_refused_total",
            "Reservations refused because the message memory budget was full: SMTP 452 4.3.1, "
            "IMAP NO [LIMIT]" +
                note);
  limit->Set(static_cast<double>(budget.limit()));
  metrics.AddRefresher([&budget, used, peak, refused] {
    used->Set(static_cast<double>(budget.used()));
    peak->Set(static_cast<double>(budget.peak()));
    refused->Set(static_cast<double>(budget.refusals()));
  });
}

}  // namespace

void AddMessageBudgetMetrics(admin::Metrics& metrics, const MemoryBudget& budget) {
  AddBudgetGauges(metrics, budget, "porcupine_message_memory", "");
  AddBudgetGauges(metrics, budget, "porcupine_smtp_data_memory",
                  " (old name of porcupine_message_memory_*)");
}

}  // namespace porcupine::node
