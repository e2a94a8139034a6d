#include "node/node.h"

#include <malloc.h>
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
#include "core/async.h"
#include "core/hash.h"
#include "core/invariant.h"
#include "core/password.h"
#include "mail/mail_service.h"
#include "mail/postmaster.h"
#include "manager/credentials.h"
#include "manager/local_manager.h"
#include "manager/router.h"
#include "net/client_key.h"
#include "net/listener.h"
#include "net/tls.h"
#include "node/acme_runtime.h"
#include "node/anti_entropy_runtime.h"
#include "node/backends.h"
#include "node/budget_metrics.h"
#include "node/change_watch.h"
#include "node/cluster_runtime.h"
#include "node/cluster_service.h"
#include "node/directory.h"
#include "node/protection.h"
#include "node/replication_runtime.h"
#include "node/session_driver.h"
#include "protocol/smtp/queue_id.h"
#include "rpc/client.h"
#include "rpc/server.h"

namespace porcupine::node {

using cluster::NodeId;

namespace {

// A new data directory's node id comes from the node name, so that a node
// whose disk was replaced (or wiped) comes back as itself and its peers give
// it back its replicas. Names must be unique in a cluster (docs/config.md).
uint32_t NodeIdFor(const std::string& name) {
  uint32_t id = static_cast<uint32_t>(Hash64("porcupine-node:" + name));
  return id == 0 ? 1 : id;
}

uint64_t RandomIncarnation() {
  uint64_t v = 0;
  if (sodium_init() >= 0) randombytes_buf(&v, sizeof v);
  return v;
}

}  // namespace

// An io_context whose pending handlers (suspended coroutines) can be
// destroyed while everything they reference is still alive. Its services —
// which timers and strands need when they are destroyed — live on until the
// io_context itself goes, last of all.
class IoContext : public asio::io_context {
 public:
  void DestroyHandlers() { shutdown(); }
};

struct Node::Impl : admin::AdminBackend {
  explicit Impl(Config c)
      : config(std::move(c)),
        registry(config.server.max_connections, config.node_limits.max_connections_per_address) {}

  // First member, so it is destroyed last; ~Node destroys its handlers first.
  IoContext io;

  Config config;
  asio::thread_pool cpu{2};
  net::ConnectionRegistry registry;
  admin::Metrics metrics;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Hlc> hlc;
  NodeId self = 0;
  uint32_t buckets = 0;
  std::unique_ptr<rpc::Client> rpc_client;
  std::unique_ptr<ProfileReplicas> profiles;
  std::unique_ptr<manager::LocalManager> manager;
  std::unique_ptr<ClusterRuntime> runtime;
  std::unique_ptr<ClusterDirectory> directory;
  std::unique_ptr<ReplicationRuntime> replication;
  std::unique_ptr<AntiEntropyRuntime> anti_entropy;
  std::unique_ptr<manager::ManagerRouter> router;
  std::unique_ptr<mail::LocalFragments> fragments;
  std::unique_ptr<manager::Credentials> credentials;
  std::unique_ptr<mail::LoginGate> logins;
  std::unique_ptr<mail::MailService> mail;
  std::unique_ptr<ChangeWatch> changes;  // for IMAP IDLE
  std::unique_ptr<ClusterService> cluster_service;
  std::unique_ptr<rpc::Server> rpc_server;
  std::vector<std::unique_ptr<net::Listener>> listeners;
  std::unique_ptr<admin::AdminServer> admin_server;
  std::unique_ptr<asio::signal_set> signals;
  std::atomic<bool> ready{false};
  std::atomic<bool> stopping{false};
  std::unique_ptr<smtp::SessionIds> smtp_ids;  // queue ids unique in the cluster
  Status CheckProtection();
  rpc::TlsFiles ClusterTls() const;
  // Shared by every SMTP and IMAP session: the message bytes they hold in
  // flight (SMTP DATA buffers, IMAP literals such as APPEND's message).
  MemoryBudget message_budget{config.node_limits.message_memory_bytes};
  std::unique_ptr<net::TlsServer> tls;       // null without [tls]
  std::unique_ptr<asio::signal_set> hangup;  // SIGHUP: reload the certificates
  std::unique_ptr<AcmeRuntime> acme;         // null without [acme]
  Status OpenStore();
  Status StartCluster(nlohmann::json& bound);
  Status BuildServices();
  void AddMetrics();
  // One coroutine per connection. Parameters are taken by value: a
  // lambda-coroutine's captures would die with the accept loop.
  asio::awaitable<void> ServeSmtp(net::tcp::socket socket, DriverOptions opt, bool submission);
  asio::awaitable<void> ServeSmtpPort(net::tcp::socket socket, DriverOptions opt) {
    return ServeSmtp(std::move(socket), std::move(opt), false);
  }
  asio::awaitable<void> ServeSubmission(net::tcp::socket socket, DriverOptions opt) {
    return ServeSmtp(std::move(socket), std::move(opt), true);
  }
  asio::awaitable<void> ServePop3(net::tcp::socket socket, DriverOptions opt);
  asio::awaitable<void> ServeImap(net::tcp::socket socket, DriverOptions opt);
  void InitPopulationKnown();
  Status BindAll();
  Status StartTls();
  Status StartAcme(nlohmann::json& bound);
  // Binds one client listener; "" is off. Records its address in `bound`.
  Status BindClient(const char* name, const std::string& addr, net::Listener::Handler handler,
                    nlohmann::json& bound);
  DriverOptions TlsListener(DriverOptions opt, const char* name, bool implicit);
  void ReloadTls();
  void WaitHangup();
  Status WriteListenFile(const nlohmann::json& bound);
  void StartSignals();
  void StartPostmaster();
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

  // Runs a Result-returning operation the same way.
  template <typename T>
  Result<T> BlockResult(asio::awaitable<Result<T>> op) {
    if (stopping) return Status::Unavailable("node is shutting down");
    auto f = asio::co_spawn(io, std::move(op), asio::use_future);
    if (f.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      return Status::Unavailable("timed out");
    }
    return f.get();
  }

  // admin::AdminBackend
  bool Ready() override { return ready.load() && !runtime->removed() && manager->Ready(); }
  Status AddUser(const std::string& address, const std::string& password) override;
  Status DeleteUser(const std::string& address) override;
  Status SetPassword(const std::string& address, const std::string& password) override;
  Result<std::vector<std::string>> ListUsers() override { return BlockResult(router->ListUsers()); }
  nlohmann::json ClusterStatus() override;
  Result<nlohmann::json> UserInfo(const std::string& address) override;
  Result<nlohmann::json> LocalFragment(const std::string& address) override;
  Status RemoveNode(const std::string& name_or_id) override;

  Result<std::string> LocalUser(const std::string& address);
  asio::awaitable<Status> ChangeUser(manager::UserOpKind kind, std::string user,
                                     std::string password);
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

asio::awaitable<Status> Node::Impl::ChangeUser(manager::UserOpKind kind, std::string user,
                                               std::string password) {
  manager::PasswordSecrets secrets;
  if (kind != manager::UserOpKind::kDelete) {
    PasswordCost cost{config.auth.argon2_opslimit, config.auth.argon2_memlimit_kib};
    auto work = [password, cost] { return HashPassword(password, cost); };
    Result<std::string> h = co_await RunOn(cpu.get_executor(), std::move(work));
    if (!h.ok()) co_return h.status();
    // The SCRAM-SHA-256 secrets are made with the hash, so that SCRAM works
    // for every password set from now on (docs/security.md).
    const unsigned rounds = config.auth.scram_iterations;
    auto scram = [password, rounds] { return ScramSecretsFromPassword(password, rounds); };
    Result<std::string> s = co_await RunOn(cpu.get_executor(), std::move(scram));
    if (!s.ok()) co_return s.status();
    secrets = {std::move(*h), std::move(*s)};
  } else {
    PORCUPINE_CO_RETURN_IF_ERROR(co_await mail->DeleteAllMail(user));
  }
  co_return co_await router->ManageUser(kind, std::move(user), std::move(secrets));
}

Status Node::Impl::AddUser(const std::string& address, const std::string& password) {
  Result<std::string> user = LocalUser(address);
  if (!user.ok()) return user.status();
  if (password.empty()) return Status::InvalidArgument("password must not be empty");
  return Block(ChangeUser(manager::UserOpKind::kCreate, *user, password));
}

Status Node::Impl::DeleteUser(const std::string& address) {
  Result<std::string> user = LocalUser(address);
  if (!user.ok()) return user.status();
  return Block(ChangeUser(manager::UserOpKind::kDelete, *user, ""));
}

Status Node::Impl::SetPassword(const std::string& address, const std::string& password) {
  Result<std::string> user = LocalUser(address);
  if (!user.ok()) return user.status();
  if (password.empty()) return Status::InvalidArgument("password must not be empty");
  return Block(ChangeUser(manager::UserOpKind::kSetPassword, *user, password));
}

nlohmann::json Node::Impl::ClusterStatus() {
  ClusterRuntime::Status_ st = runtime->status();
  nlohmann::json members = nlohmann::json::array();
  for (const ClusterRuntime::MemberStatus& m : st.members) {
    nlohmann::json j = {{"name", m.member.name},       {"id", fmt::format("{:08x}", m.member.id)},
                        {"address", m.member.address}, {"state", m.state},
                        {"buckets", m.buckets},        {"self", m.member.id == st.self}};
    j["load"] = m.load ? nlohmann::json(*m.load) : nlohmann::json(nullptr);
    members.push_back(std::move(j));
  }
  manager::LocalManager::Stats ms = manager->stats();
  return {{"epoch", fmt::format("{:x}", st.epoch)},
          {"buckets", st.buckets},
          {"self", fmt::format("{:08x}", st.self)},
          {"removed", st.removed},
          {"ready", Ready()},
          {"buckets_rebuilding", ms.buckets_rebuilding},
          {"views_installed", st.views_installed},
          {"members", std::move(members)}};
}

Result<nlohmann::json> Node::Impl::UserInfo(const std::string& address) {
  Result<std::string> user = LocalUser(address);
  if (!user.ok()) return user.status();
  Result<manager::UserInfo> info = BlockResult(router->LookupUser(*user));
  if (!info.ok()) return info.status();
  std::shared_ptr<const cluster::View> view = runtime->Current();
  auto name = [&](NodeId id) {
    const cluster::Member* m = view->Find(id);
    return m ? m->name : fmt::format("{:08x}", id);
  };
  const uint32_t bucket = BucketOf(*user, view->user_map.buckets());
  nlohmann::json map = nlohmann::json::array();
  for (NodeId n : info->mail_map) map.push_back(name(n));
  return nlohmann::json{{"address", *user},
                        {"bucket", bucket},
                        {"manager", name(view->user_map.ManagerOf(bucket))},
                        {"mail_map", std::move(map)}};
}

Result<nlohmann::json> Node::Impl::LocalFragment(const std::string& address) {
  Result<std::string> user = LocalUser(address);
  if (!user.ok()) return user.status();
  Result<std::vector<store::MessageMeta>> list =
      store->ListMessages(BucketOf(*user, buckets), *user, store::kInboxFolder, true);
  if (!list.ok()) return list.status();
  std::shared_ptr<const cluster::View> view = runtime->Current();
  nlohmann::json messages = nlohmann::json::array();
  for (const store::MessageMeta& m : *list) {
    nlohmann::json replicas = nlohmann::json::array();
    for (uint32_t r : m.replicas()) {
      const cluster::Member* member = view->Find(r);
      replicas.push_back(member ? member->name : fmt::format("{:08x}", r));
    }
    messages.push_back({{"id", store::MessageId::FromBytes(m.id())->ToHex()},
                        {"hlc", m.hlc()},
                        {"tombstone", m.tombstone()},
                        {"size", m.size()},
                        {"replicas", std::move(replicas)}});
  }
  return nlohmann::json{{"node", config.node.name}, {"messages", std::move(messages)}};
}

Status Node::Impl::RemoveNode(const std::string& name_or_id) {
  std::optional<NodeId> id = runtime->Resolve(name_or_id);
  if (!id) return Status::NotFound("no node named " + name_or_id);
  return runtime->Remove(*id);
}

// Refuses to serve what would be open to the network (node/protection.h)
// before anything is opened or bound.
Status Node::Impl::CheckProtection() {
  PORCUPINE_RETURN_IF_ERROR(CheckExposure(config));
  for (const std::string& w : InsecureWarnings(config)) spdlog::warn("{}", w);
  std::vector<std::string> warnings;
  PORCUPINE_RETURN_IF_ERROR(CheckClusterTls(config, &warnings));
  for (const std::string& w : warnings) spdlog::warn("{}", w);
  if (!config.cluster.tls_ca_file.empty()) {
    spdlog::info("cluster calls use mutual TLS (CA {}, certificate {})", config.cluster.tls_ca_file,
                 config.cluster.tls_cert_file);
  }
  return Status::Ok();
}

rpc::TlsFiles Node::Impl::ClusterTls() const {
  const Config::Cluster& cc = config.cluster;
  return {cc.tls_ca_file, cc.tls_cert_file, cc.tls_key_file,
          static_cast<unsigned>(cc.tls_refresh.count())};
}

Status Node::Impl::OpenStore() {
  store::Options options;
  options.data_dir = config.node.data_dir;
  options.sync = config.store.sync;
  options.block_cache_bytes = config.store.block_cache_mib << 20;
  store::NodeMeta init;
  init.set_version(1);
  init.set_node_id(NodeIdFor(config.node.name));
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
  self = meta.node_id();
  buckets = meta.buckets();
  hlc = std::make_unique<Hlc>(SystemNowMs);
  smtp_ids = std::make_unique<smtp::SessionIds>(self, *hlc);
  spdlog::info("node {} (id {:08x}) store open at {}", meta.name(), self, config.node.data_dir);
  return Status::Ok();
}

// A node knows which users exist when it has no other node to learn them
// from, when its store holds profiles (every node keeps every profile), or
// once a peer's reconstruction reached it (remembered in the meta family).
// A wiped or brand-new node with seeds does not: it answers an unknown user
// with a temporary failure until then (manager/local_manager.h).
void Node::Impl::InitPopulationKnown() {
  constexpr const char* kMetaKey = "population_known";
  bool other_seeds = false;
  for (const std::string& s : config.cluster.seeds) {
    other_seeds = other_seeds || (s != config.listen.cluster && s != config.cluster.advertise);
  }
  bool any_profile = false;
  Result<std::optional<std::string>> flag = store->GetMeta(kMetaKey);
  if (other_seeds && (!flag.ok() || !flag->has_value())) {
    (void)store->ScanProfiles([&](store::Bucket, const store::Profile&) { any_profile = true; });
  }
  const bool known = !other_seeds || any_profile || (flag.ok() && flag->has_value());
  if (!known) spdlog::info("no users known yet: unknown users get 451 until a peer is met");
  auto remember = [this] {
    Status st = store->PutMeta(kMetaKey, "1");
    if (!st.ok()) spdlog::warn("cannot remember that the population is known: {}", st.ToString());
  };
  // Found by the scan: remembered now, so later starts skip the scan.
  if (any_profile) remember();
  // Called from a rebuild RPC on an event-loop thread: the synced write goes
  // to the CPU pool.
  manager->SetPopulationKnown(known, [this, remember] { asio::post(cpu, remember); });
}

Status Node::Impl::BuildServices() {
  const Config::Cluster& cc = config.cluster;
  rpc::ClientOptions co;
  co.secret = cc.secret;
  co.tls = ClusterTls();
  co.max_message_bytes = cc.max_rpc_message_mib << 20;
  rpc_client = std::make_unique<rpc::Client>(co);

  manager::LocalManagerOptions mo;
  mo.self = self;
  mo.buckets = buckets;
  mo.rebuild_wait = cc.rebuild_wait;
  mo.uid_settle_window = cc.uid_settle_window;

  ClusterRuntimeOptions ro;
  ro.membership.buckets = buckets;
  ro.membership.ping_interval_ms = cc.ping_interval.count();
  ro.membership.ping_timeout_ms = cc.ping_timeout.count();
  ro.membership.probe_interval_ms = cc.probe_interval.count();
  ro.membership.accept_window_ms = cc.accept_window.count();
  ro.membership.round_timeout_ms = cc.round_timeout.count();
  ro.membership.max_jitter_ms = cc.max_jitter.count();
  ro.seeds = cc.seeds;
  ro.membership_rpc_timeout = cc.membership_rpc_timeout;
  ro.rpc_timeout = cc.rpc_timeout;
  ro.gossip_interval = cc.gossip_interval;
  ro.load_stale = cc.load_stale;
  ro.rebuild_chunk_users = cc.rebuild_chunk_users;

  profiles = std::make_unique<ProfileReplicas>(*store);
  manager = std::make_unique<manager::LocalManager>(mo, *profiles, *hlc);
  InitPopulationKnown();
  cluster::Member me{self, 0, "", config.node.name};
  runtime = std::make_unique<ClusterRuntime>(ro, io, me, *store, *rpc_client, *manager, *hlc,
                                             [this] { return fragments ? fragments->Load() : 0; });
  directory = std::make_unique<ClusterDirectory>(*runtime, *manager);
  ReplicationRuntimeOptions rpo;
  rpo.core.retry_max_ms = cc.replication_retry_max.count();
  rpo.core.takeover_ms = cc.takeover.count();
  replication = std::make_unique<ReplicationRuntime>(rpo, io, *store, *runtime, *directory);
  AntiEntropyOptions ao;
  ao.upkeep.interval_ms = std::chrono::milliseconds(cc.anti_entropy_interval).count();
  ao.upkeep.grace_ms = std::chrono::milliseconds(cc.tombstone_grace).count();
  ao.replication = cc.replication;
  anti_entropy = std::make_unique<AntiEntropyRuntime>(ao, io, *store, *runtime, *directory,
                                                      *replication, *hlc);
  runtime->AddViewObserver([this](const cluster::View& v) {
    replication->OnView(v);
    anti_entropy->OnView(v);
  });
  profiles->Attach(runtime.get(), replication.get());
  manager::RouterOptions rto;
  rto.retry_budget = cc.retry_budget;
  router = std::make_unique<manager::ManagerRouter>(rto, *runtime, *directory);
  mail::FragmentOptions fo;
  fo.ack_copies = cc.ack_copies;
  fragments = std::make_unique<mail::LocalFragments>(fo, *store, *hlc, self, *router, *runtime);
  fragments->SetReplication(replication.get());
  directory->SetLocalFragments(fragments.get());
  if (config.store.debug_op_delay.count() > 0) {
    spdlog::warn("store.debug_op_delay_ms = {}: every disk-bound operation is slowed (test only)",
                 config.store.debug_op_delay.count());
    fragments->SetDebugDelay(config.store.debug_op_delay);
  }
  manager::CredentialsOptions cro;
  cro.cache_entries = config.auth.login_cache_entries;
  cro.cache_ttl = config.auth.login_cache_ttl;
  // Unknown users are checked against this, with the cost of new hashes.
  Result<std::string> dummy =
      DummyPasswordHash(PasswordCost{config.auth.argon2_opslimit, config.auth.argon2_memlimit_kib});
  if (!dummy.ok()) return Status(dummy.status().code(), "auth: " + dummy.status().message());
  cro.dummy_hash = std::move(*dummy);
  credentials = std::make_unique<manager::Credentials>(cpu.get_executor(), cro, SteadyNowMs);
  logins = std::make_unique<mail::LoginGate>(config.auth.throttle, SteadyNowMs);
  mail::MailServiceOptions mso;
  mso.domains = config.mail.domains;
  mso.postmaster = config.mail.postmaster;
  mso.spread = cc.spread;
  mso.copies = cc.replication;
  mso.policy = *cluster::ParsePolicy(cc.policy);
  mso.uid_settle_window = cc.uid_settle_window;
  mso.delivery_budget = &message_budget;
  mail = std::make_unique<mail::MailService>(mso, *router, *runtime, *directory, *credentials,
                                             *logins, *hlc);
  ChangeWatchOptions cwo;
  // A watch call waits this long: well inside the data-path deadline, which
  // counts a late answer against the peer.
  cwo.wait = std::min(cwo.wait, cc.rpc_timeout / 2);
  changes = std::make_unique<ChangeWatch>(cwo, *directory, *runtime, io.get_executor());
  cluster_service =
      std::make_unique<ClusterService>(*runtime, *manager, *fragments, *profiles, buckets);
  cluster_service->SetReplication(replication.get());
  cluster_service->SetAntiEntropy(anti_entropy.get());
  return Status::Ok();
}

void Node::Impl::AddMetrics() {
  metrics.AddRefresher([this] {
    store::Store::Stats s = store->stats();
    metrics.store_syncs->Set(static_cast<double>(s.syncs));
    metrics.store_batches->Set(static_cast<double>(s.batches));
    metrics.store_last_group->Set(static_cast<double>(s.last_group));
    metrics.store_writes_refused->Set(static_cast<double>(s.message_writes_refused));
    metrics.store_bodyless->Set(static_cast<double>(fragments->bodyless_records()));
    metrics.ObserveGroups({s.group_sizes.begin(), s.group_sizes.end()}, s.batches);
    metrics.store_pending->Set(static_cast<double>(store->pending()));
    manager::LocalManager::Stats ms = manager->stats();
    metrics.users->Set(static_cast<double>(ms.users));
    metrics.buckets_managed->Set(ms.buckets_managed);
    metrics.buckets_rebuilding->Set(ms.buckets_rebuilding);
    ClusterRuntime::Status_ cs = runtime->status();
    metrics.view_epoch->Set(static_cast<double>(cs.epoch));
    size_t up = 0;
    for (const auto& m : cs.members) up += m.state == "up";
    metrics.view_members->Set(static_cast<double>(up));
    metrics.views_installed->Set(static_cast<double>(cs.views_installed));
    metrics.announcements_sent->Set(static_cast<double>(cs.announcements_sent));
    metrics.announcements_retried->Set(static_cast<double>(cs.announcements_failed));
    metrics.epoch_floor_write_failures->Set(static_cast<double>(cs.epoch_floor_write_failures));
    metrics.rpc_calls->Set(static_cast<double>(rpc_client->calls()));
    metrics.rpc_failures->Set(static_cast<double>(rpc_client->failures()));
    metrics.rpc_refused->Set(static_cast<double>(rpc_server ? rpc_server->refused() : 0));
    metrics.profile_copies_failed->Set(static_cast<double>(profiles->copies_failed()));
    ReplicationRuntime::Stats rs = replication->stats();
    metrics.replication_unretired->Set(static_cast<double>(rs.entries));
    metrics.replication_pushes->Set(static_cast<double>(rs.pushes));
    metrics.replication_push_failures->Set(static_cast<double>(rs.push_failures));
    metrics.below_ack_copies->Set(static_cast<double>(fragments->below_ack_copies()));
    metrics.replicas_widened->Set(static_cast<double>(fragments->widened()));
    metrics.invariant_violations->Set(static_cast<double>(InvariantViolations()));
    std::map<std::string, admin::Metrics::Backlog> peers;
    std::shared_ptr<const cluster::View> v = runtime->Current();
    const int64_t now = SystemNowMs();
    for (const auto& [id, b] : rs.backlog) {
      const cluster::Member* m = v->Find(id);
      std::string name = m ? m->name : fmt::format("{:08x}", id);
      peers[name] = {static_cast<double>(b.entries), static_cast<double>(b.bytes),
                     b.oldest_ms ? (now - b.oldest_ms) / 1000.0 : 0.0};
    }
    metrics.SetBacklog(peers);
    AntiEntropyRuntime::Stats as = anti_entropy->stats();
    metrics.anti_entropy_rounds->Set(static_cast<double>(as.rounds));
    metrics.anti_entropy_pushed->Set(static_cast<double>(as.pushed));
    metrics.rereplicated->Set(static_cast<double>(as.rereplicated));
    metrics.tombstones_purged->Set(static_cast<double>(as.purged));
    metrics.node_load->Set(static_cast<double>(fragments->Load()));
    mail::LoginGate::Stats ls = logins->stats();
    metrics.auth.failures->Set(static_cast<double>(ls.failures));
    metrics.auth.delayed->Set(static_cast<double>(ls.delayed));
    metrics.auth.refused_address->Set(static_cast<double>(ls.refused_address));
    metrics.auth.refused_account->Set(static_cast<double>(ls.refused_account));
    metrics.auth.tracked_addresses->Set(static_cast<double>(ls.tables.addresses));
    metrics.auth.tracked_accounts->Set(static_cast<double>(ls.tables.accounts));
    metrics.auth.trusted_pairs->Set(static_cast<double>(ls.tables.trusted));
    metrics.auth.evicted->Set(static_cast<double>(ls.tables.evicted));
    manager::Credentials::Stats crs = credentials->stats();
    metrics.auth.verifications->Set(static_cast<double>(crs.verifications));
    metrics.auth.cache_hits->Set(static_cast<double>(crs.cache_hits));
    metrics.auth.joined->Set(static_cast<double>(crs.joined));
  });
}

namespace {

// Counts a finished session's replies into its protocol's metrics.
void CountReplies(admin::Metrics::Protocol& m, const smtp::Session::Counters& c) {
  for (int cls = 2; cls <= 5; ++cls)
    m.replies[cls - 2]->Increment(static_cast<double>(c.replies[cls]));
  m.protocol_errors->Increment(static_cast<double>(c.errors));
}
void CountReplies(admin::Metrics::Protocol& m, const imap::Session::Counters& c) {
  m.replies[0]->Increment(static_cast<double>(c.ok));
  m.replies[2]->Increment(static_cast<double>(c.no));
  m.replies[3]->Increment(static_cast<double>(c.bad));
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

// The key the login throttle counts the client under.
std::string ClientOf(const net::tcp::socket& s) {
  asio::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? "unknown" : net::ClientKey(ep.address());
}

bool IsLoopback(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
  }
  return a.is_loopback();
}

// What the engine needs to know about the connection. An implicit-TLS
// session only starts once its handshake succeeded: it is secure from the
// first byte it sees.
// The key the connection counts under for limits.max_connections_per_address;
// "" exempts it (a loopback peer, unless configured otherwise).
std::string AddressLimitKey(const net::tcp::socket& s, const Config::NodeLimits& limits) {
  asio::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  if (limits.address_limit_exempts_loopback && IsLoopback(ep.address())) return "";
  return net::ClientKey(ep.address());
}

protocol::Transport TransportOf(const net::tcp::socket& s, const DriverOptions& opt) {
  protocol::Transport t;
  t.tls_available = opt.tls != nullptr;
  t.secure = opt.implicit_tls;
  asio::error_code ec;
  auto ep = s.remote_endpoint(ec);
  t.peer_loopback = !ec && IsLoopback(ep.address());
  return t;
}

// With [acme], its certificate (node/acme_runtime.h) serves its domains by
// SNI, and is the default when [tls] names none.
net::TlsOptions TlsOptionsOf(const Config::Tls& c, const Config& config) {
  net::TlsOptions o;
  for (const Config::Tls::Certificate& cert : c.certificates) {
    o.certificates.push_back({cert.domains, cert.cert_file, cert.key_file});
  }
  if (config.acme.enabled()) {
    AcmeRuntime::Files f = AcmeRuntime::FilesFor(config.node.data_dir);
    o.certificates.push_back({config.acme.domains, f.cert_file, f.key_file});
  }
  // The top-level certificate is the default; without one, the first listed.
  if (!c.cert_file.empty()) {
    o.default_certificate = {{}, c.cert_file, c.key_file};
  } else {
    o.default_certificate = o.certificates.front();
  }
  o.min_version = c.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (!c.ciphers.empty()) o.ciphers = c.ciphers;
  if (!c.ciphersuites.empty()) o.ciphersuites = c.ciphersuites;
  return o;
}

}  // namespace

Status Node::Impl::StartCluster(nlohmann::json& bound) {
  auto ep = net::ParseEndpoint(config.listen.cluster);
  if (!ep.ok()) return Status::InvalidArgument("listen.cluster: " + ep.status().message());
  PORCUPINE_RETURN_IF_ERROR(BuildServices());
  AddMetrics();
  AddMessageBudgetMetrics(metrics, message_budget);
  rpc::ServerOptions so;
  so.address = config.listen.cluster;
  so.secret = config.cluster.secret;
  so.tls = ClusterTls();
  so.max_message_bytes = config.cluster.max_rpc_message_mib << 20;
  rpc_server = std::make_unique<rpc::Server>(so, *cluster_service, io);
  Result<int> port = rpc_server->Start();
  if (!port.ok()) return Status::IoError("listen.cluster: " + port.status().message());
  const std::string host = ep->address().to_string();
  const std::string listen_addr =
      fmt::format("{}:{}", ep->address().is_v6() ? "[" + host + "]" : host, *port);
  bound["cluster"] = listen_addr;
  std::string advertise = config.cluster.advertise;
  if (advertise.empty()) {
    if (ep->address().is_unspecified()) {
      return Status::InvalidArgument(
          "cluster.advertise: required when listen.cluster binds all addresses");
    }
    advertise = listen_addr;
  }
  PORCUPINE_RETURN_IF_ERROR(replication->Start());
  anti_entropy->Start();
  changes->Start();
  return runtime->Start(advertise, RandomIncarnation());
}

Status Node::Impl::BindAll() {
  nlohmann::json bound = nlohmann::json::object();
  PORCUPINE_RETURN_IF_ERROR(StartCluster(bound));
  DriverOptions base;
  base.idle_timeout = config.server.idle_timeout;
  base.write_timeout = config.server.write_timeout;

  PORCUPINE_RETURN_IF_ERROR(StartTls());
  PORCUPINE_RETURN_IF_ERROR(StartAcme(bound));

  DriverOptions smtp_opt = base;
  smtp_opt.busy_reply = "421 4.3.2 Too many connections, try again later\r\n";
  smtp_opt.client_busy_reply =
      "421 4.7.0 Too many connections from your address, try again later\r\n";
  smtp_opt.metrics = &metrics.smtp();
  DriverOptions pop3_opt = base;
  pop3_opt.busy_reply = "-ERR [SYS/TEMP] Too many connections, try again later\r\n";
  pop3_opt.client_busy_reply =
      "-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n";
  pop3_opt.metrics = &metrics.pop3();
  DriverOptions imap_opt = base;
  imap_opt.idle_timeout = config.server.imap_idle_timeout;
  imap_opt.busy_reply = "* BYE [UNAVAILABLE] Too many connections, try again later\r\n";
  imap_opt.client_busy_reply =
      "* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n";
  imap_opt.metrics = &metrics.imap();
  // Each listener with its TLS role: STARTTLS offered when there is a
  // certificate, or implicit TLS (the config checked it has one).
  struct Client {
    const char* name;
    const std::string& addr;
    DriverOptions opt;
    asio::awaitable<void> (Impl::*serve)(net::tcp::socket, DriverOptions);
  };
  const Client clients[] = {
      {"smtp", config.listen.smtp, TlsListener(smtp_opt, "smtp", false), &Impl::ServeSmtpPort},
      {"submission", config.listen.submission, TlsListener(smtp_opt, "submission", false),
       &Impl::ServeSubmission},
      {"submissions", config.listen.submissions, TlsListener(smtp_opt, "submissions", true),
       &Impl::ServeSubmission},
      {"pop3", config.listen.pop3, TlsListener(pop3_opt, "pop3", false), &Impl::ServePop3},
      {"pop3s", config.listen.pop3s, TlsListener(pop3_opt, "pop3s", true), &Impl::ServePop3},
      {"imap", config.listen.imap, TlsListener(imap_opt, "imap", false), &Impl::ServeImap},
      {"imaps", config.listen.imaps, TlsListener(imap_opt, "imaps", true), &Impl::ServeImap},
  };
  for (const Client& c : clients) {
    auto serve = c.serve;
    DriverOptions opt = c.opt;
    PORCUPINE_RETURN_IF_ERROR(BindClient(
        c.name, c.addr,
        [this, serve, opt](net::tcp::socket s) { return (this->*serve)(std::move(s), opt); },
        bound));
  }

  if (!config.listen.admin.empty()) {
    auto ep = net::ParseEndpoint(config.listen.admin);
    if (!ep.ok()) return Status::InvalidArgument("listen.admin: " + ep.status().message());
    admin::AdminOptions ao;
    ao.token = config.admin.token;
    ao.limits = config.admin.limits;
    if (!config.admin.tls_cert_file.empty()) {
      auto cert = net::ReloadingServerCert::Load(
          config.admin.tls_cert_file, config.admin.tls_key_file, config.admin.tls_refresh);
      if (!cert.ok()) {
        return Status(cert.status().code(), "admin.tls_cert_file: " + cert.status().message());
      }
      ao.tls = std::move(*cert);
    }
    admin_server = std::make_unique<admin::AdminServer>(ao, *this, metrics);
    auto port = admin_server->Listen(ep->address().to_string(), ep->port());
    if (!port.ok()) return Status::IoError("listen.admin: " + port.status().message());
    bound["admin"] = fmt::format("{}:{}", ep->address().to_string(), *port);
    admin_server->Start();
  }
  return WriteListenFile(bound);
}

Status Node::Impl::BindClient(const char* name, const std::string& addr,
                              net::Listener::Handler handler, nlohmann::json& bound) {
  if (addr.empty()) return Status::Ok();
  auto l = net::Listener::Bind(io, addr);
  if (!l.ok()) {
    return Status(l.status().code(), std::string("listen.") + name + ": " + l.status().message());
  }
  auto ep = (*l)->local_endpoint();
  bound[name] = fmt::format("{}:{}", ep.address().to_string(), ep.port());
  (*l)->Start(std::move(handler));
  listeners.push_back(std::move(*l));
  return Status::Ok();
}

Status Node::Impl::StartTls() {
  if (!config.tls.enabled() && !config.acme.enabled()) return Status::Ok();
  if (config.acme.enabled()) {
    Status st = AcmeRuntime::PrepareFiles(*store, AcmeRuntime::FilesFor(config.node.data_dir),
                                          config.acme.domains);
    if (!st.ok()) return Status(st.code(), "acme: " + st.message());
  }
  auto server = net::TlsServer::Create(TlsOptionsOf(config.tls, config));
  if (!server.ok()) return Status::InvalidArgument("tls." + server.status().message());
  tls = std::move(*server);
  metrics.tls_certificate_expiry->Set(static_cast<double>(tls->Current()->earliest_expiry()));
  spdlog::info("tls: {} certificate(s) loaded", tls->Current()->size());
  return Status::Ok();
}

Status Node::Impl::StartAcme(nlohmann::json& bound) {
  if (!config.acme.enabled()) return Status::Ok();
  acme = std::make_unique<AcmeRuntime>(config, *store, *profiles, *hlc, *runtime, tls.get(),
                                       metrics, io);
  std::string addr;
  PORCUPINE_RETURN_IF_ERROR(acme->Start(&addr));
  if (!addr.empty()) bound["acme_http"] = addr;
  return Status::Ok();
}

DriverOptions Node::Impl::TlsListener(DriverOptions opt, const char* name, bool implicit) {
  if (!tls) return opt;
  opt.tls = tls.get();
  opt.implicit_tls = implicit;
  opt.handshake_timeout = config.tls.handshake_timeout;
  std::vector<std::string> versions(std::begin(net::kTlsVersionNames),
                                    std::end(net::kTlsVersionNames));
  std::vector<std::string> reasons;
  for (net::TlsFailure f : net::kAllTlsFailures) reasons.push_back(net::TlsFailureName(f));
  opt.tls_metrics = metrics.AddTlsListener(name, versions, reasons);
  return opt;
}

// SIGHUP: new handshakes get the certificates on disk now; sessions already
// secure keep theirs. A failed reload keeps the old ones.
void Node::Impl::ReloadTls() {
  if (!tls) {
    spdlog::info("SIGHUP: no [tls] configured, nothing to reload");
    return;
  }
  Status st = tls->Reload();
  if (!st.ok()) {
    metrics.tls_reloads_failed->Increment();
    spdlog::error("SIGHUP: tls reload failed, keeping the loaded certificates: tls.{}",
                  st.message());
    return;
  }
  metrics.tls_reloads_ok->Increment();
  metrics.tls_certificate_expiry->Set(static_cast<double>(tls->Current()->earliest_expiry()));
  spdlog::info("SIGHUP: tls reloaded, {} certificate(s)", tls->Current()->size());
}

void Node::Impl::WaitHangup() {
  hangup->async_wait([this](const asio::error_code& ec, int) {
    if (ec) return;
    // Reading the files is blocking work: off the event loop.
    asio::post(cpu, [this] { ReloadTls(); });
    WaitHangup();
  });
}

asio::awaitable<void> Node::Impl::ServeSmtp(net::tcp::socket socket, DriverOptions opt,
                                            bool submission) {
  smtp::SessionInfo info;
  info.server_hostname = config.mail.hostname;
  info.peer_ip = PeerIp(socket);
  info.transport = TransportOf(socket, opt);
  info.transport.plaintext_auth_anywhere = config.auth.allow_plaintext_without_tls;
  info.submission = submission;
  info.require_sender_match = config.submission.require_sender_match;
  info.session_id = smtp_ids->Next();
  info.now_rfc5322 = &NowRfc5322;
  info.data_budget = &message_budget;
  smtp::Session session(config.smtp, std::move(info));
  SmtpBackend backend(*mail, metrics, ClientOf(socket));
  backend.scram().set_dummy_iterations(config.auth.scram_iterations);
  std::string limit_key = AddressLimitKey(socket, config.node_limits);
  if (co_await DriveSession(std::move(socket), session, backend, opt, registry,
                            std::move(limit_key))) {
    CountReplies(metrics.smtp(), session.counters());
  }
}

asio::awaitable<void> Node::Impl::ServePop3(net::tcp::socket socket, DriverOptions opt) {
  pop3::SessionInfo info;
  info.server_hostname = config.mail.hostname;
  info.transport = TransportOf(socket, opt);
  info.transport.plaintext_auth_anywhere = config.auth.allow_plaintext_without_tls;
  pop3::Session session(config.pop3, std::move(info));
  Pop3Backend backend(*mail, metrics, ClientOf(socket));
  backend.scram().set_dummy_iterations(config.auth.scram_iterations);
  std::string limit_key = AddressLimitKey(socket, config.node_limits);
  if (co_await DriveSession(std::move(socket), session, backend, opt, registry,
                            std::move(limit_key))) {
    CountReplies(metrics.pop3(), session.counters());
  }
}

asio::awaitable<void> Node::Impl::ServeImap(net::tcp::socket socket, DriverOptions opt) {
  imap::SessionInfo info;
  info.server_hostname = config.mail.hostname;
  info.transport = TransportOf(socket, opt);
  info.transport.plaintext_auth_anywhere = config.auth.allow_plaintext_without_tls;
  info.message_budget = &message_budget;
  imap::Session session(config.imap, std::move(info));
  ImapBackend backend(*mail, metrics, ClientOf(socket), changes.get(),
                      config.server.imap_idle_recheck);
  backend.scram().set_dummy_iterations(config.auth.scram_iterations);
  std::string limit_key = AddressLimitKey(socket, config.node_limits);
  if (co_await DriveSession(std::move(socket), session, backend, opt, registry,
                            std::move(limit_key))) {
    CountReplies(metrics.imap(), session.counters());
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
  hangup = std::make_unique<asio::signal_set>(io, SIGHUP);
  WaitHangup();
}

// The default postmaster mailbox is created when absent; a configured one
// is only checked (docs/config.md). In the background: the cluster may not
// have formed yet.
void Node::Impl::StartPostmaster() {
  mail::PostmasterOptions po;
  po.create = config.mail.postmaster.empty();
  po.mailbox = po.create ? mail::DefaultPostmaster(config.mail.domains) : config.mail.postmaster;
  auto stop = [this] { return stopping.load(); };
  asio::co_spawn(io, mail::EnsurePostmaster(std::move(po), *router, std::move(stop)),
                 asio::detached);
}

void Node::Impl::BeginShutdown() {
  if (stopping.exchange(true)) return;
  ready = false;
  if (hangup) hangup->cancel();
  if (acme) acme->RequestStop();
  for (auto& l : listeners) l->Stop();
  registry.Shutdown();
  asio::co_spawn(io, DrainThenStop(), asio::detached);
}

asio::awaitable<void> Node::Impl::DrainThenStop() {
  // Sessions finish their in-flight request and say goodbye; give them a
  // bounded time, then stop the loop (remaining sockets are closed).
  constexpr auto kDrain = std::chrono::seconds(10);
  if (size_t open = co_await registry.WaitDrained(kDrain); open > 0) {
    spdlog::warn("{} sessions still open at shutdown", open);
  }
  // Inter-node calls in flight finish on this loop: stop the RPC server from
  // another thread while the loop still runs.
  if (runtime) runtime->Stop();
  if (replication) replication->Stop();
  if (anti_entropy) anti_entropy->Stop();
  if (changes) changes->Stop();
  if (rpc_server) {
    auto stop_server = [this](auto done) {  // named: g++ 12 coroutines
      std::thread([this, done = std::move(done)]() mutable {
        rpc_server->Shutdown(2000);
        done(true);
      }).detach();
    };
    co_await AwaitCallback<bool>(std::move(stop_server));
  }
  io.stop();
}

Node::Node(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Node::~Node() {
  if (impl_->admin_server) impl_->admin_server->Stop();
  if (impl_->runtime) impl_->runtime->Join();
  if (impl_->rpc_client) impl_->rpc_client->Shutdown();
  impl_->signals.reset();
  impl_->hangup.reset();
  if (impl_->acme) impl_->acme->Stop();
  impl_->listeners.clear();
  impl_->cpu.join();
  if (impl_->rpc_server) {
    // Still serving (Start failed after the RPC listener came up): calls in
    // flight finish on the loop, so run it while the server stops.
    impl_->io.restart();
    std::thread loop([this] { impl_->io.run_for(std::chrono::seconds(3)); });
    impl_->rpc_server->Shutdown(1000);
    impl_->io.stop();
    loop.join();
  }
  // Suspended sessions and cluster coroutines go now, while the objects they
  // use exist; the members go after, and the io_context's services last.
  impl_->io.DestroyHandlers();
  if (impl_->store) impl_->store->Close();
}

Status Node::Start() {
  PORCUPINE_RETURN_IF_ERROR(impl_->CheckProtection());
  // Message buffers up to limits.smtp_max_message_bytes come and go by the
  // hundred (smtp/session_data.cc). glibc serves blocks below its mmap
  // threshold, which rises to 32 MiB as large blocks are freed, from its
  // heaps, where freed holes between live blocks stay resident: 500 sessions
  // of 49 MB under a 512 MiB budget peaked 200 MiB higher than with every
  // block of 1 MiB or more mapped on its own and returned when freed.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::error_code ec;
  std::filesystem::create_directories(impl_->config.node.data_dir, ec);
  if (ec) return Status::IoError("node.data_dir: " + ec.message());
  PORCUPINE_RETURN_IF_ERROR(impl_->OpenStore());
  PORCUPINE_RETURN_IF_ERROR(impl_->BindAll());
  impl_->StartSignals();
  impl_->StartPostmaster();
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
  // Nothing may complete onto the stopped loop after this.
  if (impl_->runtime) impl_->runtime->Join();
  if (impl_->anti_entropy) impl_->anti_entropy->Stop();
  if (impl_->rpc_client) impl_->rpc_client->Shutdown();
  if (impl_->acme) impl_->acme->Stop();
  impl_->store->Close();
  spdlog::info("stopped");
}

void Node::Stop() {
  asio::post(impl_->io, [this] { impl_->BeginShutdown(); });
}

}  // namespace porcupine::node
