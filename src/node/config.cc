#include "node/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <type_traits>

#include "cluster/balancer.h"
#include "core/address.h"

namespace porcupine::node {
namespace {

// One documented key: how to read it from TOML into a Config and how to
// print its current value.
struct Key {
  std::string section;
  std::string name;
  std::string doc;
  std::function<Status(const toml::node&, Config&)> set;
  std::function<std::string(const Config&)> show;
  // An old name of the key `alias_of` (same section): still read, not
  // printed by DefaultConfigToml; setting both is an error.
  std::string alias_of;
};

// `k` under its old name `old_name`.
Key Alias(Key k, std::string old_name) {
  k.alias_of = std::move(k.name);
  k.name = std::move(old_name);
  return k;
}

template <typename T>
using Check = std::function<std::string(const T&)>;  // "" = fine, else the problem

std::string Quote(const std::string& s) { return fmt::format("\"{}\"", s); }

template <typename T>
std::string Show(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return Quote(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + Quote(v[i]);
    return out + "]";
  } else {
    return std::to_string(v);
  }
}

template <typename T>
Result<T> Read(const toml::node& n) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (auto s = n.value_exact<std::string>()) return *s;
    return Status::InvalidArgument("must be a string");
  } else if constexpr (std::is_same_v<T, bool>) {
    if (auto b = n.value_exact<bool>()) return *b;
    return Status::InvalidArgument("must be true or false");
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    const toml::array* arr = n.as_array();
    if (!arr) return Status::InvalidArgument("must be a list of strings");
    std::vector<std::string> out;
    for (const toml::node& e : *arr) {
      auto s = e.value_exact<std::string>();
      if (!s) return Status::InvalidArgument("must be a list of strings");
      out.push_back(*s);
    }
    return out;
  } else {
    auto i = n.value_exact<int64_t>();
    if (!i) return Status::InvalidArgument("must be an integer");
    if (*i < 0) return Status::InvalidArgument("must not be negative");
    return static_cast<T>(*i);
  }
}

// A key whose value lives at get(config), optionally validated.
template <typename T, typename Get>
Key Field(std::string section, std::string name, std::string doc, Get get, Check<T> check = {}) {
  Key k{std::move(section), std::move(name), std::move(doc), nullptr, nullptr, ""};
  k.set = [get, check](const toml::node& n, Config& c) -> Status {
    Result<T> v = Read<T>(n);
    if (!v.ok()) return v.status();
    if (check) {
      std::string problem = check(*v);
      if (!problem.empty()) return Status::InvalidArgument(problem);
    }
    get(c) = std::move(*v);
    return Status::Ok();
  };
  k.show = [get](const Config& c) { return Show<T>(get(const_cast<Config&>(c))); };
  return k;
}

// Durations are whole seconds or milliseconds in the file.
template <typename D, typename Get>
Key Duration(std::string section, std::string name, std::string doc, Get get,
             bool allow_zero = false) {
  Key k{std::move(section), std::move(name), std::move(doc), nullptr, nullptr, ""};
  k.set = [get, allow_zero](const toml::node& n, Config& c) -> Status {
    Result<int64_t> v = Read<int64_t>(n);
    if (!v.ok()) return v.status();
    if (*v == 0 && !allow_zero) return Status::InvalidArgument("must be positive");
    get(c) = D(*v);
    return Status::Ok();
  };
  k.show = [get](const Config& c) { return std::to_string(get(const_cast<Config&>(c)).count()); };
  return k;
}

// A string key that picks one of a few values of an enum.
template <typename E, typename Get>
Key Choice(std::string section, std::string name, std::string doc, Get get,
           std::vector<std::pair<std::string, E>> choices) {
  Key k{std::move(section), std::move(name), std::move(doc), nullptr, nullptr, ""};
  k.set = [get, choices](const toml::node& n, Config& c) -> Status {
    Result<std::string> v = Read<std::string>(n);
    if (!v.ok()) return v.status();
    std::string names;
    for (const auto& [text, value] : choices) {
      if (*v == text) {
        get(c) = value;
        return Status::Ok();
      }
      names += (names.empty() ? "" : ", ") + Quote(text);
    }
    return Status::InvalidArgument("must be one of " + names);
  };
  k.show = [get, choices](const Config& c) {
    for (const auto& [text, value] : choices) {
      if (value == get(const_cast<Config&>(c))) return Quote(text);
    }
    return Quote("?");
  };
  return k;
}

template <typename T>
Check<T> AtLeast(T min) {
  return [min](const T& v) { return v < min ? fmt::format("must be at least {}", min) : ""; };
}

// limits.message_memory_bytes, also read under its old name.
Key MessageMemory() {
  return Field<uint64_t>(
      "limits", "message_memory_bytes",
      "Memory the messages held in flight by all sessions (SMTP DATA, IMAP APPEND) may take "
      "at once (node-wide).",
      [](Config& c) -> uint64_t& { return c.node_limits.message_memory_bytes; },
      AtLeast<uint64_t>(1u << 20));
}

std::string CheckHostPort(const std::string& v) {
  if (v.empty()) return "";
  size_t colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0) return "must be host:port";
  std::string port = v.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    return "must be host:port with a port from 0 to 65535";
  }
  return "";
}

std::string CheckDnsServers(const std::vector<std::string>& v) {
  for (const std::string& s : v) {
    Result<outbound::DnsServer> server = outbound::ParseDnsServer(s);
    if (!server.ok()) return server.status().message();
  }
  return "";
}

std::string CheckIpAddresses(const std::vector<std::string>& v) {
  for (const std::string& a : v) {
    if (!outbound::IsIpAddress(a)) return "\"" + a + "\" is not a numeric IP address";
  }
  return "";
}

std::string CheckLevel(const std::string& v) {
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  for (const char* l : kLevels)
    if (v == l) return "";
  return "must be one of trace, debug, info, warn, error, critical, off";
}

std::string CheckDomains(const std::vector<std::string>& v) {
  for (const std::string& d : v) {
    if (d.empty() || d.find_first_of("@ \t") != std::string::npos)
      return "bad domain \"" + d + "\"";
  }
  return "";
}

// [[tls.certificates]]: an array of tables {domains, cert_file, key_file}.
Key Certificates() {
  Key k{"tls",
        "certificates",
        "Certificates chosen by SNI: [[tls.certificates]] with domains, cert_file, key_file.",
        nullptr,
        nullptr,
        ""};
  k.set = [](const toml::node& n, Config& c) -> Status {
    const toml::array* arr = n.as_array();
    if (!arr) return Status::InvalidArgument("must be an array of tables ([[tls.certificates]])");
    c.tls.certificates.clear();
    for (size_t i = 0; i < arr->size(); ++i) {
      std::string where = fmt::format("[{}]", i);
      const toml::table* t = (*arr)[i].as_table();
      if (!t) return Status::InvalidArgument(where + ": must be a table");
      Config::Tls::Certificate cert;
      for (const auto& [name, value] : *t) {
        std::string key(name.str());
        Status st = Status::Ok();
        if (key == "domains") {
          auto v = Read<std::vector<std::string>>(value);
          if (v.ok()) cert.domains = std::move(*v);
          st = v.status();
        } else if (key == "cert_file" || key == "key_file") {
          auto v = Read<std::string>(value);
          if (v.ok()) (key == "cert_file" ? cert.cert_file : cert.key_file) = std::move(*v);
          st = v.status();
        } else {
          st = Status::InvalidArgument("unknown key");
        }
        if (!st.ok()) return Status::InvalidArgument(where + "." + key + ": " + st.message());
      }
      if (cert.domains.empty() || cert.cert_file.empty() || cert.key_file.empty()) {
        return Status::InvalidArgument(where + ": needs domains, cert_file and key_file");
      }
      c.tls.certificates.push_back(std::move(cert));
    }
    return Status::Ok();
  };
  k.show = [](const Config& c) { return c.tls.certificates.empty() ? "[]" : "[...]"; };
  return k;
}

const std::vector<Key>& Keys() {
  using S = std::string;
  using ms = std::chrono::milliseconds;
  using sec = std::chrono::seconds;
  static const std::vector<Key> keys = {
      Field<S>("node", "name", "Stable node name (default: the host name).",
               [](Config& c) -> S& { return c.node.name; }),
      Field<S>("node", "data_dir", "Directory of this node's store. Required.",
               [](Config& c) -> S& { return c.node.data_dir; }),
      Field<int>("node", "io_threads", "Event-loop threads; 0 = one per core.",
                 [](Config& c) -> int& { return c.node.io_threads; }),
      Field<S>(
          "listen", "smtp", "SMTP listener host:port (\"\" = off, port 0 = any free port).",
          [](Config& c) -> S& { return c.listen.smtp; }, CheckHostPort),
      Field<S>(
          "listen", "pop3", "POP3 listener host:port.",
          [](Config& c) -> S& { return c.listen.pop3; }, CheckHostPort),
      Field<S>(
          "listen", "imap", "IMAP listener host:port.",
          [](Config& c) -> S& { return c.listen.imap; }, CheckHostPort),
      Field<S>(
          "listen", "submission",
          "SMTP submission (RFC 6409) host:port, STARTTLS offered (\"\" = off).",
          [](Config& c) -> S& { return c.listen.submission; }, CheckHostPort),
      Field<S>(
          "listen", "submissions", "SMTP submission over implicit TLS (RFC 8314) host:port.",
          [](Config& c) -> S& { return c.listen.submissions; }, CheckHostPort),
      Field<S>(
          "listen", "imaps", "IMAP over implicit TLS host:port.",
          [](Config& c) -> S& { return c.listen.imaps; }, CheckHostPort),
      Field<S>(
          "listen", "pop3s", "POP3 over implicit TLS host:port.",
          [](Config& c) -> S& { return c.listen.pop3s; }, CheckHostPort),
      Field<S>(
          "listen", "acme_http",
          "HTTP-01 challenge answers for [acme] host:port (\"\" = off; port 80 in production).",
          [](Config& c) -> S& { return c.listen.acme_http; }, CheckHostPort),
      Field<S>(
          "listen", "admin", "Admin HTTP API host:port (health, metrics, users).",
          [](Config& c) -> S& { return c.listen.admin; }, CheckHostPort),
      Field<S>(
          "listen", "cluster", "Inter-node RPC host:port.",
          [](Config& c) -> S& { return c.listen.cluster; }, CheckHostPort),
      Field<std::vector<S>>("cluster", "seeds", "Cluster addresses of other nodes to join.",
                            [](Config& c) -> std::vector<S>& { return c.cluster.seeds; }),
      Field<S>(
          "cluster", "advertise",
          "host:port other nodes reach this one at (\"\" = the bound listen.cluster).",
          [](Config& c) -> S& { return c.cluster.advertise; }, CheckHostPort),
      Field<int>(
          "cluster", "replication", "Copies of every message and profile.",
          [](Config& c) -> int& { return c.cluster.replication; }, AtLeast(1)),
      Field<int>(
          "cluster", "ack_copies",
          "Copies durable before a delivery is acknowledged; 0 = min(replication, 2).",
          [](Config& c) -> int& { return c.cluster.ack_copies; }, AtLeast(0)),
      Duration<ms>("cluster", "replication_retry_max_ms", "Backoff cap of a failed replica push.",
                   [](Config& c) -> ms& { return c.cluster.replication_retry_max; }),
      Duration<ms>("cluster", "anti_entropy_interval_ms",
                   "Replicas compare what they hold this often (and soon after a join).",
                   [](Config& c) -> ms& { return c.cluster.anti_entropy_interval; }),
      Duration<sec>("cluster", "tombstone_grace_s",
                    "Tombstones of deleted messages are kept this long after the delete.",
                    [](Config& c) -> sec& { return c.cluster.tombstone_grace; }),
      Duration<ms>("cluster", "takeover_ms",
                   "R >= 3: a replica pushes an unretired update itself after this long.",
                   [](Config& c) -> ms& { return c.cluster.takeover; }),
      Field<int>(
          "cluster", "spread", "Soft limit on nodes holding one user's mail.",
          [](Config& c) -> int& { return c.cluster.spread; }, AtLeast(1)),
      Field<int>(
          "cluster", "buckets", "User-map buckets; fixed for the cluster's life.",
          [](Config& c) -> int& { return c.cluster.buckets; }, Check<int>([](const int& v) {
            return v < 1 || v > 65535 ? "must be from 1 to 65535" : "";
          })),
      Field<S>("cluster", "secret", "Shared secret that authenticates cluster traffic.",
               [](Config& c) -> S& { return c.cluster.secret; }),
      Field<S>("cluster", "tls_ca_file",
               "PEM file of the cluster CA: mutual TLS between nodes (with the next two).",
               [](Config& c) -> S& { return c.cluster.tls_ca_file; }),
      Field<S>("cluster", "tls_cert_file", "PEM file of this node's certificate (cluster CA).",
               [](Config& c) -> S& { return c.cluster.tls_cert_file; }),
      Field<S>("cluster", "tls_key_file", "PEM file of this node's private key.",
               [](Config& c) -> S& { return c.cluster.tls_key_file; }),
      Duration<sec>("cluster", "tls_refresh_s", "The cluster TLS files are re-read this often.",
                    [](Config& c) -> sec& { return c.cluster.tls_refresh; }),
      Field<bool>("cluster", "allow_insecure",
                  "Allow non-loopback cluster addresses without mutual TLS and a secret.",
                  [](Config& c) -> bool& { return c.cluster.allow_insecure; }),
      Field<S>(
          "cluster", "policy", "Delivery load balancing: dynamic, static or random.",
          [](Config& c) -> S& { return c.cluster.policy; }, Check<S>([](const S& v) {
            return cluster::ParsePolicy(v) ? "" : "must be dynamic, static or random";
          })),
      Duration<ms>("cluster", "ping_interval_ms", "Ring ping period.",
                   [](Config& c) -> ms& { return c.cluster.ping_interval; }),
      Duration<ms>("cluster", "ping_timeout_ms", "No ping answer this long: the node is suspect.",
                   [](Config& c) -> ms& { return c.cluster.ping_timeout; }),
      Duration<ms>("cluster", "probe_interval_ms", "Probes to seeds and departed nodes.",
                   [](Config& c) -> ms& { return c.cluster.probe_interval; }),
      Duration<ms>("cluster", "accept_window_ms", "A membership round collects answers this long.",
                   [](Config& c) -> ms& { return c.cluster.accept_window; }),
      Duration<ms>("cluster", "round_timeout_ms", "A round without a commit this long is redone.",
                   [](Config& c) -> ms& { return c.cluster.round_timeout; }),
      Duration<ms>("cluster", "max_jitter_ms", "Random delay before coordinating a round.",
                   [](Config& c) -> ms& { return c.cluster.max_jitter; }),
      Duration<ms>("cluster", "membership_rpc_timeout_ms", "Deadline of a membership message.",
                   [](Config& c) -> ms& { return c.cluster.membership_rpc_timeout; }),
      Duration<ms>("cluster", "rpc_timeout_ms", "Deadline of every data-path call to a node.",
                   [](Config& c) -> ms& { return c.cluster.rpc_timeout; }),
      Duration<ms>("cluster", "rebuild_wait_ms", "Lookups wait this long for a rebuilding bucket.",
                   [](Config& c) -> ms& { return c.cluster.rebuild_wait; }),
      Duration<ms>(
          "cluster", "uid_settle_window_ms",
          "A UID handed out and not listed yet holds newer ones back this long (0: off).",
          [](Config& c) -> ms& { return c.cluster.uid_settle_window; },
          /*allow_zero=*/true),
      Duration<ms>("cluster", "retry_budget_ms", "A call is retried across view changes this long.",
                   [](Config& c) -> ms& { return c.cluster.retry_budget; }),
      Duration<ms>("cluster", "gossip_interval_ms", "Load gossip period.",
                   [](Config& c) -> ms& { return c.cluster.gossip_interval; }),
      Duration<ms>("cluster", "load_stale_ms", "Load reports older than this count as unknown.",
                   [](Config& c) -> ms& { return c.cluster.load_stale; }),
      Field<size_t>(
          "cluster", "rebuild_chunk_users", "Users per reconstruction message.",
          [](Config& c) -> size_t& { return c.cluster.rebuild_chunk_users; }, AtLeast<size_t>(1)),
      Field<size_t>(
          "cluster", "max_rpc_message_mib", "Largest inter-node message, MiB.",
          [](Config& c) -> size_t& { return c.cluster.max_rpc_message_mib; },
          Check<size_t>(
              [](const size_t& v) { return v < 1 || v > 1024 ? "must be from 1 to 1024" : ""; })),
      Field<std::vector<S>>(
          "mail", "domains", "Local mail domains; all others are refused.",
          [](Config& c) -> std::vector<S>& { return c.mail.domains; }, CheckDomains),
      Field<S>("mail", "hostname", "Name in greetings and Received: (default: node name).",
               [](Config& c) -> S& { return c.mail.hostname; }),
      Field<S>("mail", "postmaster",
               "Mailbox for postmaster@ of every local domain (default: postmaster@ of the first "
               "domain, created at start).",
               [](Config& c) -> S& { return c.mail.postmaster; }),
      Duration<sec>("server", "idle_timeout_s", "Close a session idle this many seconds.",
                    [](Config& c) -> sec& { return c.server.idle_timeout; }),
      Duration<sec>("server", "imap_idle_timeout_s",
                    "Close an IMAP session (IDLE included) idle this many seconds.",
                    [](Config& c) -> sec& { return c.server.imap_idle_timeout; }),
      Duration<ms>("server", "imap_idle_recheck_ms",
                   "An IMAP IDLE session re-reads its folder in full at least this often.",
                   [](Config& c) -> ms& { return c.server.imap_idle_recheck; }),
      Duration<sec>("server", "write_timeout_s", "Close a session not reading for this long.",
                    [](Config& c) -> sec& { return c.server.write_timeout; }),
      Field<size_t>(
          "server", "max_connections", "Concurrent client connections per node.",
          [](Config& c) -> size_t& { return c.server.max_connections; }, AtLeast<size_t>(1)),
      Field<bool>("store", "sync", "fsync the WAL per commit group (false: benchmarks only).",
                  [](Config& c) -> bool& { return c.store.sync; }),
      Field<size_t>("store", "block_cache_mib", "RocksDB block cache size in MiB.",
                    [](Config& c) -> size_t& { return c.store.block_cache_mib; }),
      Duration<ms>(
          "store", "debug_op_delay_ms",
          "Test only: each disk-bound operation takes this much longer (experiments).",
          [](Config& c) -> ms& { return c.store.debug_op_delay; }, /*allow_zero=*/true),
      Field<uint64_t>(
          "auth", "argon2_opslimit", "argon2id passes for new password hashes.",
          [](Config& c) -> uint64_t& { return c.auth.argon2_opslimit; }, AtLeast<uint64_t>(1)),
      Field<uint64_t>(
          "auth", "argon2_memlimit_kib", "argon2id memory for new hashes, KiB.",
          [](Config& c) -> uint64_t& { return c.auth.argon2_memlimit_kib; }, AtLeast<uint64_t>(8)),
      Field<int>(
          "auth", "failures_before_delay",
          "Failed logins of one client address or account before its answers are delayed.",
          [](Config& c) -> int& { return c.auth.throttle.failures_before_delay; }, AtLeast(0)),
      Duration<ms>(
          "auth", "delay_initial_ms", "The first delay; it doubles with each further failure.",
          [](Config& c) -> ms& { return c.auth.throttle.delay_initial; }, /*allow_zero=*/true),
      Duration<ms>(
          "auth", "delay_max_ms", "The longest delay.",
          [](Config& c) -> ms& { return c.auth.throttle.delay_max; }, /*allow_zero=*/true),
      Field<int>(
          "auth", "failures_before_lockout",
          "Failed logins of one client address or account that lock it for lockout_s.",
          [](Config& c) -> int& { return c.auth.throttle.failures_before_lockout; }, AtLeast(1)),
      Duration<sec>("auth", "lockout_s", "How long a locked address or account is refused.",
                    [](Config& c) -> sec& { return c.auth.throttle.lockout; }),
      Duration<sec>("auth", "failure_memory_s",
                    "Failures are forgotten this long after the last one (>= lockout_s).",
                    [](Config& c) -> sec& { return c.auth.throttle.forget_after; }),
      Duration<sec>(
          "auth", "trusted_login_s",
          "A success trusts its (address, account) pair this long (exempt from lockouts).",
          [](Config& c) -> sec& { return c.auth.throttle.trust; }),
      Field<size_t>(
          "auth", "max_tracked_addresses", "Client addresses with failures remembered at most.",
          [](Config& c) -> size_t& { return c.auth.throttle.max_addresses; }, AtLeast<size_t>(1)),
      Field<size_t>(
          "auth", "max_tracked_accounts", "Accounts with failures remembered at most.",
          [](Config& c) -> size_t& { return c.auth.throttle.max_accounts; }, AtLeast<size_t>(1)),
      Field<size_t>(
          "auth", "max_trusted_logins", "Trusted (address, account) pairs remembered at most.",
          [](Config& c) -> size_t& { return c.auth.throttle.max_trusted; }, AtLeast<size_t>(1)),
      Field<size_t>("auth", "login_cache_entries",
                    "Users whose last right password is remembered (keyed digest); 0 = off.",
                    [](Config& c) -> size_t& { return c.auth.login_cache_entries; }),
      Duration<sec>("auth", "login_cache_ttl_s", "A remembered password is trusted this long.",
                    [](Config& c) -> sec& { return c.auth.login_cache_ttl; }),
      Field<bool>("auth", "allow_plaintext_without_tls",
                  "Accept cleartext password logins (LOGIN, USER/PASS, PLAIN) without TLS from "
                  "any address, not only from loopback.",
                  [](Config& c) -> bool& { return c.auth.allow_plaintext_without_tls; }),
      Field<unsigned>(
          "auth", "scram_iterations",
          "PBKDF2 rounds of the SCRAM-SHA-256 secrets made when a password is set (>= 4096).",
          [](Config& c) -> unsigned& { return c.auth.scram_iterations; }, AtLeast<unsigned>(4096)),
      Field<bool>("submission", "require_sender_match",
                  "On submission listeners, MAIL FROM must be the authenticated address "
                  "(else 553 5.7.1).",
                  [](Config& c) -> bool& { return c.submission.require_sender_match; }),
      Field<std::vector<S>>(
          "dns", "servers",
          "Resolvers for outbound mail, \"ip:port\", \"[ipv6]:port\" or \"ip\" (port 53); "
          "[] = the nameservers of /etc/resolv.conf.",
          [](Config& c) -> std::vector<S>& { return c.dns.servers; }, CheckDnsServers),
      Duration<ms>("dns", "timeout_ms",
                   "One MX, A or AAAA query not answered by then is a temporary failure.",
                   [](Config& c) -> ms& { return c.dns.timeout; }),
      Field<std::vector<S>>(
          "dns", "own_names",
          "This cluster's MX host names besides mail.hostname: an MX naming one is us, and it "
          "and every worse MX are dropped.",
          [](Config& c) -> std::vector<S>& { return c.dns.own_names; }, CheckDomains),
      Field<std::vector<S>>(
          "dns", "own_addresses",
          "Public addresses of this cluster's SMTP listeners: an MX host with one is us.",
          [](Config& c) -> std::vector<S>& { return c.dns.own_addresses; }, CheckIpAddresses),
      Field<size_t>(
          "dns", "max_mx_hosts", "MX hosts looked up per domain, best first; the rest dropped.",
          [](Config& c) -> size_t& { return c.dns.limits.max_mx_hosts; }, AtLeast<size_t>(1)),
      Field<size_t>(
          "dns", "max_addresses", "Addresses tried per domain, across all its MX hosts.",
          [](Config& c) -> size_t& { return c.dns.limits.max_addresses; }, AtLeast<size_t>(1)),
      Choice<outbound::AddressFamilies>(
          "dns", "address_families", "Address records looked up: \"any\", \"ipv4\" or \"ipv6\".",
          [](Config& c) -> outbound::AddressFamilies& { return c.dns.limits.families; },
          {{"any", outbound::AddressFamilies::kAny},
           {"ipv4", outbound::AddressFamilies::kIpv4Only},
           {"ipv6", outbound::AddressFamilies::kIpv6Only}}),
      Choice<outbound::AddressPreference>(
          "dns", "address_preference",
          "Family tried first among one MX host's addresses: \"ipv6\" or \"ipv4\".",
          [](Config& c) -> outbound::AddressPreference& { return c.dns.limits.preference; },
          {{"ipv6", outbound::AddressPreference::kIpv6},
           {"ipv4", outbound::AddressPreference::kIpv4}}),
      Field<S>("tls", "cert_file",
               "Default certificate chain, PEM, leaf first (\"\" = the first of certificates).",
               [](Config& c) -> S& { return c.tls.cert_file; }),
      Field<S>("tls", "key_file", "Private key of cert_file, PEM.",
               [](Config& c) -> S& { return c.tls.key_file; }),
      Field<S>(
          "tls", "min_version", "Oldest TLS version accepted: \"1.2\" or \"1.3\".",
          [](Config& c) -> S& { return c.tls.min_version; }, Check<S>([](const S& v) {
            return v == "1.2" || v == "1.3" ? ""
                                            : "must be \"1.2\" or \"1.3\" (TLS 1.0 and 1.1 "
                                              "are refused)";
          })),
      Field<S>("tls", "ciphers", "TLS 1.2 cipher list, OpenSSL syntax (\"\" = the default).",
               [](Config& c) -> S& { return c.tls.ciphers; }),
      Field<S>("tls", "ciphersuites", "TLS 1.3 cipher suites (\"\" = the default).",
               [](Config& c) -> S& { return c.tls.ciphersuites; }),
      Duration<sec>("tls", "handshake_timeout_s", "A TLS handshake not done by then is cut.",
                    [](Config& c) -> sec& { return c.tls.handshake_timeout; }),
      Certificates(),
      Field<S>("acme", "directory_url",
               "ACME directory URL; set = certificates from that CA (\"\" = off).",
               [](Config& c) -> S& { return c.acme.directory_url; }),
      Field<S>("acme", "email", "ACME account contact address (\"\" = none).",
               [](Config& c) -> S& { return c.acme.email; }),
      Field<std::vector<S>>(
          "acme", "domains", "Names to certify (empty = mail.hostname); the same on every node.",
          [](Config& c) -> std::vector<S>& { return c.acme.domains; }, CheckDomains),
      Field<S>(
          "acme", "challenge", "Challenge type: \"http-01\" (answered on listen.acme_http).",
          [](Config& c) -> S& { return c.acme.challenge; },
          Check<S>([](const S& v) { return v == "http-01" ? "" : "must be \"http-01\""; })),
      Field<S>("acme", "ca_file", "PEM roots trusted for the ACME API (\"\" = the system's).",
               [](Config& c) -> S& { return c.acme.ca_file; }),
      Field<int>(
          "acme", "renew_before_days", "Renew a certificate this many days before it expires.",
          [](Config& c) -> int& { return c.acme.renew_before_days; }, AtLeast(1)),
      Duration<sec>("acme", "check_interval_s",
                    "The stored certificate and its expiry are checked this often.",
                    [](Config& c) -> sec& { return c.acme.check_interval; }),
      Duration<sec>("acme", "retry_max_s",
                    "Failed orders are retried after check_interval_s, doubling up to this.",
                    [](Config& c) -> sec& { return c.acme.retry_max; }),
      Duration<sec>("acme", "validation_timeout_s",
                    "An order whose validation and issuance take longer has failed.",
                    [](Config& c) -> sec& { return c.acme.validation_timeout; }),
      Field<S>("admin", "token", "If set, admin API calls need 'Authorization: Bearer TOKEN'.",
               [](Config& c) -> S& { return c.admin.token; }),
      Field<S>("admin", "tls_cert_file", "PEM certificate: the admin API speaks HTTPS only.",
               [](Config& c) -> S& { return c.admin.tls_cert_file; }),
      Field<S>("admin", "tls_key_file", "PEM private key of admin.tls_cert_file.",
               [](Config& c) -> S& { return c.admin.tls_key_file; }),
      Duration<sec>("admin", "tls_refresh_s", "Replaced admin TLS files are used this long after.",
                    [](Config& c) -> sec& { return c.admin.tls_refresh; }),
      Field<bool>("admin", "allow_insecure",
                  "Allow a non-loopback admin address without HTTPS and a token.",
                  [](Config& c) -> bool& { return c.admin.allow_insecure; }),
      Duration<sec>("admin", "header_timeout_s",
                    "A request's line and headers (and TLS handshake) must arrive within this.",
                    [](Config& c) -> sec& { return c.admin.limits.header_timeout; }),
      Duration<sec>("admin", "body_timeout_s",
                    "A request's body must arrive within this after its head.",
                    [](Config& c) -> sec& { return c.admin.limits.body_timeout; }),
      Duration<sec>("admin", "write_timeout_s", "A response must be taken within this.",
                    [](Config& c) -> sec& { return c.admin.limits.write_timeout; }),
      Field<size_t>(
          "admin", "max_connections",
          "Admin connections served at once; more are refused (503) at once.",
          [](Config& c) -> size_t& { return c.admin.limits.max_connections; }, AtLeast<size_t>(2)),
      Field<size_t>("admin", "health_connections",
                    "Connections beyond max_connections that may only GET /healthz or /readyz.",
                    [](Config& c) -> size_t& { return c.admin.limits.health_connections; }),
      Duration<sec>("admin", "health_header_timeout_s",
                    "A connection on a health slot must send its request head within this.",
                    [](Config& c) -> sec& { return c.admin.limits.health_header_timeout; }),
      Field<size_t>(
          "admin", "max_header_bytes", "Largest request line plus headers (431 above).",
          [](Config& c) -> size_t& { return c.admin.limits.max_header_bytes; },
          AtLeast<size_t>(1024)),
      Field<size_t>(
          "admin", "max_body_bytes", "Largest request body (413 above).",
          [](Config& c) -> size_t& { return c.admin.limits.max_body_bytes; },
          AtLeast<size_t>(1024)),
      Field<S>(
          "log", "level", "Log level.", [](Config& c) -> S& { return c.log.level; }, CheckLevel),
      Field<uint64_t>(
          "limits", "smtp_max_message_bytes", "Largest message accepted (SIZE).",
          [](Config& c) -> uint64_t& { return c.smtp.max_message_bytes; }, AtLeast<uint64_t>(1024)),
      MessageMemory(),
      Alias(MessageMemory(), "smtp_data_memory_bytes"),
      Field<size_t>("limits", "max_connections_per_address",
                    "Connections one client address (IPv6: its /64) may hold at once, all "
                    "listeners together; 0 = no limit.",
                    [](Config& c) -> size_t& { return c.node_limits.max_connections_per_address; }),
      Field<bool>("limits", "address_limit_exempts_loopback",
                  "Loopback peers are not limited by max_connections_per_address.",
                  [](Config& c) -> bool& { return c.node_limits.address_limit_exempts_loopback; }),
      Field<size_t>(
          "limits", "smtp_max_recipients", "Recipients per SMTP transaction.",
          [](Config& c) -> size_t& { return c.smtp.max_recipients; }, AtLeast<size_t>(1)),
      Field<size_t>(
          "limits", "smtp_max_command_line", "Longest SMTP command line (with CRLF).",
          [](Config& c) -> size_t& { return c.smtp.max_command_line; }, AtLeast<size_t>(512)),
      Field<size_t>(
          "limits", "smtp_max_auth_line",
          "Longest SMTP AUTH command or SASL response line (with CRLF; RFC 4954: 12288).",
          [](Config& c) -> size_t& { return c.smtp.max_auth_line; }, AtLeast<size_t>(512)),
      Field<size_t>(
          "limits", "smtp_max_data_line", "Longest line inside DATA (with CRLF).",
          [](Config& c) -> size_t& { return c.smtp.max_data_line; }, AtLeast<size_t>(1000)),
      Field<int>(
          "limits", "smtp_soft_error_limit", "SMTP errors before replies are delayed.",
          [](Config& c) -> int& { return c.smtp.soft_error_limit; }, AtLeast(0)),
      Field<int>(
          "limits", "smtp_hard_error_limit", "SMTP errors before disconnect.",
          [](Config& c) -> int& { return c.smtp.hard_error_limit; }, AtLeast(1)),
      Duration<ms>("limits", "smtp_tarpit_delay_ms", "Delay per reply past the soft limit.",
                   [](Config& c) -> ms& { return c.smtp.tarpit_delay; }),
      Field<uint64_t>(
          "limits", "smtp_max_commands", "Commands per SMTP session.",
          [](Config& c) -> uint64_t& { return c.smtp.max_commands; }, AtLeast<uint64_t>(10)),
      Field<size_t>(
          "limits", "pop3_max_command_line", "Longest POP3 command line (with CRLF).",
          [](Config& c) -> size_t& { return c.pop3.max_command_line; }, AtLeast<size_t>(255)),
      Field<int>(
          "limits", "pop3_soft_error_limit", "POP3 errors before replies are delayed.",
          [](Config& c) -> int& { return c.pop3.soft_error_limit; }, AtLeast(0)),
      Field<int>(
          "limits", "pop3_hard_error_limit", "POP3 errors before disconnect.",
          [](Config& c) -> int& { return c.pop3.hard_error_limit; }, AtLeast(1)),
      Duration<ms>("limits", "pop3_tarpit_delay_ms", "Delay per reply past the soft limit.",
                   [](Config& c) -> ms& { return c.pop3.tarpit_delay; }),
      Field<uint64_t>(
          "limits", "pop3_max_commands", "Commands per POP3 session.",
          [](Config& c) -> uint64_t& { return c.pop3.max_commands; }, AtLeast<uint64_t>(10)),
      Field<size_t>(
          "limits", "imap_max_line", "Longest IMAP command line between literals (with CRLF).",
          [](Config& c) -> size_t& { return c.imap.parser.max_line; }, AtLeast<size_t>(1024)),
      Field<uint64_t>(
          "limits", "imap_max_literal", "Largest IMAP literal (the APPEND message size).",
          [](Config& c) -> uint64_t& { return c.imap.parser.max_literal; },
          AtLeast<uint64_t>(1024)),
      Field<int>(
          "limits", "imap_max_depth", "Deepest nesting of parenthesized lists in a command.",
          [](Config& c) -> int& { return c.imap.parser.max_depth; }, AtLeast(4)),
      Field<size_t>(
          "limits", "imap_max_pipelined", "IMAP commands read ahead of the one executing.",
          [](Config& c) -> size_t& { return c.imap.max_pipelined; }, AtLeast<size_t>(1)),
      Field<int>(
          "limits", "imap_soft_error_limit", "IMAP errors before replies are delayed.",
          [](Config& c) -> int& { return c.imap.soft_error_limit; }, AtLeast(0)),
      Field<int>(
          "limits", "imap_hard_error_limit", "IMAP errors before disconnect.",
          [](Config& c) -> int& { return c.imap.hard_error_limit; }, AtLeast(1)),
      Duration<ms>("limits", "imap_tarpit_delay_ms", "Delay per reply past the soft limit.",
                   [](Config& c) -> ms& { return c.imap.tarpit_delay; }),
      Field<uint64_t>(
          "limits", "imap_max_commands", "Commands per IMAP session.",
          [](Config& c) -> uint64_t& { return c.imap.max_commands; }, AtLeast<uint64_t>(10)),
      Duration<ms>("limits", "imap_idle_poll_ms",
                   "How often an IMAP IDLE session looks for changes.",
                   [](Config& c) -> ms& { return c.imap.idle_poll; }),
  };
  return keys;
}

std::string DefaultHostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

// A configured postmaster mailbox is an address in a local domain (mail for
// it is never relayed), kept in canonical form.
Status CheckPostmaster(Config::Mail& m) {
  if (m.postmaster.empty()) return Status::Ok();
  std::optional<std::string> canonical = CanonicalAddress(m.postmaster);
  if (!canonical) return Status::InvalidArgument("mail.postmaster: must be a mail address");
  if (std::find(m.domains.begin(), m.domains.end(), DomainOf(*canonical)) == m.domains.end()) {
    return Status::InvalidArgument("mail.postmaster: must be in one of mail.domains");
  }
  m.postmaster = std::move(*canonical);
  return Status::Ok();
}

// "" when the named files are all set or all empty; else the first unset
// key and what it needs.
std::string AllOrNone(const std::string& section,
                      const std::vector<std::pair<const char*, const std::string*>>& keys) {
  size_t set = 0;
  for (const auto& k : keys) set += !k.second->empty();
  if (set == 0 || set == keys.size()) return "";
  std::string all;
  for (const auto& k : keys)
    all += fmt::format("{}{}.{}", all.empty() ? "" : ", ", section, k.first);
  for (const auto& k : keys) {
    if (k.second->empty()) return fmt::format("{}.{}: is required with {}", section, k.first, all);
  }
  return "";
}

Status CheckTlsKeys(const Config& c) {
  std::string problem = AllOrNone("cluster", {{"tls_ca_file", &c.cluster.tls_ca_file},
                                              {"tls_cert_file", &c.cluster.tls_cert_file},
                                              {"tls_key_file", &c.cluster.tls_key_file}});
  if (problem.empty()) {
    problem = AllOrNone("admin", {{"tls_cert_file", &c.admin.tls_cert_file},
                                  {"tls_key_file", &c.admin.tls_key_file}});
  }
  return problem.empty() ? Status::Ok() : Status::InvalidArgument(problem);
}

// The implicit-TLS listeners need a certificate; a certificate needs its key.
Status CheckTls(const Config& c) {
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    return Status::InvalidArgument("tls.key_file: cert_file and key_file go together");
  }
  const std::pair<const char*, const std::string*> implicit[] = {
      {"submissions", &c.listen.submissions},
      {"imaps", &c.listen.imaps},
      {"pop3s", &c.listen.pop3s}};
  for (const auto& [name, addr] : implicit) {
    if (!addr->empty() && !c.tls.enabled() && !c.acme.enabled()) {
      return Status::InvalidArgument(std::string("listen.") + name +
                                     ": needs a certificate (tls.cert_file or [acme])");
    }
  }
  return Status::Ok();
}

// [acme] needs somewhere to answer its challenges, and names to certify.
Status CheckAcme(Config& c) {
  if (!c.acme.enabled()) return Status::Ok();
  if (c.acme.directory_url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("acme.directory_url: must be an https:// URL");
  }
  if (c.acme.domains.empty()) c.acme.domains = {c.mail.hostname};
  for (std::string& d : c.acme.domains) {
    for (char& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (d.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos ||
        d.find('.') == std::string::npos) {
      return Status::InvalidArgument("acme.domains: \"" + d +
                                     "\" is not a fully qualified DNS name");
    }
  }
  if (c.acme.retry_max < c.acme.check_interval) {
    return Status::InvalidArgument("acme.retry_max_s: must be at least acme.check_interval_s");
  }
  return Status::Ok();
}

Status Finish(Config& c) {
  if (c.node.data_dir.empty()) return Status::InvalidArgument("node.data_dir: is required");
  PORCUPINE_RETURN_IF_ERROR(CheckTlsKeys(c));
  if (c.mail.domains.empty()) {
    return Status::InvalidArgument("mail.domains: at least one local domain is required");
  }
  for (std::string& d : c.mail.domains) {
    for (char& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  PORCUPINE_RETURN_IF_ERROR(CheckPostmaster(c.mail));
  if (c.node.name.empty()) c.node.name = DefaultHostName();
  if (c.mail.hostname.empty()) c.mail.hostname = c.node.name;
  if (c.smtp.hard_error_limit <= c.smtp.soft_error_limit) {
    return Status::InvalidArgument(
        "limits.smtp_hard_error_limit: must be larger than smtp_soft_error_limit");
  }
  if ((c.cluster.max_rpc_message_mib << 20) < c.smtp.max_message_bytes + (1u << 20)) {
    return Status::InvalidArgument(
        "cluster.max_rpc_message_mib: must exceed limits.smtp_max_message_bytes by 1 MiB");
  }
  // A message's buffer doubles as it grows, and both buffers exist while it
  // moves (smtp/session_data.cc): the largest message alone must fit.
  if (c.node_limits.message_memory_bytes < 2 * c.smtp.max_message_bytes + (1u << 20)) {
    return Status::InvalidArgument(
        "limits.message_memory_bytes: must be at least twice limits.smtp_max_message_bytes "
        "plus 1 MiB (old name: limits.smtp_data_memory_bytes)");
  }
  // An IMAP literal is reserved whole: one larger than the budget could never
  // be taken, only refused "try again later" for ever. It is lowered instead
  // (so a budget set before IMAP shared it keeps working).
  c.imap.parser.max_literal = std::min<uint64_t>(c.imap.parser.max_literal,
                                                 c.node_limits.message_memory_bytes - (1u << 20));
  if (c.smtp.max_auth_line < c.smtp.max_command_line) {
    return Status::InvalidArgument(
        "limits.smtp_max_auth_line: must be at least limits.smtp_max_command_line");
  }
  if (c.cluster.ack_copies > c.cluster.replication) {
    return Status::InvalidArgument("cluster.ack_copies: must not exceed cluster.replication");
  }
  if (c.cluster.ack_copies == 0) c.cluster.ack_copies = std::min(c.cluster.replication, 2);
  if (c.cluster.ping_timeout <= c.cluster.ping_interval) {
    return Status::InvalidArgument("cluster.ping_timeout_ms: must be larger than ping_interval_ms");
  }
  if (c.imap.hard_error_limit <= c.imap.soft_error_limit) {
    return Status::InvalidArgument(
        "limits.imap_hard_error_limit: must be larger than imap_soft_error_limit");
  }
  if ((c.cluster.max_rpc_message_mib << 20) < c.imap.parser.max_literal + (1u << 20)) {
    return Status::InvalidArgument(
        "cluster.max_rpc_message_mib: must exceed limits.imap_max_literal by 1 MiB");
  }
  c.imap.max_message_size = c.imap.parser.max_literal;
  c.imap.parser.max_command =
      std::max<size_t>(c.imap.parser.max_command, c.imap.parser.max_literal + (1u << 20));
  if (c.auth.throttle.forget_after < c.auth.throttle.lockout) {
    return Status::InvalidArgument("auth.failure_memory_s: must be at least auth.lockout_s");
  }
  if (c.auth.throttle.delay_max < c.auth.throttle.delay_initial) {
    return Status::InvalidArgument("auth.delay_max_ms: must be at least auth.delay_initial_ms");
  }
  PORCUPINE_RETURN_IF_ERROR(CheckTls(c));
  PORCUPINE_RETURN_IF_ERROR(CheckAcme(c));
  if (c.pop3.hard_error_limit <= c.pop3.soft_error_limit) {
    return Status::InvalidArgument(
        "limits.pop3_hard_error_limit: must be larger than pop3_soft_error_limit");
  }
  return Status::Ok();
}

}  // namespace

Result<Config> ParseConfig(const std::string& toml_text) {
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(
        fmt::format("config line {}: {}", e.source().begin.line, std::string(e.description())));
  }
  std::map<std::string, std::map<std::string, const Key*>> index;
  for (const Key& k : Keys()) index[k.section][k.name] = &k;

  Config config;
  for (const auto& [section, node] : root) {
    auto sec = index.find(std::string(section.str()));
    if (sec == index.end()) {
      return Status::InvalidArgument(fmt::format("{}: unknown section", section.str()));
    }
    const toml::table* table = node.as_table();
    if (!table) return Status::InvalidArgument(fmt::format("{}: must be a table", section.str()));
    for (const auto& [name, value] : *table) {
      std::string full = fmt::format("{}.{}", section.str(), name.str());
      auto key = sec->second.find(std::string(name.str()));
      if (key == sec->second.end()) return Status::InvalidArgument(full + ": unknown key");
      const std::string& alias_of = key->second->alias_of;
      if (!alias_of.empty() && table->contains(alias_of)) {
        return Status::InvalidArgument(fmt::format("{}: is the old name of {}.{}; set only one",
                                                   full, section.str(), alias_of));
      }
      Status st = key->second->set(value, config);
      if (!st.ok()) return Status::InvalidArgument(full + ": " + st.message());
    }
  }
  PORCUPINE_RETURN_IF_ERROR(Finish(config));
  return config;
}

Result<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str());
}

std::string DefaultConfigToml() {
  Config defaults;
  std::string out;
  std::string section;
  for (const Key& k : Keys()) {
    if (!k.alias_of.empty()) continue;  // documented under its new name
    if (k.section != section) {
      section = k.section;
      out += fmt::format("{}[{}]\n", out.empty() ? "" : "\n", section);
    }
    out += fmt::format("# {}\n{} = {}\n", k.doc, k.name, k.show(defaults));
  }
  return out;
}

}  // namespace porcupine::node
