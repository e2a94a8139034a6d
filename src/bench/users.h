// Creates the bench users through the admin API before a run.
#pragma once

#include <cstdint>

#include "bench/plan.h"
#include "core/status.h"

namespace porcupine::bench {

struct UserSetup {
  uint64_t created = 0;  // 201
  uint64_t existed = 0;  // 409: already there (e.g. from an earlier run)
};

// POSTs /v1/users {"address","password"} for users 0..--users-1, spread
// round-robin over the admin nodes by --setup-threads blocking clients. A 503
// is retried a few times. Stops at the first other failure and returns it:
// Unavailable (unreachable, 503 persisting), PermissionDenied (401: check
// --token), InvalidArgument (400, e.g. a non-local --domain), Internal.
Result<UserSetup> CreateUsers(const Plan& plan);

}  // namespace porcupine::bench
