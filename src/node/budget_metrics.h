// Metrics of the node-wide memory budgets (core/memory_budget.h), registered
// beside admin::Metrics' own and refreshed at scrape time; names in
// docs/operations.md.
#pragma once

#include "admin/metrics.h"
#include "core/memory_budget.h"

namespace porcupine::node {

// Exports the budget of message bytes in flight (limits.message_memory_bytes,
// shared by SMTP DATA and IMAP literals): bytes reserved now, the most ever
// reserved, the limit, and the reservations refused because it was full
// (messages answered 452 4.3.1, IMAP commands answered NO [LIMIT], stores to
// another node refused). As porcupine_message_memory_* and, for dashboards
// made before IMAP shared the budget, under the old names
// porcupine_smtp_data_memory_*. `budget` must outlive `metrics`' scrapes.
void AddMessageBudgetMetrics(admin::Metrics& metrics, const MemoryBudget& budget);

}  // namespace porcupine::node
