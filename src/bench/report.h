// The report of a run: one JSON object (--json) or a table for people.
// Field meanings: src/bench/README.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bench/engine.h"
#include "bench/plan.h"
#include "bench/users.h"

namespace porcupine::bench {

// The report as JSON (one object; dump() gives the one-line form).
nlohmann::json ReportJson(const Plan& plan, const UserSetup& users, const RunTotals& t);

// The same for a terminal: aligned lines, ending in a newline.
std::string ReportTable(const Plan& plan, const UserSetup& users, const RunTotals& t);

}  // namespace porcupine::bench
