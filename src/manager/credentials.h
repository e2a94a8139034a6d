// Password checks at the node a client logs in to (PAPER.md §4.2 step 1,
// done at the proxy so no password crosses the cluster network): the hash
// comes from the user's manager and argon2id runs on a CPU pool, never on the
// event loop (docs/security.md).
//
// * Single flight: concurrent checks of the same (user, hash, password) share
//   one argon2id verification; the others wait for its result.
// * Cache: successful checks are remembered for `cache_ttl`, at most
//   `cache_entries` users (least recently used forgotten first), as a keyed
//   BLAKE2b digest of (user, hash, password) under a random key made at
//   start — never the password. An entry holds only for the hash it was
//   verified against: a changed hash (password change) forgets it.
// * No existence oracle: a check without a hash (unknown user) verifies
//   against a dummy hash made at start with the configured cost, so it takes
//   as long as a wrong password of an existing user, and fails.
//
// Thread-safe.
#pragma once

#include <array>
#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/lru_map.h"

namespace porcupine::manager {

struct CredentialsOptions {
  // Users whose last successful check is remembered; 0 disables the cache
  // (single flight stays).
  size_t cache_entries = 100000;
  // A remembered success is trusted this long after its verification.
  std::chrono::seconds cache_ttl{900};
  // What a check without a hash (an unknown user) verifies against:
  // DummyPasswordHash() with the cost of new password hashes. Empty: such
  // checks fail at once (tests only: that is an existence oracle).
  std::string dummy_hash;
};

class Credentials {
 public:
  struct Stats {
    uint64_t verifications = 0;  // argon2id runs (dummy ones included)
    uint64_t cache_hits = 0;     // checks answered from the cache
    uint64_t joined = 0;         // checks that waited for an identical one in flight
    size_t cached = 0;           // users remembered now
  };

  // cpu: executor for argon2id (must outlive every check, and run every
  // task posted to it before this object is destroyed). now_ms: a monotonic
  // clock in milliseconds (the cache's TTL).
  Credentials(asio::any_io_executor cpu, const CredentialsOptions& options,
              std::function<int64_t()> now_ms);
  Credentials(const Credentials&) = delete;
  Credentials& operator=(const Credentials&) = delete;

  // True when `password` matches `hash` (a crypto_pwhash string) of `user`.
  // An empty `hash` means "no such user": false, after as long as a real
  // verification takes.
  asio::awaitable<bool> Check(std::string user, std::string password, std::string hash);

  Stats stats() const;

 private:
  using Digest = std::array<unsigned char, 32>;
  struct Remembered {
    std::string hash;  // the stored hash the success was verified against
    Digest digest{};
    int64_t until_ms = 0;
  };
  // One verification in flight and the checks waiting for it.
  struct Flight {
    std::vector<std::function<void(bool)>> waiters;
  };

  Digest DigestOf(const std::string& user, const std::string& hash,
                  const std::string& password) const;
  bool Cached(const std::string& user, const std::string& hash, const Digest& digest);
  // Joins the flight of `digest`, starting it (on the CPU pool) when there is
  // none; `done` gets the result on the pool's thread.
  void Join(const Digest& digest, const std::string& user, const std::string& hash,
            const std::string& password, bool remember, std::function<void(bool)> done);
  void Land(const Digest& digest, const std::string& user, const std::string& hash, bool ok,
            bool remember);

  asio::any_io_executor cpu_;
  const CredentialsOptions options_;
  std::function<int64_t()> now_ms_;
  std::array<unsigned char, 32> key_{};
  mutable std::mutex mu_;
  LruMap<std::string, Remembered> cache_;              // by user; guarded by mu_
  std::map<Digest, std::shared_ptr<Flight>> flights_;  // guarded by mu_
  std::atomic<uint64_t> verifications_{0};
  std::atomic<uint64_t> cache_hits_{0};
  std::atomic<uint64_t> joined_{0};
};

}  // namespace porcupine::manager
