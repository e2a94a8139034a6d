#include "node/acme_runtime.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "acme/client.h"
#include "acme/plan.h"
#include "core/hash.h"
#include "net/listener.h"
#include "net/pki.h"

namespace porcupine::node {
namespace {

namespace fs = std::filesystem;

int64_t NowS() { return SystemNowMs() / 1000; }

// Replaces `path` with `text` whole: a reader sees the old or the new file.
Status WriteAtomically(const std::string& path, const std::string& text, bool secret) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    out << text;
    if (!out) return Status::IoError("cannot write " + tmp);
  }
  std::error_code ec;
  if (secret) fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write, ec);
  fs::rename(tmp, path, ec);
  if (ec) return Status::IoError("cannot write " + path + ": " + ec.message());
  return Status::Ok();
}

Status WritePair(const AcmeRuntime::Files& files, const std::string& cert_pem,
                 const std::string& key_pem) {
  std::error_code ec;
  fs::create_directories(fs::path(files.cert_file).parent_path(), ec);
  if (ec) return Status::IoError("cannot create the acme directory: " + ec.message());
  // The key first: a TLS reload between the two sees a mismatch and keeps
  // the old pair rather than serving a new certificate with an old key.
  PORCUPINE_RETURN_IF_ERROR(WriteAtomically(files.key_file, key_pem, true));
  return WriteAtomically(files.cert_file, cert_pem, false);
}

Result<acme::Record> RecordFrom(store::Store& store) {
  const store::Bucket bucket = BucketOf(acme::kRecordUser, store.node_meta().buckets());
  Result<std::optional<store::Profile>> p = store.GetProfile(bucket, acme::kRecordUser);
  if (!p.ok()) return p.status();
  if (!p->has_value() || (*p)->tombstone()) return acme::Record{};
  return acme::DecodeRecord((*p)->system_record());
}

bool UsableNow(const acme::Record& r) {
  return r.has_certificate() && r.certificate.not_after > NowS() &&
         net::CheckKeyPair({r.certificate.cert_pem, r.certificate.key_pem}).ok();
}

}  // namespace

AcmeRuntime::Files AcmeRuntime::FilesFor(const std::string& data_dir) {
  fs::path dir = fs::path(data_dir) / "acme";
  return {(dir / "cert.pem").string(), (dir / "key.pem").string()};
}

Status AcmeRuntime::PrepareFiles(store::Store& store, const Files& files,
                                 const std::vector<std::string>& domains) {
  Result<acme::Record> r = RecordFrom(store);
  if (!r.ok()) spdlog::warn("acme: stored record unreadable: {}", r.status().ToString());
  if (r.ok() && UsableNow(*r)) {
    return WritePair(files, r->certificate.cert_pem, r->certificate.key_pem);
  }
  if (fs::exists(files.cert_file) && fs::exists(files.key_file)) return Status::Ok();
  // A placeholder until the CA has issued one: TLS works (unverified) from
  // the start and every listener can bind.
  Result<net::KeyPair> ca = net::MakeCa("porcupine acme placeholder", 30);
  if (!ca.ok()) return ca.status();
  net::CertSpec spec;
  spec.common_name = domains.front();
  spec.hosts = domains;
  spec.days = 30;
  Result<net::KeyPair> pair = net::IssueCert(*ca, spec);
  if (!pair.ok()) return pair.status();
  spdlog::warn("acme: no certificate yet; serving a self-signed placeholder for {}",
               fmt::join(domains, ", "));
  return WritePair(files, pair->cert_pem, pair->key_pem);
}

AcmeRuntime::AcmeRuntime(const Config& config, store::Store& store, ProfileReplicas& profiles,
                         Hlc& hlc, ClusterRuntime& runtime, net::TlsServer* tls,
                         admin::Metrics& metrics, asio::io_context& io)
    : config_(config),
      acme_(config.acme),
      domains_(acme::DomainsToCertify(config.acme.domains, config.mail.hostname)),
      files_(FilesFor(config.node.data_dir)),
      store_(store),
      profiles_(profiles),
      hlc_(hlc),
      runtime_(runtime),
      tls_(tls),
      metrics_(metrics),
      io_(io) {
  AddMetrics();
}

AcmeRuntime::~AcmeRuntime() { Stop(); }

void AcmeRuntime::AddMetrics() {
  auto& reg = metrics_.registry();
  auto& orders = prometheus::BuildCounter()
                     .Name("porcupine_acme_orders_total")
                     .Help("ACME certificate orders this node ran, by result")
                     .Register(reg);
  orders_ok_ = &orders.Add({{"result", "ok"}});
  orders_failed_ = &orders.Add({{"result", "failed"}});
  installs_ = &prometheus::BuildCounter()
                   .Name("porcupine_acme_installs_total")
                   .Help("Stored ACME certificates installed into the TLS server")
                   .Register(reg)
                   .Add({});
  challenges_answered_ = &prometheus::BuildCounter()
                              .Name("porcupine_acme_challenges_answered_total")
                              .Help("HTTP-01 challenge requests answered with a key authorization")
                              .Register(reg)
                              .Add({});
  cert_expiry_ = &prometheus::BuildGauge()
                      .Name("porcupine_acme_certificate_expiry_timestamp_seconds")
                      .Help("notAfter of the stored ACME certificate (0 = none)")
                      .Register(reg)
                      .Add({});
  next_attempt_ = &prometheus::BuildGauge()
                       .Name("porcupine_acme_retry_timestamp_seconds")
                       .Help("After failed orders: no new attempt before this time (0 = none)")
                       .Register(reg)
                       .Add({});
}

Status AcmeRuntime::Start(std::string* bound) {
  if (!config_.listen.acme_http.empty()) {
    auto ep = net::ParseEndpoint(config_.listen.acme_http);
    if (!ep.ok()) return Status::InvalidArgument("listen.acme_http: " + ep.status().message());
    auto http = acme::Http01Responder::Start(ep->address().to_string(), ep->port(),
                                             [this](const std::string& t) { return Answer(t); });
    if (!http.ok()) return Status::IoError("listen.acme_http: " + http.status().message());
    http_ = std::move(*http);
    *bound = fmt::format("{}:{}", ep->address().to_string(), http_->port());
  }
  Result<std::string> installed = net::ReadFileText(files_.cert_file);
  if (installed.ok()) installed_cert_pem_ = *installed;
  spdlog::info("acme: certifying {} with {} (renewal {} days before expiry)",
               fmt::join(domains_, ", "), acme_.directory_url, acme_.renew_before_days);
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void AcmeRuntime::RequestStop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

bool AcmeRuntime::stopping() {
  std::lock_guard lock(mu_);
  return stop_;
}

void AcmeRuntime::Stop() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
  http_.reset();
}

bool AcmeRuntime::Wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_; });
  return !stop_;
}

std::optional<std::string> AcmeRuntime::Answer(const std::string& token) {
  Result<acme::Record> r = RecordFrom(store_);
  if (!r.ok()) return std::nullopt;
  auto it = r->challenges.find(token);
  if (it == r->challenges.end()) return std::nullopt;
  challenges_answered_->Increment();
  return it->second;
}

void AcmeRuntime::Loop() {
  // The first look soon after start: the view forms within a second or two.
  std::chrono::milliseconds next(std::min<int64_t>(1000, acme_.check_interval.count() * 1000));
  while (Wait(next)) {
    Tick();
    next = acme_.check_interval;
    // Not the orderer yet (no view): look again soon rather than after a
    // whole interval.
    if (runtime_.Current()->epoch == 0) next = std::chrono::seconds(1);
  }
}

bool AcmeRuntime::IsOrderer() {
  std::shared_ptr<const cluster::View> view = runtime_.Current();
  if (view->epoch == 0) return false;
  const uint32_t bucket = BucketOf(acme::kRecordUser, view->user_map.buckets());
  return view->user_map.ManagerOf(bucket) == runtime_.self().id;
}

void AcmeRuntime::Tick() {
  Result<acme::Record> record = ReadRecord();
  if (!record.ok()) {
    spdlog::error("acme: cannot read the stored record: {}", record.status().ToString());
    return;
  }
  cert_expiry_->Set(static_cast<double>(record->certificate.not_after));
  acme::PlanInput in;
  in.now = NowS();
  in.domains = domains_;
  in.cert_domains = record->certificate.domains;
  in.not_after = record->has_certificate() ? record->certificate.not_after : 0;
  in.renew_before = int64_t{acme_.renew_before_days} * 86400;
  in.orderer = IsOrderer();
  in.retry_at = retry_at_;
  in.stored_differs = record->certificate.cert_pem != installed_cert_pem_;
  acme::PlanDecision d = acme::Plan(in);
  if (d.install) Install(*record);
  if (d.order) {
    spdlog::info("acme: ordering a certificate for {}: {}", fmt::join(domains_, ", "), d.reason);
    Order(std::move(*record));
  }
}

Result<acme::Record> AcmeRuntime::ReadRecord() { return RecordFrom(store_); }

// Read, change, write through the profile replication (every node gets it).
// Only the orderer writes, one change at a time (this thread), so the read
// here is the latest this node wrote; a copy from the other side of a
// partition loses to the newer stamp, whole (store/profile_merge.h).
Status AcmeRuntime::WriteRecord(const std::function<void(acme::Record&)>& change) {
  const store::Bucket bucket = BucketOf(acme::kRecordUser, store_.node_meta().buckets());
  Result<std::optional<store::Profile>> held = store_.GetProfile(bucket, acme::kRecordUser);
  if (!held.ok()) return held.status();
  store::Profile p;
  if (held->has_value()) p = **held;
  Result<acme::Record> r = acme::DecodeRecord(p.tombstone() ? "" : p.system_record());
  if (!r.ok()) return r.status();
  change(*r);
  p.set_version(1);
  p.set_user(acme::kRecordUser);
  p.set_tombstone(false);
  p.set_system_record(acme::EncodeRecord(*r));
  p.set_hlc(std::max<uint64_t>(p.hlc() + 1, hlc_.Now()));
  p.clear_replicas();
  auto f = asio::co_spawn(io_, profiles_.Write(std::move(p)), asio::use_future);
  // Bounded, and given up when the node stops (its loop may stop first).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (f.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (stopping()) return Status::Aborted("node is stopping");
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Unavailable("storing the acme record timed out");
    }
  }
  return f.get();
}

void AcmeRuntime::Install(const acme::Record& r) {
  if (!UsableNow(r)) {
    spdlog::error("acme: the stored certificate is unusable (expired or key mismatch)");
    return;
  }
  Status st = WritePair(files_, r.certificate.cert_pem, r.certificate.key_pem);
  if (st.ok() && tls_ != nullptr) st = tls_->Reload();
  if (!st.ok()) {
    spdlog::error("acme: installing the stored certificate failed, keeping the current one: {}",
                  st.ToString());
    return;
  }
  installed_cert_pem_ = r.certificate.cert_pem;
  installs_->Increment();
  if (tls_ != nullptr) {
    metrics_.tls_certificate_expiry->Set(static_cast<double>(tls_->Current()->earliest_expiry()));
  }
  Result<net::CertInfo> info = net::DescribeCert(r.certificate.cert_pem);
  spdlog::info("acme: installed the certificate for {} valid until {}",
               fmt::join(r.certificate.domains, ", "), info.ok() ? info->not_after : "?");
}

void AcmeRuntime::Order(acme::Record record) {
  acme::ClientOptions co;
  co.directory_url = acme_.directory_url;
  co.ca_file = acme_.ca_file;
  co.email = acme_.email;
  co.validation_deadline = acme_.validation_timeout;
  acme::ClientHooks hooks;
  bool published = false;
  hooks.publish_challenges = [this, &published](const std::map<std::string, std::string>& answers) {
    published = true;
    return WriteRecord([&](acme::Record& r) { r.challenges = answers; });
  };
  hooks.save_account = [this](const acme::Record::Account& a) {
    return WriteRecord([&](acme::Record& r) { r.account = a; });
  };
  hooks.wait = [this](std::chrono::milliseconds d) { return Wait(d); };
  acme::Client client(co, hooks);
  Result<acme::Issued> issued = client.Obtain(record.account, domains_);
  Status st = issued.status();
  if (issued.ok()) {
    st = WriteRecord([&](acme::Record& r) {
      r.certificate = {issued->domains, issued->cert_pem, issued->key_pem, issued->not_after,
                       NowS()};
      r.challenges.clear();
    });
  } else if (published && issued.status().code() != Code::kAborted) {
    // Withdraw the answers of the failed order (best effort).
    Status cleared = WriteRecord([](acme::Record& r) { r.challenges.clear(); });
    if (!cleared.ok()) spdlog::warn("acme: clearing challenges: {}", cleared.ToString());
  }
  if (!st.ok()) {
    if (st.code() == Code::kAborted) return;
    orders_failed_->Increment();
    ++failures_;
    const int64_t delay =
        acme::RetryDelay(failures_, acme_.check_interval.count(), acme_.retry_max.count());
    retry_at_ = NowS() + delay;
    next_attempt_->Set(static_cast<double>(retry_at_));
    spdlog::error("acme: order failed ({} in a row), next attempt in {} s: {}", failures_, delay,
                  st.ToString());
    return;
  }
  orders_ok_->Increment();
  failures_ = 0;
  retry_at_ = 0;
  next_attempt_->Set(0);
  spdlog::info("acme: certificate issued for {}", fmt::join(domains_, ", "));
  Result<acme::Record> now = ReadRecord();
  if (now.ok()) {
    cert_expiry_->Set(static_cast<double>(now->certificate.not_after));
    Install(*now);
  }
}

}  // namespace porcupine::node
