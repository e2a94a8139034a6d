#include "manager/credentials.h"

#include <sodium.h>

#include <algorithm>

#include "core/async.h"
#include "core/password.h"

namespace porcupine::manager {

Credentials::Credentials(asio::any_io_executor cpu, const CredentialsOptions& options,
                         std::function<int64_t()> now_ms)
    : cpu_(std::move(cpu)),
      options_(options),
      now_ms_(std::move(now_ms)),
      cache_(std::max<size_t>(1, options.cache_entries)) {
  if (sodium_init() >= 0) randombytes_buf(key_.data(), key_.size());
}

Credentials::Digest Credentials::DigestOf(const std::string& user, const std::string& hash,
                                          const std::string& password) const {
  Digest d{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, key_.data(), key_.size(), d.size());
  // Each field with its length first: no two triples hash the same bytes.
  for (const std::string* field : {&user, &hash, &password}) {
    const uint64_t size = field->size();
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(&size), sizeof size);
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(field->data()),
                              field->size());
  }
  crypto_generichash_final(&st, d.data(), d.size());
  return d;
}

bool Credentials::Cached(const std::string& user, const std::string& hash, const Digest& digest) {
  if (options_.cache_entries == 0) return false;
  std::lock_guard lock(mu_);
  Remembered* r = cache_.Find(user);
  if (r == nullptr) return false;
  if (r->hash != hash || now_ms_() >= r->until_ms) {
    cache_.Erase(user);  // the password changed, or the entry is too old
    return false;
  }
  return sodium_memcmp(r->digest.data(), digest.data(), digest.size()) == 0;
}

void Credentials::Join(const Digest& digest, const std::string& user, const std::string& hash,
                       const std::string& password, bool remember, std::function<void(bool)> done) {
  {
    std::lock_guard lock(mu_);
    auto it = flights_.find(digest);
    if (it != flights_.end()) {
      it->second->waiters.push_back(std::move(done));
      ++joined_;
      return;
    }
    auto flight = std::make_shared<Flight>();
    flight->waiters.push_back(std::move(done));
    flights_.emplace(digest, std::move(flight));
  }
  ++verifications_;
  asio::post(cpu_,
             [this, digest, user, hash, password = std::string(password), remember]() mutable {
               const bool ok = VerifyPassword(hash, password);
               sodium_memzero(password.data(), password.size());
               Land(digest, user, hash, ok, remember);
             });
}

void Credentials::Land(const Digest& digest, const std::string& user, const std::string& hash,
                       bool ok, bool remember) {
  std::vector<std::function<void(bool)>> waiters;
  {
    std::lock_guard lock(mu_);
    auto it = flights_.find(digest);
    if (it != flights_.end()) {
      waiters = std::move(it->second->waiters);
      flights_.erase(it);
    }
    if (ok && remember && options_.cache_entries > 0) {
      Remembered& r = cache_.Touch(user);
      r.hash = hash;
      r.digest = digest;
      r.until_ms = now_ms_() + std::chrono::milliseconds(options_.cache_ttl).count();
    }
  }
  for (auto& w : waiters) w(ok);
}

asio::awaitable<bool> Credentials::Check(std::string user, std::string password, std::string hash) {
  const bool known = !hash.empty();
  if (!known) {
    if (options_.dummy_hash.empty()) co_return false;
    hash = options_.dummy_hash;  // the same work as a wrong password, never a success
  }
  const Digest digest = DigestOf(user, hash, password);
  if (known && Cached(user, hash, digest)) {
    ++cache_hits_;
    sodium_memzero(password.data(), password.size());
    co_return true;
  }
  auto start = [this, digest, user, hash, password, known](auto done) mutable {
    Join(digest, user, hash, password, known, std::move(done));
    sodium_memzero(password.data(), password.size());
  };
  sodium_memzero(password.data(), password.size());
  const bool ok = co_await AwaitCallback<bool>(std::move(start));
  co_return known&& ok;
}

Credentials::Stats Credentials::stats() const {
  Stats s;
  s.verifications = verifications_.load();
  s.cache_hits = cache_hits_.load();
  s.joined = joined_.load();
  std::lock_guard lock(mu_);
  s.cached = cache_.size();
  return s;
}

}  // namespace porcupine::manager
