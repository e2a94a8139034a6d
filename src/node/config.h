// Node configuration: the TOML file of `porcupine node --config FILE`.
// Every key, its default and its meaning is listed in docs/config.md; the
// table in config.cc is the single source of truth for names and defaults.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "admin/request_guard.h"
#include "core/login_throttle.h"
#include "core/status.h"
#include "outbound/dns_options.h"
#include "protocol/imap/session.h"
#include "protocol/pop3/session.h"
#include "protocol/smtp/session.h"

namespace porcupine::node {

struct Config {
  struct Node {
    std::string name;      // stable node name; default: the host name
    std::string data_dir;  // required: where the store lives
    int io_threads = 0;    // event-loop threads; 0 = one per core
  } node;

  // host:port per listener; "" disables one; port 0 picks a free port (the
  // bound addresses are written to <data_dir>/listen.json).
  struct Listen {
    std::string smtp = "127.0.0.1:2525";
    std::string pop3 = "127.0.0.1:1110";
    std::string imap = "127.0.0.1:1143";
    std::string admin = "127.0.0.1:8080";
    std::string cluster = "127.0.0.1:7000";
    // Message submission (RFC 6409) with STARTTLS, and the implicit-TLS
    // listeners (RFC 8314); off unless set. The implicit ones need [tls].
    std::string submission;   // 587
    std::string submissions;  // 465, implicit TLS
    std::string imaps;        // 993, implicit TLS
    std::string pop3s;        // 995, implicit TLS
    // HTTP-01 answers for ACME (RFC 8555 §8.3); port 80 in production.
    std::string acme_http;
  } listen;

  // TLS for the client listeners (docs/config.md, docs/security.md). With a
  // certificate, smtp/submission/imap/pop3 offer STARTTLS/STLS and the
  // implicit-TLS listeners may be used; without one, none of that.
  struct Tls {
    struct Certificate {
      std::vector<std::string> domains;  // SNI names it serves ("*.example.com" allowed)
      std::string cert_file;             // PEM chain, leaf first
      std::string key_file;              // PEM key
    };
    std::string cert_file;  // default certificate (PEM chain); "" = the first of certificates
    std::string key_file;
    std::vector<Certificate> certificates;  // [[tls.certificates]], chosen by SNI
    std::string min_version = "1.2";        // "1.2" or "1.3"; 1.0 and 1.1 are refused
    std::string ciphers;                    // TLS 1.2 list; "" = net::kDefaultTlsCiphers
    std::string ciphersuites;               // TLS 1.3 suites; "" = net::kDefaultTlsCipherSuites
    std::chrono::seconds handshake_timeout{10};  // a handshake not done by then is cut
    bool enabled() const { return !cert_file.empty() || !certificates.empty(); }
  } tls;

  // Certificates from an ACME CA (docs/security.md "ACME"), kept in the
  // replicated store and served by every node. Off while directory_url is "".
  struct Acme {
    std::string directory_url;          // e.g. https://acme-v02.api.letsencrypt.org/directory
    std::string email;                  // account contact; "" = none
    std::vector<std::string> domains;   // names to certify; empty = [mail.hostname]
    std::string challenge = "http-01";  // the only one supported
    std::string ca_file;                // PEM roots for the CA's API; "" = the system's
    int renew_before_days = 30;         // renew this long before notAfter
    std::chrono::seconds check_interval{3600};  // the store and the expiry are checked this often
    std::chrono::seconds retry_max{21600};      // failed orders back off up to this
    std::chrono::seconds validation_timeout{120};  // an order not done by then failed
    bool enabled() const { return !directory_url.empty(); }
  } acme;

  struct Cluster {
    std::vector<std::string> seeds;  // host:port of other nodes' cluster listeners
    std::string advertise;           // host:port others reach us at; "" = the bound listen.cluster
    int replication = 2;             // copies of every message (profiles: every node)
    int ack_copies = 0;              // copies durable before SMTP 250; 0 = min(replication, 2)
    std::chrono::milliseconds replication_retry_max{10000};  // backoff cap of a failed push
    std::chrono::milliseconds takeover{10000};  // R >= 3: a replica pushes an update itself after
    std::chrono::milliseconds anti_entropy_interval{300000};  // replicas compare this often
    std::chrono::seconds tombstone_grace{86400};  // deleted messages' tombstones are kept this long
    int spread = 2;                               // soft limit on nodes holding one user's mail
    int buckets = 256;                            // user-map buckets; fixed for a cluster's life
    std::string secret;                           // shared cluster secret (second factor)
    // Mutual TLS between nodes: all three or none (docs/security.md).
    std::string tls_ca_file;    // PEM: the cluster CA; peers must show a certificate it signed
    std::string tls_cert_file;  // PEM: this node's certificate, signed by the cluster CA
    std::string tls_key_file;   // PEM: its private key
    std::chrono::seconds tls_refresh{60};  // the three files are re-read this often
    // Serve and call non-loopback cluster addresses without mutual TLS and a
    // secret. Only for a network that nothing else can reach.
    bool allow_insecure = false;
    std::string policy = "dynamic";  // load balancing: dynamic, static or random
    // Failure detection and membership rounds (cluster/membership.h).
    std::chrono::milliseconds ping_interval{250};
    std::chrono::milliseconds ping_timeout{1000};
    std::chrono::milliseconds probe_interval{1000};
    std::chrono::milliseconds accept_window{300};
    std::chrono::milliseconds round_timeout{1500};
    std::chrono::milliseconds max_jitter{100};
    std::chrono::milliseconds membership_rpc_timeout{500};  // deadline of a membership message
    std::chrono::milliseconds rpc_timeout{2000};            // deadline of every data-path call
    std::chrono::milliseconds rebuild_wait{1000};  // lookups wait this long for a rebuilding bucket
    std::chrono::milliseconds uid_settle_window{5000};  // a new UID holds newer ones back this long
    std::chrono::milliseconds retry_budget{3000};  // a call retries across view changes this long
    std::chrono::milliseconds gossip_interval{1000};  // load gossip to every member
    std::chrono::milliseconds load_stale{5000};       // older load reports count as unknown
    size_t rebuild_chunk_users = 5000;                // users per reconstruction message
    size_t max_rpc_message_mib = 64;                  // largest inter-node message
  } cluster;

  struct Mail {
    std::vector<std::string> domains;  // local domains; mail to any other domain is refused
    std::string hostname;              // greeting/Received: name; default: node name
    // Canonical mailbox for every local domain's postmaster; "" = the
    // postmaster@<first domain> user, created at start when absent.
    std::string postmaster;
  } mail;

  struct Server {
    std::chrono::seconds idle_timeout{300};        // no client bytes for this long → close
    std::chrono::seconds imap_idle_timeout{1800};  // IMAP (RFC 3501 §5.4: at least 30 minutes)
    std::chrono::milliseconds imap_idle_recheck{
        10000};                              // IDLE re-reads in full at least this often
    std::chrono::seconds write_timeout{60};  // a client not reading for this long → close
    size_t max_connections = 10000;          // per node, all protocols; more are refused
  } server;

  struct Store {
    bool sync = true;  // fsync the WAL per commit group; false only for CPU benchmarks
    size_t block_cache_mib = 64;
    std::chrono::milliseconds debug_op_delay{0};  // test only: slower disk-bound operations
  } store;

  struct Auth {
    uint64_t argon2_opslimit = 2;               // crypto_pwhash OPSLIMIT_INTERACTIVE
    uint64_t argon2_memlimit_kib = 65536;       // MEMLIMIT_INTERACTIVE (64 MiB)
    LoginThrottleOptions throttle;              // failed-login delays and lockouts
    size_t login_cache_entries = 100000;        // users whose last right password is remembered
    std::chrono::seconds login_cache_ttl{900};  // a remembered password is trusted this long
    // Cleartext password mechanisms (IMAP LOGIN, AUTHENTICATE PLAIN, POP3
    // USER/PASS, AUTH PLAIN, SMTP AUTH PLAIN/LOGIN) are accepted without TLS
    // from loopback peers only, unless this is set.
    bool allow_plaintext_without_tls = false;
    // PBKDF2 rounds of new SCRAM-SHA-256 secrets (RFC 7677: at least 4096).
    unsigned scram_iterations = 4096;
  } auth;

  // Message submission (RFC 6409) on the submission/submissions listeners.
  struct Submission {
    bool require_sender_match = true;  // MAIL FROM must be the authenticated address
  } submission;

  // Destination resolution for outbound mail ([dns], docs/outbound.md "DNS").
  outbound::DnsOptions dns;

  struct Admin {
    std::string token;          // when set, the admin API requires "Authorization: Bearer <token>"
    std::string tls_cert_file;  // PEM: with tls_key_file, the admin API speaks HTTPS only
    std::string tls_key_file;
    std::chrono::seconds tls_refresh{60};  // replaced files are picked up this long after
    // Serve a non-loopback admin address without HTTPS and a token.
    bool allow_insecure = false;
    // Deadlines, sizes and the connection limit of the admin HTTP server.
    admin::HttpLimits limits;
  } admin;

  struct Log {
    std::string level = "info";  // trace, debug, info, warn, error
  } log;

  smtp::Limits smtp;
  pop3::Limits pop3;
  imap::Limits imap;

  // Limits of the whole node, in [limits] beside the per-session ones above.
  struct NodeLimits {
    // Memory the message bytes held in flight by all client sessions may take
    // at once: SMTP DATA buffers (smtp::SessionInfo::data_budget) and IMAP
    // literals, APPEND's message above all (imap::SessionInfo::
    // message_budget). A message that does not fit gets 452 4.3.1 (SMTP) or
    // NO [LIMIT] (IMAP). At least twice the larger of smtp.max_message_bytes
    // and imap.parser.max_literal, plus 1 MiB. The key's old name,
    // limits.smtp_data_memory_bytes, is still read.
    uint64_t message_memory_bytes = 512ull << 20;
    // Connections one client address (net::ClientKey: an IPv4 address, an
    // IPv6 /64) may hold at once, over all client listeners of the node; one
    // more gets its protocol's busy reply. 0 = no limit.
    size_t max_connections_per_address = 50;
    // Loopback peers (a webmail or proxy on the same machine, speaking for
    // many users) are not counted against max_connections_per_address.
    bool address_limit_exempts_loopback = true;
  } node_limits;
};

// Parses TOML text. Unknown sections/keys, wrong types and bad values are an
// InvalidArgument naming the key ("limits.smtp_max_recipients: must be ≥ 1").
Result<Config> ParseConfig(const std::string& toml_text);
// Reads and parses a file; IoError when it cannot be read.
Result<Config> LoadConfig(const std::string& path);

// Renders the documented keys with their defaults as TOML (docs and `porcupine
// node --print-default-config`).
std::string DefaultConfigToml();

}  // namespace porcupine::node
