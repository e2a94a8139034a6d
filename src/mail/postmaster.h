// The postmaster mailbox must exist: RFC 5321 §4.5.1 requires every local
// domain to take mail for postmaster (mail/recipients.h routes it). Each node
// makes sure of it at start (docs/config.md, mail.postmaster).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "core/status.h"
#include "manager/router.h"

namespace porcupine::mail {

// What to do next about the postmaster mailbox.
enum class PostmasterStep {
  kDone,     // it exists (found, created, or created by another node meanwhile)
  kCreate,   // absent, and ours to create
  kMissing,  // absent, and not ours to create (a configured mailbox): warn, stop
  kRetry,    // no answer for now (no view yet, users not known yet, bucket
             // being rebuilt, another node creating it): ask again later
  kFailed,   // a permanent error (a malformed address): report, stop
};

// After looking the mailbox up. `create`: the mailbox is the default one,
// which the node creates when absent. Pure.
PostmasterStep AfterPostmasterLookup(Code lookup, bool create);
// After trying to create it. Pure.
PostmasterStep AfterPostmasterCreate(Code create);

struct PostmasterOptions {
  std::string mailbox;  // canonical address
  bool create = true;   // create it when absent (without a password) or only warn
  // Backoff between attempts that got no answer: doubles from first to max.
  std::chrono::milliseconds first_retry{500};
  std::chrono::milliseconds max_retry{30000};
};

// Looks the mailbox up through `managers` and, when absent and `create`,
// creates it through the same call `porcupine user add` makes (so the profile
// is replicated like any user's) with no password: nobody can log in as it
// until an operator sets one. Idempotent: a mailbox that exists is left
// alone, and when several nodes create it at once the manager lets one
// succeed and the others find it. Retries until done or `stopping()`.
// Returns the last step (kDone, kMissing or kFailed; kRetry when stopped).
// `managers` must outlive the coroutine.
asio::awaitable<PostmasterStep> EnsurePostmaster(PostmasterOptions options,
                                                 manager::ManagerRouter& managers,
                                                 std::function<bool()> stopping);

}  // namespace porcupine::mail
