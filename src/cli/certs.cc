#include "cli/certs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "net/pki.h"

namespace porcupine::cli {
namespace {

namespace fs = std::filesystem;

// Node names become file names and certificate names.
Status CheckNodeName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && name.front() != '.' && name.front() != '-';
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_');
  }
  if (!ok) {
    return Status::InvalidArgument("--nodes: bad node name \"" + name +
                                   "\" (letters, digits, '.', '-', '_')");
  }
  if (name == "ca") return Status::InvalidArgument("--nodes: \"ca\" is the CA's file name");
  return Status::Ok();
}

// Writes a file through a temporary file and a rename, readable by its owner
// only when `secret`.
Status WriteFile(const fs::path& path, const std::string& text, bool secret) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, secret ? 0600 : 0644);
  if (fd < 0) return Status::IoError("cannot write " + tmp.string() + ": " + strerror(errno));
  bool ok = ::fchmod(fd, secret ? 0600 : 0644) == 0;
  size_t done = 0;
  while (ok && done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::IoError("cannot write " + path.string() + ": " + strerror(errno));
  }
  return Status::Ok();
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string RandomSuffix() {
  unsigned char b[4] = {};
  if (sodium_init() >= 0) randombytes_buf(b, sizeof b);
  return fmt::format("{:02x}{:02x}{:02x}{:02x}", b[0], b[1], b[2], b[3]);
}

// The CA to sign with: the one in `dir` if both files are there, else a new
// one (returned with *created, not yet written).
Result<net::KeyPair> LoadOrMakeCa(const fs::path& dir, int days, bool* created) {
  const bool have_crt = fs::exists(dir / "ca.crt");
  const bool have_key = fs::exists(dir / "ca.key");
  if (have_crt != have_key) {
    return Status::InvalidArgument(
        fmt::format("{}: found {} without {}: restore it, or use another --out for a new CA",
                    dir.string(), have_crt ? "ca.crt" : "ca.key", have_crt ? "ca.key" : "ca.crt"));
  }
  *created = !have_crt;
  if (*created) return net::MakeCa("porcupine cluster CA " + RandomSuffix(), days);
  Result<std::string> crt = net::ReadFileText((dir / "ca.crt").string());
  if (!crt.ok()) return crt.status();
  Result<std::string> key = net::ReadFileText((dir / "ca.key").string());
  if (!key.ok()) return key.status();
  net::KeyPair ca{*crt, *key};
  Status st = net::CheckKeyPair(ca);
  if (!st.ok()) return Status::InvalidArgument((dir / "ca.crt").string() + ": " + st.message());
  return ca;
}

std::string Describe(const std::string& cert_pem) {
  Result<net::CertInfo> info = net::DescribeCert(cert_pem);
  if (!info.ok()) return "?";
  return fmt::format("{}; valid until {}", Join(info->sans, ", "), info->not_after);
}

}  // namespace

Status MakeClusterCerts(const CertsOptions& o, std::string* report) {
  if (o.out.empty()) return Status::InvalidArgument("--out: a directory is required");
  if (o.nodes.empty()) return Status::InvalidArgument("--nodes: at least one node name");
  std::set<std::string> seen;
  for (const std::string& n : o.nodes) {
    PORCUPINE_RETURN_IF_ERROR(CheckNodeName(n));
    if (!seen.insert(n).second) return Status::InvalidArgument("--nodes: " + n + " twice");
  }
  std::error_code ec;
  const fs::path dir = fs::absolute(o.out, ec);
  if (ec) return Status::InvalidArgument("--out: " + ec.message());
  for (const std::string& n : o.nodes) {
    for (const char* ext : {".crt", ".key"}) {
      if (fs::exists(dir / (n + ext))) {
        return Status::InvalidArgument(
            fmt::format("{}: exists; remove {}.crt and {}.key to issue a new certificate for {}",
                        (dir / (n + ext)).string(), n, n, n));
      }
    }
  }
  bool created = false;
  Result<net::KeyPair> ca = LoadOrMakeCa(dir, o.ca_days, &created);
  if (!ca.ok()) return ca.status();
  // Issue everything before writing anything: a bad host name leaves no
  // half-made directory behind.
  std::vector<net::KeyPair> pairs;
  for (const std::string& n : o.nodes) {
    std::vector<std::string> hosts = {n};
    for (const std::string& h : o.hosts) {
      if (h != n) hosts.push_back(h);
    }
    Result<net::KeyPair> pair = net::IssueCert(*ca, {n, hosts, o.days});
    if (!pair.ok()) return Status(pair.status().code(), n + ": " + pair.status().message());
    pairs.push_back(std::move(*pair));
  }
  if (!fs::exists(dir)) {
    fs::create_directories(dir, ec);
    if (ec) return Status::IoError("--out " + dir.string() + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  std::string out;
  if (created) {
    PORCUPINE_RETURN_IF_ERROR(WriteFile(dir / "ca.key", ca->key_pem, true));
    PORCUPINE_RETURN_IF_ERROR(WriteFile(dir / "ca.crt", ca->cert_pem, false));
  }
  Result<net::CertInfo> ca_info = net::DescribeCert(ca->cert_pem);
  out += fmt::format("{} {}: the cluster CA \"{}\", valid until {}\n", created ? "wrote" : "used ",
                     (dir / "ca.crt").string(), ca_info.ok() ? ca_info->subject_cn : "?",
                     ca_info.ok() ? ca_info->not_after : "?");
  if (created) {
    out += fmt::format(
        "wrote {}: the CA's key (mode 0600); keep it off the nodes, it is needed "
        "only to issue more certificates\n",
        (dir / "ca.key").string());
  }
  for (size_t i = 0; i < o.nodes.size(); ++i) {
    const std::string& n = o.nodes[i];
    PORCUPINE_RETURN_IF_ERROR(WriteFile(dir / (n + ".key"), pairs[i].key_pem, true));
    PORCUPINE_RETURN_IF_ERROR(WriteFile(dir / (n + ".crt"), pairs[i].cert_pem, false));
    out += fmt::format("wrote {} and {}.key (mode 0600): node {} ({})\n",
                       (dir / (n + ".crt")).string(), n, n, Describe(pairs[i].cert_pem));
  }
  out +=
      "\nOn each node NAME (copy ca.crt, NAME.crt and NAME.key to it, keys mode 0600), with "
      "one\nsecret shared by every node (e.g. `openssl rand -hex 32`):\n";
  for (const std::string& n : o.nodes) {
    out += fmt::format(
        "\n# node {}\n[cluster]\ntls_ca_file = \"{}\"\ntls_cert_file = \"{}\"\n"
        "tls_key_file = \"{}\"\nsecret = \"...\"\n",
        n, (dir / "ca.crt").string(), (dir / (n + ".crt")).string(), (dir / (n + ".key")).string());
  }
  out += fmt::format(
      "\nThe admin API can serve HTTPS with the same files ([admin] tls_cert_file, tls_key_file,\n"
      "and a token); clients then trust the CA: `porcupine user list --admin https://HOST:PORT\n"
      "--ca-file {} --token ...`.\n",
      (dir / "ca.crt").string());
  *report = std::move(out);
  return Status::Ok();
}

}  // namespace porcupine::cli
