// `porcupine bench`: the load generator. It creates bench users through the
// admin API, then runs SMTP sender sessions and POP3 reader sessions against
// the given nodes for a fixed time from one process (thousands of sessions on
// a few threads), and reports throughput, latency percentiles, errors by kind
// and CPU-seconds per message of the local node processes.
//
// Usage, phases and report fields: src/bench/README.md.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace porcupine::bench {

struct BenchOptions {
  // Admin API "host:port" list (comma-separated); used to create users.
  std::string admin;
  // Bearer token for the admin API ($PORCUPINE_ADMIN_TOKEN).
  std::string token;
  // SMTP "host:port" list; sender session i uses node i mod n.
  std::string smtp;
  // POP3 "host:port" list; reader session i uses node i mod n.
  std::string pop3;

  // Measured seconds, after the warmup.
  double duration_s = 10;
  // Seconds of load before measuring starts (not counted in rates/latency).
  double warmup_s = 0;
  // After the window: seconds in-flight work may take to finish before every
  // connection is closed.
  double drain_s = 3;
  // SMTP sender sessions (concurrent connections).
  int sessions = 16;
  // POP3 reader sessions; -1 means sessions / 4. 0 disables reading.
  int readers = -1;
  // Worker threads, each running an event loop with its share of sessions.
  int threads = 1;

  // Users bench0..bench<users-1>@domain take part.
  int users = 100;
  std::string domain = "example.test";
  std::string user_prefix = "bench";
  std::string password = "bench-pw";
  // Create missing users through POST /v1/users before the run.
  bool create_users = true;
  // Parallel HTTP clients creating users.
  int setup_threads = 8;

  // Open loop: target deliveries per second over all senders (Poisson
  // arrivals, latency measured from the scheduled start). 0: closed loop, each
  // sender sends its next message as soon as the last one is acknowledged.
  double rate = 0;
  // Mean message size in bytes (headers included); sizes are lognormal.
  double size_mean = 4700;
  // Shape of the size distribution (sigma of the underlying normal).
  double size_sigma = 1.0;
  // Largest message in bytes.
  int64_t size_max = 1 << 20;
  // Recipient skew: P(user of rank k) ~ 1/(k+1)^zipf; 0 is uniform. Readers
  // pick users with the same skew, so they read where the mail goes.
  double zipf = 0;
  // Recipients per message (distinct users).
  int recipients = 1;
  // Seed of every random choice except the Message-ID nonce.
  uint64_t seed = 1;

  // Messages one SMTP connection sends before QUIT and reconnecting.
  int messages_per_connection = 1000;
  // Use PIPELINING (MAIL, RCPT..., DATA in one write) when advertised.
  bool pipelining = true;
  // SMTP senders say STARTTLS after EHLO (and EHLO again over TLS): every
  // connection pays one TLS handshake; a server not offering it is a fault.
  bool starttls = false;
  // With starttls: verify the server's chain against this PEM file (and the
  // name in --tls-name); "" = no verification (the handshake cost is the same).
  std::string tls_ca;
  std::string tls_name;
  // Messages one POP3 session retrieves at most.
  int retr_max = 100;
  // Pause of a reader after a session that found no mail or failed.
  int poll_ms = 100;
  // Seconds any single network operation may take before it counts as a timeout.
  double timeout_s = 30;

  // Local node pids whose CPU time (utime + stime) over the window is charged
  // to the delivered messages; comma-separated.
  std::string pids;
  // Files holding more node pids (comma-separated paths).
  std::string pid_files;

  // Print one JSON object on stdout instead of the table.
  bool json = false;
  // Print a progress line every second on stderr even when it is not a TTY.
  bool progress = false;
};

// Registers the "bench" subcommand's options on `cmd` bound to `opts`.
// REQUIRES: opts outlives cmd's parsing.
void AddOptions(CLI::App* cmd, BenchOptions& opts);

// Runs the benchmark: prints setup notes and progress to stderr and the
// report to stdout. Returns 0 when the run completed and delivered (or, with
// no senders, retrieved) at least one message; 1 when setup failed or nothing
// got through; 2 for invalid options.
int Run(const BenchOptions& opts);

}  // namespace porcupine::bench
