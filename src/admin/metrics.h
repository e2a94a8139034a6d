// The node's Prometheus metrics (served at GET /metrics). Names and labels
// are listed in docs/operations.md. Thread-safe (prometheus-cpp counters are
// atomic).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace porcupine::admin {

class Metrics {
 public:
  Metrics();

  prometheus::Registry& registry() { return *registry_; }

  // Per protocol ("smtp", "pop3", "imap"). IMAP replies by class: OK, -, NO, BAD.
  struct Protocol {
    prometheus::Counter* sessions;         // sessions accepted
    prometheus::Gauge* active;             // sessions open now
    prometheus::Counter* refused;          // refused at the connection limit
    prometheus::Counter* refused_client;   // refused at limits.max_connections_per_address
    prometheus::Counter* replies[4];       // by class: 2xx/+OK, 3xx, 4xx, 5xx/-ERR
    prometheus::Counter* protocol_errors;  // bad commands, failed logins
    prometheus::Counter* backend_errors;   // requests the mail service failed
  };
  Protocol& smtp() { return smtp_; }
  Protocol& pop3() { return pop3_; }
  Protocol& imap() { return imap_; }

  // TLS handshakes of one listener ("smtp", "submission", "submissions",
  // "pop3", "pop3s", "imap", "imaps"), STARTTLS and implicit alike.
  struct TlsListener {
    std::map<std::string, prometheus::Counter*> handshakes;  // by version ("TLSv1.3", ...)
    std::map<std::string, prometheus::Counter*> failures;    // by reason (net::TlsFailureName)
  };
  // The counters of `listener`, made once (stable pointer; later calls with
  // the same name return the same one). Versions not listed count as "other".
  TlsListener* AddTlsListener(const std::string& listener, const std::vector<std::string>& versions,
                              const std::vector<std::string>& reasons);
  prometheus::Gauge* tls_certificate_expiry;  // earliest notAfter loaded, Unix seconds
  prometheus::Counter* tls_reloads_ok;        // SIGHUP reloads that took effect
  prometheus::Counter* tls_reloads_failed;    // and those that kept the old certificates

  // The admin HTTP server (http_server.h).
  struct Admin {
    prometheus::Gauge* connections;  // connections served now
    prometheus::Counter* refused;    // refused at admin.max_connections
    // Health checks answered on a slot kept for them (admin.health_connections).
    prometheus::Counter* health_slot_served;
    prometheus::Counter* cut[5];  // by RequestGuard::Cut (index 0 unused)
  } admin;

  prometheus::Counter* messages_stored;  // message copies stored (per recipient)
  prometheus::Counter* bytes_stored;
  prometheus::Counter* messages_deleted;
  // SMTP deliveries answered 4xx although some copy may be durable (the
  // client sends the message again: a duplicate; mail::DeliveryReport).
  prometheus::Counter* smtp_tempfail_after_store;
  prometheus::Counter* imap_idle_read;     // IDLE polls that re-read the folder
  prometheus::Counter* imap_idle_skipped;  // IDLE polls answered from the change watch

  // Values read from other components at scrape time (store stats etc.).
  prometheus::Gauge* store_syncs;
  prometheus::Gauge* store_batches;
  prometheus::Gauge* store_last_group;
  prometheus::Gauge* store_writes_refused;
  prometheus::Gauge* store_bodyless;
  prometheus::Gauge* store_pending;
  prometheus::Gauge* users;
  // Cluster (refreshed at scrape time).
  prometheus::Gauge* view_epoch;
  prometheus::Gauge* view_members;
  prometheus::Gauge* views_installed;
  prometheus::Gauge* buckets_managed;
  prometheus::Gauge* buckets_rebuilding;
  prometheus::Gauge* rpc_calls;
  prometheus::Gauge* rpc_failures;
  prometheus::Gauge* rpc_refused;
  prometheus::Gauge* announcements_sent;
  prometheus::Gauge* announcements_retried;
  prometheus::Gauge* epoch_floor_write_failures;
  prometheus::Gauge* profile_copies_failed;
  prometheus::Gauge* node_load;
  // Replication.
  prometheus::Gauge* replication_unretired;
  prometheus::Gauge* replication_pushes;
  prometheus::Gauge* replication_push_failures;
  prometheus::Gauge* below_ack_copies;
  prometheus::Gauge* replicas_widened;
  prometheus::Gauge* invariant_violations;
  prometheus::Gauge* anti_entropy_rounds;
  prometheus::Gauge* anti_entropy_pushed;
  prometheus::Gauge* rereplicated;
  prometheus::Gauge* tombstones_purged;
  // Logins (docs/security.md): the throttle and the password checks.
  struct Auth {
    prometheus::Gauge* failures;         // failed password checks
    prometheus::Gauge* delayed;          // answers held back by the throttle
    prometheus::Gauge* refused_address;  // logins refused: the client address is locked
    prometheus::Gauge* refused_account;  // logins refused: the account is locked
    prometheus::Gauge* tracked_addresses;
    prometheus::Gauge* tracked_accounts;
    prometheus::Gauge* trusted_pairs;
    prometheus::Gauge* evicted;        // throttle records forgotten to make room
    prometheus::Gauge* verifications;  // argon2id runs
    prometheus::Gauge* cache_hits;     // checks answered from the cache
    prometheus::Gauge* joined;         // checks that waited for an identical one in flight
  } auth;
  struct Backlog {
    double entries = 0;
    double bytes = 0;
    double oldest_age_s = 0;
  };
  // Per peer (by name); peers no longer listed are set to zero.
  void SetBacklog(const std::map<std::string, Backlog>& peers);
  // Batches per WAL sync; fed from the store's cumulative bucket counts.
  prometheus::Histogram* store_group_batches;
  // Adds the groups counted since the last call. cumulative[i] counts groups
  // of size (2^(i-1), 2^i] (i = 0: size 1; last: larger); total_batches is the
  // store's cumulative batch count.
  void ObserveGroups(const std::vector<uint64_t>& cumulative, uint64_t total_batches);

  // Runs every registered refresher, then renders the text format.
  std::string Render();
  void AddRefresher(std::function<void()> fn) { refreshers_.push_back(std::move(fn)); }

 private:
  Protocol MakeProtocol(const std::string& name);
  void MakeTls();
  void MakeAdmin();

  std::shared_ptr<prometheus::Registry> registry_;
  Protocol smtp_;
  Protocol pop3_;
  Protocol imap_;
  std::vector<std::function<void()>> refreshers_;
  std::mutex tls_mu_;
  std::map<std::string, std::unique_ptr<TlsListener>> tls_listeners_;  // guarded by tls_mu_
  prometheus::Family<prometheus::Counter>* tls_handshakes_ = nullptr;
  prometheus::Family<prometheus::Counter>* tls_failures_ = nullptr;
  std::mutex render_mu_;               // one scrape at a time refreshes the values below
  std::vector<uint64_t> seen_groups_;  // last cumulative counts passed to ObserveGroups
  prometheus::Family<prometheus::Gauge>* backlog_entries_ = nullptr;
  prometheus::Family<prometheus::Gauge>* backlog_bytes_ = nullptr;
  prometheus::Family<prometheus::Gauge>* backlog_age_ = nullptr;
  std::set<std::string> backlog_peers_;  // every peer label set so far
  uint64_t seen_batches_ = 0;
};

}  // namespace porcupine::admin
