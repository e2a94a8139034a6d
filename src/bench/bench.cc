#include "bench/bench.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>

#include "bench/engine.h"
#include "bench/plan.h"
#include "bench/report.h"
#include "bench/users.h"

namespace porcupine::bench {
namespace {

std::atomic<int> g_interrupts{0};

extern "C" void OnInterrupt(int) { g_interrupts.fetch_add(1); }

// Installs SIGINT/SIGTERM handlers for the run and restores the old ones.
class InterruptScope {
 public:
  InterruptScope() {
    g_interrupts = 0;
    struct sigaction sa {};
    sa.sa_handler = OnInterrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Every session holds a socket; raise the soft descriptor limit toward the
// hard one if the run needs more, and warn when it cannot.
void EnsureDescriptors(const Plan& plan) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t need = static_cast<rlim_t>(plan.opts.sessions + plan.readers) + 256;
  if (rl.rlim_cur >= need) return;
  rl.rlim_cur = std::min(need, rl.rlim_max);
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < need) {
    std::fprintf(stderr,
                 "porcupine bench: warning: %llu sessions need ~%llu descriptors but the limit "
                 "is %llu (ulimit -n); expect connect errors\n",
                 static_cast<unsigned long long>(plan.opts.sessions + plan.readers),
                 static_cast<unsigned long long>(need),
                 static_cast<unsigned long long>(rl.rlim_cur));
  }
}

Result<UserSetup> SetupUsers(const Plan& plan) {
  if (!plan.opts.create_users) return UserSetup{};
  std::fprintf(stderr, "porcupine bench: creating %d users on %zu admin node(s)...\n",
               plan.opts.users, plan.admin.size());
  Result<UserSetup> users = CreateUsers(plan);
  if (users.ok()) {
    std::fprintf(stderr, "porcupine bench: %llu created, %llu already existed\n",
                 static_cast<unsigned long long>(users->created),
                 static_cast<unsigned long long>(users->existed));
  }
  return users;
}

}  // namespace

void AddOptions(CLI::App* cmd, BenchOptions& o) {
  cmd->add_option("--admin", o.admin, "admin API host:port list (comma-separated)");
  cmd->add_option("--token", o.token, "admin API bearer token")->envname("PORCUPINE_ADMIN_TOKEN");
  cmd->add_option("--smtp", o.smtp, "SMTP host:port list; sessions spread round-robin");
  cmd->add_option("--pop3", o.pop3, "POP3 host:port list; readers spread round-robin");
  cmd->add_option("--duration", o.duration_s, "measured seconds")->capture_default_str();
  cmd->add_option("--warmup", o.warmup_s, "seconds of load before measuring")
      ->capture_default_str();
  cmd->add_option("--drain", o.drain_s, "seconds in-flight work may take after the window")
      ->capture_default_str();
  cmd->add_option("--sessions", o.sessions, "SMTP sender sessions")->capture_default_str();
  cmd->add_option("--readers", o.readers, "POP3 reader sessions (default sessions/4; 0: none)");
  cmd->add_option("--threads", o.threads, "event-loop threads")->capture_default_str();
  cmd->add_option("--users", o.users, "users <prefix>0..<prefix>N-1@domain")->capture_default_str();
  cmd->add_option("--domain", o.domain, "mail domain of the users")->capture_default_str();
  cmd->add_option("--user-prefix", o.user_prefix, "local-part prefix")->capture_default_str();
  cmd->add_option("--password", o.password, "password of every bench user")->capture_default_str();
  cmd->add_flag("--create-users,!--no-create-users", o.create_users,
                "create missing users via the admin API first (default on)");
  cmd->add_option("--setup-threads", o.setup_threads, "parallel user-creation clients")
      ->capture_default_str();
  cmd->add_option("--rate", o.rate, "open loop: target deliveries/s (0: closed loop)")
      ->capture_default_str();
  cmd->add_option("--size-mean", o.size_mean, "mean message bytes (lognormal)")
      ->capture_default_str();
  cmd->add_option("--size-sigma", o.size_sigma, "lognormal shape")->capture_default_str();
  cmd->add_option("--size-max", o.size_max, "largest message bytes")->capture_default_str();
  cmd->add_option("--zipf", o.zipf, "recipient skew exponent (0: uniform)")->capture_default_str();
  cmd->add_option("--recipients", o.recipients, "recipients per message")->capture_default_str();
  cmd->add_option("--seed", o.seed, "random seed")->capture_default_str();
  cmd->add_option("--messages-per-connection", o.messages_per_connection,
                  "messages per SMTP connection before reconnecting")
      ->capture_default_str();
  cmd->add_flag("--pipelining,!--no-pipelining", o.pipelining,
                "pipeline MAIL/RCPT/DATA when advertised (default on)");
  cmd->add_flag("--starttls", o.starttls, "senders use STARTTLS on every connection");
  cmd->add_option("--tls-ca", o.tls_ca, "with --starttls: verify the server against this CA file");
  cmd->add_option("--tls-name", o.tls_name, "with --tls-ca: the name to verify (and send as SNI)");
  cmd->add_option("--retr-max", o.retr_max, "messages per POP3 session")->capture_default_str();
  cmd->add_option("--poll-ms", o.poll_ms, "reader pause after finding no mail")
      ->capture_default_str();
  cmd->add_option("--timeout", o.timeout_s, "seconds per network operation")->capture_default_str();
  cmd->add_option("--pids", o.pids, "local node pids for CPU accounting (comma-separated)");
  cmd->add_option("--pid-file", o.pid_files, "files holding node pids (comma-separated)");
  cmd->add_flag("--json", o.json, "print one JSON object instead of the table");
  cmd->add_flag("--progress", o.progress, "progress line every second even if not a TTY");
}

int Run(const BenchOptions& opts) {
  Result<Plan> plan = MakePlan(opts);
  if (!plan.ok()) {
    std::fprintf(stderr, "porcupine bench: %s\n", plan.status().message().c_str());
    return plan.status().code() == Code::kInvalidArgument ? 2 : 1;
  }
  Result<UserSetup> users = SetupUsers(*plan);
  if (!users.ok()) {
    std::fprintf(stderr, "porcupine bench: %s\n", users.status().message().c_str());
    return 1;
  }
  EnsureDescriptors(*plan);
  bool tty = ::isatty(STDERR_FILENO) == 1;
  LoadHooks hooks;
  hooks.progress = tty || opts.progress ? stderr : nullptr;
  hooks.progress_tty = tty;
  hooks.interrupts = &g_interrupts;
  RunTotals totals;
  {
    InterruptScope interrupts;
    totals = RunLoad(*plan, hooks);
  }
  if (opts.json) {
    std::printf("%s\n", ReportJson(*plan, *users, totals).dump().c_str());
  } else {
    std::fputs(ReportTable(*plan, *users, totals).c_str(), stdout);
  }
  std::fflush(stdout);
  bool moved = opts.sessions > 0 ? totals.delivered > 0 : totals.retrieved > 0;
  if (!moved) std::fprintf(stderr, "porcupine bench: no message got through in the window\n");
  return moved ? 0 : 1;
}

}  // namespace porcupine::bench
