#include "admin/metrics.h"

#include <prometheus/text_serializer.h>

namespace porcupine::admin {

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  smtp_ = MakeProtocol("smtp");
  pop3_ = MakeProtocol("pop3");
  imap_ = MakeProtocol("imap");
  MakeTls();
  MakeAdmin();
  auto& stored = prometheus::BuildCounter()
                     .Name("porcupine_messages_stored_total")
                     .Help("Message copies stored, one per recipient")
                     .Register(*registry_);
  messages_stored = &stored.Add({});
  auto& bytes = prometheus::BuildCounter()
                    .Name("porcupine_bytes_stored_total")
                    .Help("Message bytes stored")
                    .Register(*registry_);
  bytes_stored = &bytes.Add({});
  auto& deleted = prometheus::BuildCounter()
                      .Name("porcupine_messages_deleted_total")
                      .Help("Messages deleted by clients")
                      .Register(*registry_);
  messages_deleted = &deleted.Add({});
  smtp_tempfail_after_store =
      &prometheus::BuildCounter()
           .Name("porcupine_smtp_tempfail_after_store_total")
           .Help("SMTP deliveries answered 4xx although a copy may have been stored")
           .Register(*registry_)
           .Add({});
  auto& idle = prometheus::BuildCounter()
                   .Name("porcupine_imap_idle_polls_total")
                   .Help("IMAP IDLE polls: re-read, or skipped (no node reported a change)")
                   .Register(*registry_);
  imap_idle_read = &idle.Add({{"result", "read"}});
  imap_idle_skipped = &idle.Add({{"result", "skipped"}});
  auto gauge = [this](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
  };
  store_syncs = gauge("porcupine_store_syncs_total", "WAL syncs (group commits) performed");
  store_batches = gauge("porcupine_store_batches_total", "Write batches committed");
  store_last_group = gauge("porcupine_store_last_group_batches", "Batches in the latest sync");
  store_writes_refused =
      gauge("porcupine_store_message_writes_refused_total",
            "Message writes left out: older than the record held, a live record without its "
            "body, or a purge of a live record");
  store_bodyless = gauge("porcupine_store_bodyless_records_total",
                         "Reads that found a listed message without its body (damage)");
  store_pending = gauge("porcupine_store_pending_batches", "Batches waiting for their sync");
  users = gauge("porcupine_users", "Users of the buckets this node manages");
  view_epoch = gauge("porcupine_view_epoch", "Epoch of the installed view (0: none)");
  view_members = gauge("porcupine_view_members", "Members of the installed view");
  views_installed = gauge("porcupine_views_installed_total", "Views installed since start");
  buckets_managed = gauge("porcupine_buckets_managed", "User-map buckets this node manages");
  buckets_rebuilding =
      gauge("porcupine_buckets_rebuilding", "Managed buckets still waiting for announcements");
  rpc_calls = gauge("porcupine_rpc_calls_total", "Inter-node calls made");
  rpc_failures = gauge("porcupine_rpc_failures_total", "Inter-node calls that failed to arrive");
  rpc_refused = gauge("porcupine_rpc_refused_total",
                      "Inter-node calls refused (bad cluster secret or wire version)");
  announcements_sent =
      gauge("porcupine_rebuild_chunks_sent_total", "Reconstruction messages delivered");
  announcements_retried =
      gauge("porcupine_rebuild_chunks_retried_total", "Reconstruction messages sent again");
  epoch_floor_write_failures =
      gauge("porcupine_membership_epoch_floor_write_failures_total",
            "Durable writes of the membership Lamport floor that failed (their messages dropped)");
  profile_copies_failed = gauge("porcupine_profile_copies_failed_total",
                                "Profile replica writes that did not reach a member");
  node_load = gauge("porcupine_load", "Pending disk-bound operations (the balancer's load)");
  replication_unretired = gauge("porcupine_replication_unretired",
                                "Updates not yet on every replica (under-replicated objects)");
  replication_pushes = gauge("porcupine_replication_pushes_total", "Replica pushes sent");
  replication_push_failures =
      gauge("porcupine_replication_push_failures_total", "Replica pushes that did not arrive");
  below_ack_copies = gauge("porcupine_replication_below_ack_copies_total",
                           "Acknowledged stores and deletes with fewer than ack_copies copies");
  invariant_violations =
      gauge("porcupine_invariant_violations_total",
            "Invariant checks that failed (each is logged; see core/invariant.h)");
  replicas_widened = gauge("porcupine_replicas_widened_total",
                           "Replicas written again naming every node an older version named");
  anti_entropy_rounds = gauge("porcupine_anti_entropy_rounds_total", "Anti-entropy rounds run");
  anti_entropy_pushed =
      gauge("porcupine_anti_entropy_pushed_total", "Objects pushed to a replica by anti-entropy");
  rereplicated = gauge("porcupine_rereplicated_total",
                       "Messages given a new replica after a node was removed");
  tombstones_purged =
      gauge("porcupine_tombstones_purged_total", "Tombstones garbage-collected after the grace");
  auth.failures = gauge("porcupine_auth_failures_total", "Failed password checks (every protocol)");
  auth.delayed = gauge("porcupine_auth_delayed_total", "Login answers held back by the throttle");
  auto& refused = prometheus::BuildGauge()
                      .Name("porcupine_auth_refused_total")
                      .Help("Logins refused unchecked: the client address or the account is locked")
                      .Register(*registry_);
  auth.refused_address = &refused.Add({{"by", "address"}});
  auth.refused_account = &refused.Add({{"by", "account"}});
  auto& tracked = prometheus::BuildGauge()
                      .Name("porcupine_auth_tracked")
                      .Help("Records held by the login throttle")
                      .Register(*registry_);
  auth.tracked_addresses = &tracked.Add({{"table", "addresses"}});
  auth.tracked_accounts = &tracked.Add({{"table", "accounts"}});
  auth.trusted_pairs = &tracked.Add({{"table", "trusted"}});
  auth.evicted = gauge("porcupine_auth_evicted_total",
                       "Login throttle records forgotten early to make room (table full)");
  auth.verifications =
      gauge("porcupine_auth_verifications_total", "argon2id password verifications run");
  auth.cache_hits = gauge("porcupine_auth_cache_hits_total",
                          "Password checks answered from the cache of right passwords");
  auth.joined = gauge("porcupine_auth_joined_total",
                      "Password checks that shared an identical verification in flight");
  backlog_entries_ = &prometheus::BuildGauge()
                          .Name("porcupine_replication_backlog_entries")
                          .Help("Updates waiting for one peer")
                          .Register(*registry_);
  backlog_bytes_ = &prometheus::BuildGauge()
                        .Name("porcupine_replication_backlog_bytes")
                        .Help("Bytes of the updates waiting for one peer")
                        .Register(*registry_);
  backlog_age_ = &prometheus::BuildGauge()
                      .Name("porcupine_replication_backlog_oldest_seconds")
                      .Help("Age of the oldest update waiting for one peer")
                      .Register(*registry_);
  prometheus::Histogram::BucketBoundaries bounds;
  for (int i = 0; i < 13; ++i) bounds.push_back(static_cast<double>(1 << i));  // 1 .. 4096
  store_group_batches = &prometheus::BuildHistogram()
                             .Name("porcupine_store_group_batches")
                             .Help("Batches (deliveries, deletions) made durable per WAL sync")
                             .Register(*registry_)
                             .Add({}, bounds);
}

Metrics::Protocol Metrics::MakeProtocol(const std::string& name) {
  Protocol p{};
  p.sessions = &prometheus::BuildCounter()
                    .Name("porcupine_sessions_total")
                    .Help("Client sessions accepted")
                    .Register(*registry_)
                    .Add({{"protocol", name}});
  p.active = &prometheus::BuildGauge()
                  .Name("porcupine_sessions_active")
                  .Help("Client sessions open now")
                  .Register(*registry_)
                  .Add({{"protocol", name}});
  p.refused = &prometheus::BuildCounter()
                   .Name("porcupine_sessions_refused_total")
                   .Help("Connections refused at the connection limit")
                   .Register(*registry_)
                   .Add({{"protocol", name}});
  p.refused_client = &prometheus::BuildCounter()
                          .Name("porcupine_sessions_refused_per_address_total")
                          .Help(
                              "Connections refused because their client address held "
                              "limits.max_connections_per_address already")
                          .Register(*registry_)
                          .Add({{"protocol", name}});
  auto& replies = prometheus::BuildCounter()
                      .Name("porcupine_replies_total")
                      .Help("Replies sent, by class (2xx/3xx/4xx/5xx; POP3 +OK=2xx, -ERR=5xx)")
                      .Register(*registry_);
  const char* classes[4] = {"2xx", "3xx", "4xx", "5xx"};
  for (int i = 0; i < 4; ++i)
    p.replies[i] = &replies.Add({{"protocol", name}, {"class", classes[i]}});
  auto& errors = prometheus::BuildCounter()
                     .Name("porcupine_errors_total")
                     .Help("Errors by protocol and kind")
                     .Register(*registry_);
  p.protocol_errors = &errors.Add({{"protocol", name}, {"kind", "client"}});
  p.backend_errors = &errors.Add({{"protocol", name}, {"kind", "backend"}});
  return p;
}

void Metrics::ObserveGroups(const std::vector<uint64_t>& cumulative, uint64_t total_batches) {
  seen_groups_.resize(cumulative.size(), 0);
  std::vector<double> increments(cumulative.size());
  bool any = false;
  for (size_t i = 0; i < cumulative.size(); ++i) {
    increments[i] = static_cast<double>(cumulative[i] - seen_groups_[i]);
    any = any || increments[i] > 0;
  }
  if (!any) return;
  store_group_batches->ObserveMultiple(increments,
                                       static_cast<double>(total_batches - seen_batches_));
  seen_groups_ = cumulative;
  seen_batches_ = total_batches;
}

void Metrics::SetBacklog(const std::map<std::string, Backlog>& peers) {
  for (const std::string& p : backlog_peers_) {
    if (peers.count(p)) continue;
    backlog_entries_->Add({{"peer", p}}).Set(0);
    backlog_bytes_->Add({{"peer", p}}).Set(0);
    backlog_age_->Add({{"peer", p}}).Set(0);
  }
  for (const auto& [p, b] : peers) {
    backlog_peers_.insert(p);
    backlog_entries_->Add({{"peer", p}}).Set(b.entries);
    backlog_bytes_->Add({{"peer", p}}).Set(b.bytes);
    backlog_age_->Add({{"peer", p}}).Set(b.oldest_age_s);
  }
}

std::string Metrics::Render() {
  std::lock_guard lock(render_mu_);
  for (auto& fn : refreshers_) fn();
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void Metrics::MakeAdmin() {
  admin.connections = &prometheus::BuildGauge()
                           .Name("porcupine_admin_connections")
                           .Help("Admin API connections being served")
                           .Register(*registry_)
                           .Add({});
  admin.refused = &prometheus::BuildCounter()
                       .Name("porcupine_admin_connections_refused_total")
                       .Help(
                           "Admin API connections refused at admin.max_connections (and, on a "
                           "health slot, every request but a health check)")
                       .Register(*registry_)
                       .Add({});
  admin.health_slot_served =
      &prometheus::BuildCounter()
           .Name("porcupine_admin_health_slot_requests_total")
           .Help("Health checks answered on a slot beyond admin.max_connections kept for them")
           .Register(*registry_)
           .Add({});
  auto& cut = prometheus::BuildCounter()
                  .Name("porcupine_admin_requests_cut_total")
                  .Help("Admin API requests cut by a deadline or the head size, by reason")
                  .Register(*registry_);
  admin.cut[0] = nullptr;
  const char* reasons[] = {"header_timeout", "body_timeout", "write_timeout", "header_size"};
  for (int i = 0; i < 4; ++i) admin.cut[i + 1] = &cut.Add({{"reason", reasons[i]}});
}

void Metrics::MakeTls() {
  tls_handshakes_ = &prometheus::BuildCounter()
                         .Name("porcupine_tls_handshakes_total")
                         .Help("TLS handshakes completed, by listener and protocol version")
                         .Register(*registry_);
  tls_failures_ = &prometheus::BuildCounter()
                       .Name("porcupine_tls_handshake_failures_total")
                       .Help("TLS handshakes that failed, by listener and reason")
                       .Register(*registry_);
  tls_certificate_expiry =
      &prometheus::BuildGauge()
           .Name("porcupine_tls_certificate_expiry_timestamp_seconds")
           .Help("Earliest notAfter of the loaded certificates (Unix time; 0: no TLS)")
           .Register(*registry_)
           .Add({});
  auto& reloads = prometheus::BuildCounter()
                      .Name("porcupine_tls_reloads_total")
                      .Help("Certificate reloads (SIGHUP): ok, or failed (old ones kept)")
                      .Register(*registry_);
  tls_reloads_ok = &reloads.Add({{"result", "ok"}});
  tls_reloads_failed = &reloads.Add({{"result", "failed"}});
}

Metrics::TlsListener* Metrics::AddTlsListener(const std::string& listener,
                                              const std::vector<std::string>& versions,
                                              const std::vector<std::string>& reasons) {
  std::lock_guard lock(tls_mu_);
  auto& slot = tls_listeners_[listener];
  if (slot) return slot.get();
  slot = std::make_unique<TlsListener>();
  for (const std::string& v : versions) {
    slot->handshakes[v] = &tls_handshakes_->Add({{"listener", listener}, {"version", v}});
  }
  slot->handshakes["other"] = &tls_handshakes_->Add({{"listener", listener}, {"version", "other"}});
  for (const std::string& r : reasons) {
    slot->failures[r] = &tls_failures_->Add({{"listener", listener}, {"reason", r}});
  }
  return slot.get();
}

}  // namespace porcupine::admin
