// A validated, resolved BenchOptions: what the workers run.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "bench/endpoints.h"
#include "core/status.h"

namespace porcupine::bench {

// Hard bounds on the options, so a typo cannot ask for the impossible.
struct OptionBounds {
  double max_duration_s = 7 * 24 * 3600;
  int max_sessions = 200000;  // senders + readers
  int max_threads = 256;
  int max_users = 50'000'000;
  int max_recipients = 100;  // the server's default smtp_max_recipients
  int64_t max_size = 64 << 20;
};

struct Plan {
  BenchOptions opts;  // validated
  int readers = 0;    // opts.readers resolved
  std::vector<HostPort> admin;
  std::vector<HostPort> smtp_hosts;
  std::vector<HostPort> pop3_hosts;
  std::vector<std::vector<asio::ip::tcp::endpoint>> smtp;  // resolved smtp_hosts
  std::vector<std::vector<asio::ip::tcp::endpoint>> pop3;
  std::vector<int> pids;  // --pids and --pid-file
  std::string nonce;      // makes Message-IDs unique across runs
  // With opts.starttls: the client TLS context every sender shares (OpenSSL
  // contexts are thread-safe once set up).
  std::shared_ptr<asio::ssl::context> tls;

  // "<prefix><i>@<domain>".
  std::string UserAddress(uint32_t i) const;
};

// Checks ranges and the presence of the address lists the options need.
// InvalidArgument names the option.
Status Validate(const BenchOptions& opts, const OptionBounds& bounds = {});

// Validates, parses the lists, reads the pid files and resolves the SMTP and
// POP3 addresses. InvalidArgument for bad options, NotFound for a missing pid
// file or a pid without /proc entry, Unavailable for unresolvable hosts.
Result<Plan> MakePlan(const BenchOptions& opts);

}  // namespace porcupine::bench
