// Metrics of the node-wide memory budgets (core/memory_budget.h), registered
// beside admin::Metrics' own and refreshed at scrape time; names in
// docs/operations.md.
#pragma once

#include "admin/metrics.h"
#include "core/memory_budget.h"

namespace porcupine::node {

// Exports the SMTP DATA budget: bytes reserved now, the most ever reserved,
// the limit, and the messages refused (452 4.3.1) because it was full.
// `budget` must outlive `metrics`' scrapes.
void AddSmtpDataBudgetMetrics(admin::Metrics& metrics, const MemoryBudget& budget);

}  // namespace porcupine::node
