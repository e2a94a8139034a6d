#include "bench/plan.h"

#include <filesystem>

#include "bench/conn.h"
#include "bench/message.h"

namespace porcupine::bench {
namespace {

Status Bad(const std::string& what) { return Status::InvalidArgument(what); }

int ResolvedReaders(const BenchOptions& o) { return o.readers < 0 ? o.sessions / 4 : o.readers; }

Status CheckRanges(const BenchOptions& o, const OptionBounds& b) {
  if (!(o.duration_s > 0 && o.duration_s <= b.max_duration_s)) {
    return Bad("--duration must be in (0, " +
               std::to_string(static_cast<int64_t>(b.max_duration_s)) + "] seconds");
  }
  if (!(o.warmup_s >= 0 && o.warmup_s <= b.max_duration_s)) return Bad("--warmup out of range");
  if (!(o.drain_s >= 0 && o.drain_s <= 60)) return Bad("--drain must be in [0, 60] seconds");
  if (o.sessions < 0 || o.readers < -1) return Bad("--sessions and --readers must be >= 0");
  int total = o.sessions + ResolvedReaders(o);
  if (total < 1) return Bad("need at least one sender (--sessions) or reader (--readers)");
  if (total > b.max_sessions)
    return Bad("--sessions + --readers above " + std::to_string(b.max_sessions));
  if (o.threads < 1 || o.threads > b.max_threads) return Bad("--threads out of range");
  if (o.users < 1 || o.users > b.max_users) return Bad("--users out of range");
  if (o.recipients < 1 || o.recipients > b.max_recipients || o.recipients > o.users) {
    return Bad("--recipients must be in [1, min(--users, " + std::to_string(b.max_recipients) +
               ")]");
  }
  if (!(o.rate >= 0 && o.rate <= 1e7)) return Bad("--rate must be in [0, 1e7]");
  if (o.rate > 0 && o.sessions == 0) return Bad("--rate needs sender sessions");
  if (!(o.size_mean >= 1) || o.size_max < 1 || o.size_max > b.max_size ||
      o.size_mean > static_cast<double>(o.size_max)) {
    return Bad("need 1 <= --size-mean <= --size-max <= " + std::to_string(b.max_size));
  }
  if (!(o.size_sigma >= 0 && o.size_sigma <= 4)) return Bad("--size-sigma must be in [0, 4]");
  if (!(o.zipf >= 0 && o.zipf <= 10)) return Bad("--zipf must be in [0, 10]");
  if (o.messages_per_connection < 1) return Bad("--messages-per-connection must be >= 1");
  if (o.retr_max < 1) return Bad("--retr-max must be >= 1");
  if (o.poll_ms < 1 || o.poll_ms > 60000) return Bad("--poll-ms must be in [1, 60000]");
  if (!(o.timeout_s > 0 && o.timeout_s <= 3600)) return Bad("--timeout must be in (0, 3600]");
  if (o.setup_threads < 1 || o.setup_threads > 256) return Bad("--setup-threads out of range");
  return Status::Ok();
}

Status CheckUser(const BenchOptions& o) {
  auto clean = [](const std::string& s) {
    for (char c : s) {
      if (c <= ' ' || c == '<' || c == '>' || c == '@' || c == ',' || c == '"' || c == 127) {
        return false;
      }
    }
    return true;
  };
  if (o.domain.empty() || !clean(o.domain)) return Bad("--domain is not a plain domain");
  if (o.user_prefix.empty() || !clean(o.user_prefix)) return Bad("--user-prefix is not plain");
  if (o.password.empty() || o.password.find_first_of("\r\n") != std::string::npos) {
    return Bad("--password must be one non-empty line");
  }
  return Status::Ok();
}

Result<std::vector<std::vector<asio::ip::tcp::endpoint>>> ResolveAll(
    const std::vector<HostPort>& hosts) {
  std::vector<std::vector<asio::ip::tcp::endpoint>> out;
  for (const HostPort& hp : hosts) {
    auto eps = Resolve(hp);
    if (!eps.ok()) return eps.status();
    out.push_back(std::move(*eps));
  }
  return out;
}

Status ParseLists(const BenchOptions& o, Plan* plan) {
  auto parse = [](const std::string& list, const char* name, std::vector<HostPort>* out) {
    auto r = ParseAddressList(list);
    if (!r.ok()) return Bad(std::string(name) + ": " + r.status().message());
    *out = std::move(*r);
    return Status::Ok();
  };
  PORCUPINE_RETURN_IF_ERROR(parse(o.admin, "--admin", &plan->admin));
  PORCUPINE_RETURN_IF_ERROR(parse(o.smtp, "--smtp", &plan->smtp_hosts));
  PORCUPINE_RETURN_IF_ERROR(parse(o.pop3, "--pop3", &plan->pop3_hosts));
  if (o.sessions > 0 && plan->smtp_hosts.empty())
    return Bad("--smtp is required with --sessions > 0");
  if (plan->readers > 0 && plan->pop3_hosts.empty()) {
    return Bad("--pop3 is required with readers (or pass --readers 0)");
  }
  if (o.create_users && plan->admin.empty()) {
    return Bad("--admin is required to create users (or pass --create-users=false)");
  }
  return Status::Ok();
}

Status ParsePids(const BenchOptions& o, Plan* plan) {
  auto pids = ParsePidList(o.pids);
  if (!pids.ok()) return Bad("--pids: " + pids.status().message());
  plan->pids = std::move(*pids);
  size_t pos = 0;
  while (pos < o.pid_files.size()) {
    size_t comma = o.pid_files.find(',', pos);
    std::string path = o.pid_files.substr(pos, comma == std::string::npos ? comma : comma - pos);
    pos = comma == std::string::npos ? o.pid_files.size() : comma + 1;
    if (path.empty()) continue;
    auto more = ReadPidFile(path);
    if (!more.ok()) return more.status();
    plan->pids.insert(plan->pids.end(), more->begin(), more->end());
  }
  for (int pid : plan->pids) {
    if (!std::filesystem::exists("/proc/" + std::to_string(pid) + "/stat")) {
      return Status::NotFound("no process " + std::to_string(pid) + " (from --pids/--pid-file)");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string Plan::UserAddress(uint32_t i) const {
  return opts.user_prefix + std::to_string(i) + "@" + opts.domain;
}

Status Validate(const BenchOptions& opts, const OptionBounds& bounds) {
  PORCUPINE_RETURN_IF_ERROR(CheckRanges(opts, bounds));
  return CheckUser(opts);
}

Result<Plan> MakePlan(const BenchOptions& opts) {
  PORCUPINE_RETURN_IF_ERROR(Validate(opts));
  Plan plan;
  plan.opts = opts;
  plan.readers = ResolvedReaders(opts);
  PORCUPINE_RETURN_IF_ERROR(ParseLists(opts, &plan));
  PORCUPINE_RETURN_IF_ERROR(ParsePids(opts, &plan));
  if (opts.starttls) {
    plan.tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    if (!opts.tls_ca.empty()) {
      asio::error_code ec;
      plan.tls->load_verify_file(opts.tls_ca, ec);
      if (ec) return Status::InvalidArgument("--tls-ca: cannot load " + opts.tls_ca);
      plan.tls->set_verify_mode(asio::ssl::verify_peer);
    }
  }
  auto smtp = ResolveAll(opts.sessions > 0 ? plan.smtp_hosts : std::vector<HostPort>{});
  if (!smtp.ok()) return smtp.status();
  plan.smtp = std::move(*smtp);
  auto pop3 = ResolveAll(plan.readers > 0 ? plan.pop3_hosts : std::vector<HostPort>{});
  if (!pop3.ok()) return pop3.status();
  plan.pop3 = std::move(*pop3);
  plan.nonce = MakeRunNonce();
  return plan;
}

}  // namespace porcupine::bench
