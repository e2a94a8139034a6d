#include "node/node.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "admin/admin_server.h"
#include "admin/metrics.h"
#include "core/address.h"
#include "mail/mail_service.h"
#include "manager/local_manager.h"
#include "net/listener.h"
#include "node/backends.h"
#include "node/session_driver.h"

namespace porcupine::node {

using cluster::NodeId;

namespace {

// The foundation's view: this node alone, managing every bucket.
class SingleNodeDirectory : public manager::ManagerDirectory, public mail::NodeDirectory {
 public:
  SingleNodeDirectory(NodeId self, manager::UserManager& manager, mail::FragmentStore& fragments)
      : self_(self), manager_(manager), fragments_(fragments) {}
  manager::UserManager* ManagerOn(NodeId node) override {
    return node == self_ ? &manager_ : nullptr;
  }
  NodeId self() const override { return self_; }
  std::vector<NodeId> LiveNodes() const override { return {self_}; }
  mail::FragmentStore* FragmentsOn(NodeId node) override {
    return node == self_ ? &fragments_ : nullptr;
  }

 private:
  NodeId self_;
  manager::UserManager& manager_;
  mail::FragmentStore& fragments_;
};

uint32_t RandomNodeId() {
  if (sodium_init() < 0) return 1;
  uint32_t id = 0;
  while (id == 0) id = randombytes_random();
  return id;
}

}  // namespace

struct Node::Impl : admin::AdminBackend {
  explicit Impl(Config c) : config(std::move(c)), registry(config.server.max_connections) {}

  Config config;
  asio::thread_pool cpu{2};
  net::ConnectionRegistry registry;
  admin::Metrics metrics;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Hlc> hlc;
  std::unique_ptr<cluster::UserMap> user_map;
  std::unique_ptr<manager::LocalManager> manager;
  std::unique_ptr<mail::LocalFragments> fragments;
  std::unique_ptr<SingleNodeDirectory> directory;
  std::unique_ptr<mail::MailService> mail;
  std::vector<std::unique_ptr<net::Listener>> listeners;
  std::unique_ptr<admin::AdminServer> admin_server;
  std::unique_ptr<asio::signal_set> signals;
  std::atomic<bool> ready{false};
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> session_ids{0};
  // Last member, so it is destroyed first: destroying it destroys suspended
  // session coroutines, whose destructors still use the members above.
  // (~Node releases the listeners and signals before that.)
  asio::io_context io;

  Status OpenStore();
  // One coroutine per connection. Parameters are taken by value: a
  // lambda-coroutine's captures would die with the accept loop.
  asio::awaitable<void> ServeSmtp(net::tcp::socket socket, DriverOptions opt);
  asio::awaitable<void> ServePop3(net::tcp::socket socket, DriverOptions opt);
  Status BindAll();
  Status WriteListenFile(const nlohmann::json& bound);
  void StartSignals();
  void BeginShutdown();
  asio::awaitable<void> DrainThenStop();

  // Runs an operation on the event loop for an admin thread, bounded so a
  // stopping loop cannot hang the admin server.
  Status Block(asio::awaitable<Status> op) {
    if (stopping) return Status::Unavailable("node is shutting down");
    auto f = asio::co_spawn(io, std::move(op), asio::use_future);
    if (f.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      return Status::Unavailable("timed out");
    }
    return f.get();
  }

  // admin::AdminBackend
  bool Ready() override { return ready.load(); }
  Status AddUser(const std::string& address, const std::string& password) override;
  Status DeleteUser(const std::string& address) override;
  Status SetPassword(const std::string& address, const std::string& password) override;
  std::vector<std::string> ListUsers() override { return manager->ListUsers(); }

  Result<std::string> LocalUser(const std::string& address);
};

Result<std::string> Node::Impl::LocalUser(const std::string& address) {
  std::optional<std::string> user = CanonicalAddress(address);
  if (!user) return Status::InvalidArgument("not a mail address: " + address);
  const auto& domains = config.mail.domains;
  if (std::find(domains.begin(), domains.end(), DomainOf(*user)) == domains.end()) {
    return Status::InvalidArgument("domain is not local: " + std::string(DomainOf(*user)));
  }
  return *user;
}

Status Node::Impl::AddUser(const std::string& address, const std::string& password) {
  Result<std::string> user = LocalUser(address);
  if (!user.ok()) return user.status();
  if (password.empty()) return Status::InvalidArgument("password must not be empty");
  return Block(manager->CreateUser(*user, password));
}

Status Node::Impl::DeleteUser(const std::string& address) {
  Result<std::string> user = LocalUser(address);
  if (!user.ok()) return user.status();
  PORCUPINE_RETURN_IF_ERROR(Block(mail->DeleteAllMail(*user)));
  return Block(manager->DeleteUser(*user));
}

Status Node::Impl::SetPassword(const std::string& address, const std::string& password) {
  Result<std::string> user = LocalUser(address);
  if (!user.ok()) return user.status();
  if (password.empty()) return Status::InvalidArgument("password must not be empty");
  return Block(manager->SetPassword(*user, password));
}

Status Node::Impl::OpenStore() {
  store::Options options;
  options.data_dir = config.node.data_dir;
  options.sync = config.store.sync;
  options.block_cache_bytes = config.store.block_cache_mib << 20;
  store::NodeMeta init;
  init.set_version(1);
  init.set_node_id(RandomNodeId());
  init.set_name(config.node.name);
  init.set_buckets(static_cast<uint32_t>(config.cluster.buckets));
  auto opened = store::Store::Open(options, init);
  if (!opened.ok()) return opened.status();
  store = std::move(*opened);
  const store::NodeMeta& meta = store->node_meta();
  if (meta.buckets() != static_cast<uint32_t>(config.cluster.buckets)) {
    return Status::InvalidArgument(fmt::format(
        "cluster.buckets: this data directory was created with {} buckets, config says {}",
        meta.buckets(), config.cluster.buckets));
  }
  const NodeId self = meta.node_id();
  hlc = std::make_unique<Hlc>(SystemNowMs);
  user_map = std::make_unique<cluster::UserMap>(meta.buckets(), self);
  manager::LocalManagerOptions mo;
  mo.self = self;
  mo.buckets = meta.buckets();
  mo.password_cost = {config.auth.argon2_opslimit, config.auth.argon2_memlimit_kib};
  manager = std::make_unique<manager::LocalManager>(mo, *store, cpu.get_executor());
  fragments = std::make_unique<mail::LocalFragments>(*store, *hlc, meta.buckets());
  directory = std::make_unique<SingleNodeDirectory>(self, *manager, *fragments);
  mail::MailServiceOptions mso;
  mso.domains = config.mail.domains;
  mso.spread = config.cluster.spread;
  mso.replication = 1;  // one node: one copy (replication issue)
  mail = std::make_unique<mail::MailService>(mso, *user_map, *directory, *directory, *hlc);
  PORCUPINE_RETURN_IF_ERROR(manager->Rebuild());
  spdlog::info("node {} (id {:08x}) store open at {}, {} users", meta.name(), self,
               config.node.data_dir, manager->user_count());
  metrics.AddRefresher([this] {
    store::Store::Stats s = store->stats();
    metrics.store_syncs->Set(static_cast<double>(s.syncs));
    metrics.store_batches->Set(static_cast<double>(s.batches));
    metrics.store_last_group->Set(static_cast<double>(s.last_group));
    metrics.ObserveGroups({s.group_sizes.begin(), s.group_sizes.end()}, s.batches);
    metrics.store_pending->Set(static_cast<double>(store->pending()));
    metrics.users->Set(static_cast<double>(manager->user_count()));
  });
  return Status::Ok();
}

namespace {

// Counts a finished session's replies into its protocol's metrics.
void CountReplies(admin::Metrics::Protocol& m, const smtp::Session::Counters& c) {
  for (int cls = 2; cls <= 5; ++cls)
    m.replies[cls - 2]->Increment(static_cast<double>(c.replies[cls]));
  m.protocol_errors->Increment(static_cast<double>(c.errors));
}
void CountReplies(admin::Metrics::Protocol& m, const pop3::Session::Counters& c) {
  m.replies[0]->Increment(static_cast<double>(c.ok));
  m.replies[3]->Increment(static_cast<double>(c.err));
  m.protocol_errors->Increment(static_cast<double>(c.errors));
}

std::string PeerIp(const net::tcp::socket& s) {
  asio::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? "unknown" : ep.address().to_string();
}

}  // namespace

Status Node::Impl::BindAll() {
  nlohmann::json bound = nlohmann::json::object();
  DriverOptions base;
  base.idle_timeout = config.server.idle_timeout;
  base.write_timeout = config.server.write_timeout;

  auto bind = [&](const char* name, const std::string& addr, net::Listener::Handler handler) {
    if (addr.empty()) return Status::Ok();
    auto l = net::Listener::Bind(io, addr);
    if (!l.ok())
      return Status(l.status().code(), std::string("listen.") + name + ": " + l.status().message());
    auto ep = (*l)->local_endpoint();
    bound[name] = fmt::format("{}:{}", ep.address().to_string(), ep.port());
    (*l)->Start(std::move(handler));
    listeners.push_back(std::move(*l));
    return Status::Ok();
  };

  DriverOptions smtp_opt = base;
  smtp_opt.busy_reply = "421 4.3.2 Too many connections, try again later\r\n";
  smtp_opt.metrics = &metrics.smtp();
  PORCUPINE_RETURN_IF_ERROR(bind("smtp", config.listen.smtp, [this, smtp_opt](net::tcp::socket s) {
    return ServeSmtp(std::move(s), smtp_opt);
  }));
  DriverOptions pop3_opt = base;
  pop3_opt.busy_reply = "-ERR [SYS/TEMP] Too many connections, try again later\r\n";
  pop3_opt.metrics = &metrics.pop3();
  PORCUPINE_RETURN_IF_ERROR(bind("pop3", config.listen.pop3, [this, pop3_opt](net::tcp::socket s) {
    return ServePop3(std::move(s), pop3_opt);
  }));

  if (!config.listen.admin.empty()) {
    auto ep = net::ParseEndpoint(config.listen.admin);
    if (!ep.ok()) return Status::InvalidArgument("listen.admin: " + ep.status().message());
    admin_server = std::make_unique<admin::AdminServer>(admin::AdminOptions{config.admin.token},
                                                        *this, metrics);
    auto port = admin_server->Listen(ep->address().to_string(), ep->port());
    if (!port.ok()) return Status::IoError("listen.admin: " + port.status().message());
    bound["admin"] = fmt::format("{}:{}", ep->address().to_string(), *port);
    admin_server->Start();
  }
  return WriteListenFile(bound);
}

asio::awaitable<void> Node::Impl::ServeSmtp(net::tcp::socket socket, DriverOptions opt) {
  smtp::SessionInfo info;
  info.server_hostname = config.mail.hostname;
  info.peer_ip = PeerIp(socket);
  info.session_id = fmt::format("{:08x}{:06x}", static_cast<uint32_t>(SystemNowMs() / 1000),
                                session_ids.fetch_add(1) & 0xffffff);
  info.now_rfc5322 = &NowRfc5322;
  smtp::Session session(config.smtp, std::move(info));
  SmtpBackend backend(*mail, metrics);
  if (co_await DriveSession(std::move(socket), session, backend, opt, registry)) {
    CountReplies(metrics.smtp(), session.counters());
  }
}

asio::awaitable<void> Node::Impl::ServePop3(net::tcp::socket socket, DriverOptions opt) {
  pop3::SessionInfo info;
  info.server_hostname = config.mail.hostname;
  pop3::Session session(config.pop3, std::move(info));
  Pop3Backend backend(*mail, metrics);
  if (co_await DriveSession(std::move(socket), session, backend, opt, registry)) {
    CountReplies(metrics.pop3(), session.counters());
  }
}

Status Node::Impl::WriteListenFile(const nlohmann::json& bound) {
  namespace fs = std::filesystem;
  fs::path final_path = fs::path(config.node.data_dir) / "listen.json";
  fs::path tmp = final_path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << bound.dump(2) << "\n";
    if (!out) return Status::IoError("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, final_path, ec);
  if (ec) return Status::IoError("cannot write " + final_path.string() + ": " + ec.message());
  spdlog::info("listening: {}", bound.dump());
  return Status::Ok();
}

void Node::Impl::StartSignals() {
  signals = std::make_unique<asio::signal_set>(io, SIGINT, SIGTERM);
  signals->async_wait([this](const asio::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    BeginShutdown();
  });
}

void Node::Impl::BeginShutdown() {
  if (stopping.exchange(true)) return;
  ready = false;
  for (auto& l : listeners) l->Stop();
  registry.Shutdown();
  asio::co_spawn(io, DrainThenStop(), asio::detached);
}

asio::awaitable<void> Node::Impl::DrainThenStop() {
  // Sessions finish their in-flight request and say goodbye; give them a
  // bounded time, then stop the loop (remaining sockets are closed).
  constexpr auto kDrain = std::chrono::seconds(10);
  auto deadline = std::chrono::steady_clock::now() + kDrain;
  asio::steady_timer t(io);
  while (registry.live() > 0 && std::chrono::steady_clock::now() < deadline) {
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(asio::use_awaitable);
  }
  if (registry.live() > 0) spdlog::warn("{} sessions still open at shutdown", registry.live());
  io.stop();
}

Node::Node(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Node::~Node() {
  if (impl_->admin_server) impl_->admin_server->Stop();
  impl_->signals.reset();
  impl_->listeners.clear();
  impl_->cpu.join();
  if (impl_->store) impl_->store->Close();
}

Status Node::Start() {
  std::error_code ec;
  std::filesystem::create_directories(impl_->config.node.data_dir, ec);
  if (ec) return Status::IoError("node.data_dir: " + ec.message());
  PORCUPINE_RETURN_IF_ERROR(impl_->OpenStore());
  PORCUPINE_RETURN_IF_ERROR(impl_->BindAll());
  impl_->StartSignals();
  impl_->ready = true;
  return Status::Ok();
}

void Node::Run() {
  int threads = impl_->config.node.io_threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([this] { impl_->io.run(); });
  impl_->io.run();
  for (auto& t : pool) t.join();
  if (impl_->admin_server) impl_->admin_server->Stop();
  impl_->store->Close();
  spdlog::info("stopped");
}

void Node::Stop() {
  asio::post(impl_->io, [this] { impl_->BeginShutdown(); });
}

}  // namespace porcupine::node
