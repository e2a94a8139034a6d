#include "net/listener.h"

#include <spdlog/spdlog.h>

#include <asio/experimental/as_tuple.hpp>

namespace porcupine::net {

using asio::experimental::as_tuple;

Result<tcp::endpoint> ParseEndpoint(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("not host:port: " + host_port);
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  asio::error_code ec;
  asio::ip::address addr = asio::ip::make_address(host, ec);
  if (ec) return Status::InvalidArgument("not a numeric address: " + host_port);
  int port = std::stoi(host_port.substr(colon + 1));
  return tcp::endpoint(addr, static_cast<uint16_t>(port));
}

ConnectionRegistry::Ticket::~Ticket() {
  {
    std::lock_guard lock(registry_->mu_);
    registry_->live_.erase(id_);
    if (!client_.empty()) {
      auto it = registry_->per_client_.find(client_);
      if (it != registry_->per_client_.end() && --it->second == 0) {
        registry_->per_client_.erase(it);
      }
    }
  }
  registry_->left_.Notify();
}

asio::awaitable<size_t> ConnectionRegistry::WaitDrained(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    uint64_t seen = 0;
    {
      std::lock_guard lock(mu_);
      if (live_.empty()) co_return 0;
      seen = left_.generation();  // under mu_: a ticket leaves under it first
    }
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) co_return live();
    co_await left_.WaitChange(seen, left);
  }
}

std::unique_ptr<ConnectionRegistry::Ticket> ConnectionRegistry::Enter(
    std::function<void()> interrupt, const std::string& client, Refusal* why) {
  Refusal refusal = Refusal::kNone;
  std::lock_guard lock(mu_);
  const bool per_client = max_per_client_ > 0 && !client.empty();
  if (live_.size() >= max_) {
    refusal = Refusal::kNodeFull;
  } else if (per_client) {
    auto it = per_client_.find(client);
    if (it != per_client_.end() && it->second >= max_per_client_) refusal = Refusal::kClientFull;
  }
  if (why) *why = refusal;
  if (refusal != Refusal::kNone) return nullptr;
  uint64_t id = next_id_++;
  live_.emplace(id, std::move(interrupt));
  if (per_client) ++per_client_[client];
  if (shutting_down_) live_[id]();
  return std::make_unique<Ticket>(this, id, per_client ? client : std::string());
}

size_t ConnectionRegistry::live_of(const std::string& client) const {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

void ConnectionRegistry::Shutdown() {
  std::lock_guard lock(mu_);
  shutting_down_ = true;
  for (auto& [id, interrupt] : live_) interrupt();
}

size_t ConnectionRegistry::live() const {
  std::lock_guard lock(mu_);
  return live_.size();
}

Result<std::unique_ptr<Listener>> Listener::Bind(asio::io_context& io, const std::string& address) {
  Result<tcp::endpoint> ep = ParseEndpoint(address);
  if (!ep.ok()) return ep.status();
  std::unique_ptr<Listener> l(new Listener(io));
  asio::error_code ec;
  l->acceptor_.open(ep->protocol(), ec);
  if (!ec) l->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) l->acceptor_.bind(*ep, ec);
  if (!ec) l->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IoError("cannot listen on " + address + ": " + ec.message());
  return l;
}

void Listener::Start(Handler handler) {
  asio::co_spawn(acceptor_.get_executor(), AcceptLoop(std::move(handler)), asio::detached);
}

void Listener::Stop() {
  asio::post(acceptor_.get_executor(), [this] {
    asio::error_code ec;
    acceptor_.close(ec);
  });
}

asio::awaitable<void> Listener::AcceptLoop(Handler handler) {
  while (acceptor_.is_open()) {
    auto [ec, socket] =
        co_await acceptor_.async_accept(asio::make_strand(io_), as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (ec) {
      // EMFILE and friends: log, pause briefly so we do not spin, go on.
      spdlog::warn("accept: {}", ec.message());
      asio::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(as_tuple(asio::use_awaitable));
      continue;
    }
    asio::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto ex = socket.get_executor();
    asio::co_spawn(ex, handler(std::move(socket)), asio::detached);
  }
}

}  // namespace porcupine::net
