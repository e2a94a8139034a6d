// The manager role as it runs on this node: soft state for the buckets this
// node manages, rebuilt from the store (reconstruction) and kept current by
// deliveries and user administration.
//
// Thread-safety: all methods may run concurrently; state is behind one mutex.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "core/password.h"
#include "manager/user_manager.h"
#include "store/store.h"

namespace porcupine::manager {

struct LocalManagerOptions {
  NodeId self = 0;
  uint32_t buckets = 256;
  PasswordCost password_cost;
  // Successful logins remembered (keyed BLAKE2b of the password, in memory
  // only) so repeated POP3 logins skip argon2; 0 disables the cache.
  size_t auth_cache_entries = 100000;
};

class LocalManager : public UserManager {
 public:
  // store: this node's store (profiles live there until replication lands).
  // cpu: executor for password hashing. Both must outlive the manager.
  LocalManager(const LocalManagerOptions& options, store::Store& store, asio::any_io_executor cpu);

  // Reconstruction: rebuilds profiles and mail maps of every bucket from the
  // local store. Call before serving.
  Status Rebuild();

  asio::awaitable<Result<UserInfo>> LookupUser(std::string user) override;
  asio::awaitable<Status> Authenticate(std::string user, std::string password) override;
  asio::awaitable<Status> MailMapAdd(std::string user, NodeId node) override;
  asio::awaitable<Status> MailMapRemove(std::string user, NodeId node) override;

  // User administration (admin API). Addresses are canonical.
  // AlreadyExists / NotFound as the names say; durable when OK.
  asio::awaitable<Status> CreateUser(std::string user, std::string password);
  asio::awaitable<Status> DeleteUser(std::string user);
  asio::awaitable<Status> SetPassword(std::string user, std::string password);
  // Every known user, sorted.
  std::vector<std::string> ListUsers();
  size_t user_count();

 private:
  struct Entry {
    store::Profile profile;
    bool has_profile = false;
    std::set<NodeId> mail_map;
  };
  using Digest = std::array<unsigned char, 32>;

  Digest PasswordDigest(const std::string& user, const std::string& password) const;
  bool CachedLogin(const std::string& user, const Digest& d);
  void ForgetLogin(const std::string& user);
  asio::awaitable<Status> CommitProfile(const store::Profile& profile);

  const LocalManagerOptions options_;
  store::Store& store_;
  asio::any_io_executor cpu_;
  std::array<unsigned char, 32> cache_key_;

  std::mutex mu_;
  std::unordered_map<std::string, Entry> users_;    // guarded by mu_
  std::unordered_map<std::string, Digest> logins_;  // guarded by mu_
};

}  // namespace porcupine::manager
