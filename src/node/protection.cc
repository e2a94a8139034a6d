#include "node/protection.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <ctime>

#include "net/pki.h"

namespace porcupine::node {
namespace {

std::string HostOf(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  std::string host = colon == std::string::npos ? host_port : host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

bool IsUnspecified(const std::string& host) {
  return host.empty() || host == "*" || host == "0.0.0.0" || host == "::";
}

struct Address {
  std::string key;  // "listen.cluster"
  std::string value;
};

std::vector<Address> ClusterAddresses(const Config& c) {
  std::vector<Address> out = {{"listen.cluster", c.listen.cluster}};
  if (!c.cluster.advertise.empty()) out.push_back({"cluster.advertise", c.cluster.advertise});
  for (const std::string& s : c.cluster.seeds) out.push_back({"cluster.seeds", s});
  return out;
}

bool ClusterProtected(const Config& c) {
  return !c.cluster.tls_ca_file.empty() && !c.cluster.secret.empty();
}

bool AdminProtected(const Config& c) {
  return !c.admin.tls_cert_file.empty() && !c.admin.token.empty();
}

std::string ClusterMissing(const Config& c) {
  const bool tls = !c.cluster.tls_ca_file.empty();
  const bool secret = !c.cluster.secret.empty();
  if (!tls && !secret) return "mutual TLS and a cluster.secret";
  return tls ? "a cluster.secret" : "mutual TLS";
}

std::string AdminMissing(const Config& c) {
  const bool https = !c.admin.tls_cert_file.empty();
  const bool token = !c.admin.token.empty();
  if (!https && !token) return "HTTPS and an admin.token";
  return https ? "an admin.token" : "HTTPS";
}

}  // namespace

bool IsLoopback(const std::string& host_port) {
  std::string host = HostOf(host_port);
  if (host == "localhost") return true;
  unsigned char v4[4];
  if (inet_pton(AF_INET, host.c_str(), v4) == 1) return v4[0] == 127;
  unsigned char v6[16];
  if (inet_pton(AF_INET6, host.c_str(), v6) == 1) {
    static const unsigned char kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return std::equal(v6, v6 + 16, kLoop);
  }
  return false;
}

Status CheckExposure(const Config& c) {
  if (!ClusterProtected(c) && !c.cluster.allow_insecure) {
    for (const Address& a : ClusterAddresses(c)) {
      if (a.value.empty() || IsLoopback(a.value)) continue;
      return Status::InvalidArgument(fmt::format(
          "{}: {} is not a loopback address: cluster traffic beyond this machine needs {} "
          "(cluster.tls_ca_file, tls_cert_file, tls_key_file: `porcupine cluster certs`; "
          "docs/security.md), or cluster.allow_insecure = true on a network nothing else reaches",
          a.key, a.value, ClusterMissing(c)));
    }
  }
  const std::string& admin = c.listen.admin;
  if (!admin.empty() && !IsLoopback(admin) && !AdminProtected(c) && !c.admin.allow_insecure) {
    return Status::InvalidArgument(
        fmt::format("listen.admin: {} is not a loopback address: the admin API there needs {} "
                    "(admin.tls_cert_file, tls_key_file and admin.token; docs/security.md), or "
                    "admin.allow_insecure = true",
                    admin, AdminMissing(c)));
  }
  return Status::Ok();
}

std::vector<std::string> InsecureWarnings(const Config& c) {
  std::vector<std::string> out;
  if (!ClusterProtected(c)) {
    for (const Address& a : ClusterAddresses(c)) {
      if (a.value.empty() || IsLoopback(a.value)) continue;
      out.push_back(fmt::format(
          "cluster.allow_insecure: {} {} is not loopback and cluster traffic has no {}: any "
          "process that reaches it can join the cluster and read all mail",
          a.key, a.value, ClusterMissing(c)));
    }
  }
  if (!c.listen.admin.empty() && !IsLoopback(c.listen.admin) && !AdminProtected(c)) {
    out.push_back(fmt::format(
        "admin.allow_insecure: listen.admin {} is not loopback and the admin API has no {}",
        c.listen.admin, AdminMissing(c)));
  }
  return out;
}

Status CheckClusterTls(const Config& c, std::vector<std::string>* warnings) {
  const Config::Cluster& cc = c.cluster;
  if (cc.tls_ca_file.empty()) return Status::Ok();
  Result<std::string> ca = net::ReadFileText(cc.tls_ca_file);
  if (!ca.ok()) return Status(ca.status().code(), "cluster.tls_ca_file: " + ca.status().message());
  Result<std::string> cert = net::ReadFileText(cc.tls_cert_file);
  if (!cert.ok()) {
    return Status(cert.status().code(), "cluster.tls_cert_file: " + cert.status().message());
  }
  Result<std::string> key = net::ReadFileText(cc.tls_key_file);
  if (!key.ok()) {
    return Status(key.status().code(), "cluster.tls_key_file: " + key.status().message());
  }
  Status st = net::VerifyKeyPair(*ca, {*cert, *key});
  if (!st.ok()) {
    return Status::InvalidArgument(fmt::format(
        "cluster.tls_cert_file: {} with cluster.tls_key_file {} and cluster.tls_ca_file {}: {}",
        cc.tls_cert_file, cc.tls_key_file, cc.tls_ca_file, st.message()));
  }
  const std::string dialled = !cc.advertise.empty() ? cc.advertise : c.listen.cluster;
  const std::string host = HostOf(dialled);
  Result<net::CertInfo> info = net::DescribeCert(*cert);
  if (!IsUnspecified(host) && !net::CertNamesHost(*cert, host)) {
    std::string names;
    for (const std::string& n : info.ok() ? info->sans : std::vector<std::string>{}) {
      names += (names.empty() ? "" : ", ") + n;
    }
    return Status::InvalidArgument(fmt::format(
        "cluster.tls_cert_file: {} does not name {}, the host other nodes dial ({}); it names "
        "[{}]: issue it with `porcupine cluster certs --hosts {}`",
        cc.tls_cert_file, host, cc.advertise.empty() ? "listen.cluster" : "cluster.advertise",
        names, host));
  }
  struct stat kst = {};
  if (stat(cc.tls_key_file.c_str(), &kst) == 0 && (kst.st_mode & 077) != 0) {
    warnings->push_back(fmt::format("cluster.tls_key_file: {} is readable by others (mode {:o})",
                                    cc.tls_key_file, kst.st_mode & 0777));
  }
  if (info.ok() && info->not_after_unix < static_cast<int64_t>(time(nullptr)) + 30 * 86400) {
    warnings->push_back(
        fmt::format("cluster.tls_cert_file: {} expires at {}", cc.tls_cert_file, info->not_after));
  }
  return Status::Ok();
}

}  // namespace porcupine::node
