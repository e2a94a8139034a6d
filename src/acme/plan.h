// When to install, order and retry (docs/security.md "ACME"): pure decisions
// from the stored record, the configuration, the node's role and the clock.
// The driver (node/acme_runtime.h) reads the inputs and performs the actions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace porcupine::acme {

struct PlanInput {
  int64_t now = 0;                        // Unix seconds
  std::vector<std::string> domains;       // the names the configuration wants certified
  std::vector<std::string> cert_domains;  // those of the stored certificate ("" none)
  int64_t not_after = 0;                  // of the stored certificate; 0 = none stored
  int64_t renew_before = 0;               // seconds before not_after a renewal is due
  bool orderer = false;                   // this node orders for the cluster (the record's manager)
  int64_t retry_at = 0;                   // after a failure: no order before this time
  bool stored_differs = false;            // the stored certificate is not the one installed here
};

struct PlanDecision {
  bool install = false;  // install the stored certificate here
  bool order = false;    // order a new certificate now
  std::string reason;    // why (logs): "no certificate", "expires in 3 days", ...
};

PlanDecision Plan(const PlanInput& in);

// The names to certify: `configured`, or `fallback` (the mail host name)
// when none is configured; lower case, sorted, without duplicates.
std::vector<std::string> DomainsToCertify(const std::vector<std::string>& configured,
                                          const std::string& fallback);

// The wait before attempt `failures` + 1 after `failures` failures in a row
// (>= 1): `base`, doubled per further failure, at most `max`.
int64_t RetryDelay(int failures, int64_t base, int64_t max);

}  // namespace porcupine::acme
