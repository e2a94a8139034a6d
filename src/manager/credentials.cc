#include "manager/credentials.h"

#include <sodium.h>

#include "core/async.h"
#include "core/password.h"

namespace porcupine::manager {

Credentials::Credentials(asio::any_io_executor cpu, size_t cache_entries)
    : cpu_(std::move(cpu)), cache_entries_(cache_entries) {
  if (sodium_init() >= 0) randombytes_buf(key_.data(), key_.size());
}

Credentials::Digest Credentials::DigestOf(const std::string& user,
                                          const std::string& password) const {
  Digest d{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, key_.data(), key_.size(), d.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(user.data()), user.size());
  const unsigned char zero = 0;
  crypto_generichash_update(&st, &zero, 1);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(password.data()),
                            password.size());
  crypto_generichash_final(&st, d.data(), d.size());
  return d;
}

asio::awaitable<bool> Credentials::Check(std::string user, std::string password, std::string hash) {
  if (hash.empty()) co_return false;
  const Digest digest = DigestOf(user, password);
  if (cache_entries_ > 0) {
    std::lock_guard lock(mu_);
    auto it = cache_.find(user);
    if (it != cache_.end() && it->second.hash == hash &&
        sodium_memcmp(it->second.digest.data(), digest.data(), digest.size()) == 0) {
      co_return true;
    }
  }
  auto verify = [hash, password] { return VerifyPassword(hash, password); };
  bool ok = co_await RunOn(cpu_, std::move(verify));
  if (ok && cache_entries_ > 0) {
    std::lock_guard lock(mu_);
    if (cache_.size() >= cache_entries_) cache_.clear();
    cache_[user] = {digest, hash};
  }
  co_return ok;
}

}  // namespace porcupine::manager
