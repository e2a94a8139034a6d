// Password checks at the node a client logs in to (PAPER.md §4.2 step 1,
// done at the proxy so no password crosses the cluster network): the hash
// comes from the user's manager, argon2 runs on a CPU pool, and successful
// logins are remembered as keyed BLAKE2b digests so that repeated POP3 logins
// do not pay argon2 each time. A changed hash invalidates what was
// remembered.
//
// Thread-safe.
#pragma once

#include <array>
#include <asio.hpp>
#include <mutex>
#include <string>
#include <unordered_map>

namespace porcupine::manager {

class Credentials {
 public:
  // cpu: executor for argon2 (must outlive this object). cache_entries: 0
  // disables the cache.
  Credentials(asio::any_io_executor cpu, size_t cache_entries);

  // True when `password` matches `hash` (a crypto_pwhash string).
  asio::awaitable<bool> Check(std::string user, std::string password, std::string hash);

 private:
  using Digest = std::array<unsigned char, 32>;
  struct Remembered {
    Digest digest;
    std::string hash;
  };
  Digest DigestOf(const std::string& user, const std::string& password) const;

  asio::any_io_executor cpu_;
  const size_t cache_entries_;
  std::array<unsigned char, 32> key_{};
  std::mutex mu_;
  std::unordered_map<std::string, Remembered> cache_;  // guarded by mu_
};

}  // namespace porcupine::manager
