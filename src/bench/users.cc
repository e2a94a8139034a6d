#include "bench/users.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

namespace porcupine::bench {
namespace {

constexpr int kAttempts503 = 4;
constexpr auto kRetryDelay = std::chrono::milliseconds(250);

Status FromHttp(const httplib::Result& res, const std::string& address, const std::string& node) {
  if (!res) {
    return Status::Unavailable("admin API at " + node + " unreachable (" +
                               httplib::to_string(res.error()) + " error)");
  }
  std::string what = "creating " + address + " via " + node + ": HTTP " +
                     std::to_string(res->status) + " " + res->body.substr(0, 200);
  switch (res->status) {
    case 400:
      return Status::InvalidArgument(what);
    case 401:
    case 403:
      return Status::PermissionDenied(what + " (check --token)");
    case 503:
      return Status::Unavailable(what);
    default:
      return Status::Internal(what);
  }
}

class Creator {
 public:
  explicit Creator(const Plan& plan) : plan_(plan) {}

  // Thread body: claims user indexes until none are left or one failed.
  void Work() {
    std::vector<std::unique_ptr<httplib::Client>> clients;
    for (const HostPort& hp : plan_.admin) {
      auto c = std::make_unique<httplib::Client>("http://" + hp.ToString());
      c->set_connection_timeout(5);
      c->set_read_timeout(30);
      c->set_keep_alive(true);
      c->set_tcp_nodelay(true);  // headers and body go out as separate writes
      if (!plan_.opts.token.empty()) c->set_bearer_token_auth(plan_.opts.token);
      clients.push_back(std::move(c));
    }
    while (!failed_.load()) {
      uint64_t i = next_.fetch_add(1);
      if (i >= static_cast<uint64_t>(plan_.opts.users)) return;
      size_t node = i % clients.size();
      Status st = CreateOne(*clients[node], plan_.admin[node].ToString(), i);
      if (!st.ok()) Fail(st);
    }
  }

  Result<UserSetup> Finish() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) return error_;
    return UserSetup{created_.load(), existed_.load()};
  }

 private:
  Status CreateOne(httplib::Client& client, const std::string& node, uint64_t i) {
    std::string address = plan_.UserAddress(static_cast<uint32_t>(i));
    std::string body =
        nlohmann::json{{"address", address}, {"password", plan_.opts.password}}.dump();
    for (int attempt = 1;; ++attempt) {
      httplib::Result res = client.Post("/v1/users", body, "application/json");
      if (res && (res->status == 201 || res->status == 409)) {
        ++(res->status == 201 ? created_ : existed_);
        return Status::Ok();
      }
      if (res && res->status == 503 && attempt < kAttempts503 && !failed_.load()) {
        std::this_thread::sleep_for(kRetryDelay * attempt);
        continue;
      }
      return FromHttp(res, address, node);
    }
  }

  void Fail(const Status& st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) error_ = st;
    failed_ = true;
  }

  const Plan& plan_;
  std::atomic<uint64_t> next_{0};
  std::atomic<uint64_t> created_{0};
  std::atomic<uint64_t> existed_{0};
  std::atomic<bool> failed_{false};
  std::mutex mu_;
  Status error_;  // guarded by mu_: the first failure
};

}  // namespace

Result<UserSetup> CreateUsers(const Plan& plan) {
  Creator creator(plan);
  int n = std::min(plan.opts.setup_threads, plan.opts.users);
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back([&creator] { creator.Work(); });
  for (std::thread& t : threads) t.join();
  return creator.Finish();
}

}  // namespace porcupine::bench
